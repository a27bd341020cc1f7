#include "compute/event_tracker.h"

#include <mutex>
#include <vector>

#include "src/real_driver.h"

namespace gpushare::compute {
namespace {

class EventTracker final : public Tracker {
 public:
  void Launched(void* stream_ptr, bool per_thread_stream) override {
    auto* stream = static_cast<CUstream>(stream_ptr);
    const RealDriver& real = Real();
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    const CUresult rc = per_thread_stream ? real.cuStreamIsCapturing_ptsz(stream, &capture)
                                          : real.cuStreamIsCapturing(stream, &capture);
    if (rc != CUDA_SUCCESS || capture != CU_STREAM_CAPTURE_STATUS_NONE) return;  // no work runs
    CUevent event = EventFor(stream, per_thread_stream);
    if (event == nullptr) return;
    if (per_thread_stream) {
      real.cuEventRecord_ptsz(event, stream);
    } else {
      real.cuEventRecord(event, stream);
    }
  }

  bool Drained() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (CUevent e : events_)
      if (Real().cuEventQuery(e) == CUDA_ERROR_NOT_READY) return false;
    return true;
  }

  void OnKeeperThread() override {
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    Real().cuThreadExchangeStreamCaptureMode(&mode);
  }

 private:
  // One event per (thread, stream): the per-thread default stream differs by thread.
  struct Slot {
    const EventTracker* owner;
    CUstream stream;
    bool per_thread;
    CUevent event;
  };
  static constexpr size_t kSlotsPerThread = 16;

  CUevent EventFor(CUstream stream, bool per_thread) {
    thread_local Slot slots[kSlotsPerThread];
    thread_local size_t used = 0, next_victim = 0;
    for (size_t i = 0; i < used; ++i)
      if (slots[i].owner == this && slots[i].stream == stream && slots[i].per_thread == per_thread) return slots[i].event;
    // More streams than slots: the oldest slot goes to the new stream. Its event moves with it
    // once its last record completed (it then covers nothing); while that work still runs, a
    // new event is made and the old one stays in events_, covering it. So events_ grows only
    // by events that were busy when their slot was taken.
    const bool evicting = used == kSlotsPerThread;
    Slot& slot = slots[evicting ? next_victim++ % kSlotsPerThread : used++];
    if (evicting && slot.owner == this && Real().cuEventQuery(slot.event) == CUDA_SUCCESS) {
      slot.stream = stream;
      slot.per_thread = per_thread;
      return slot.event;
    }
    CUevent event = nullptr;
    if (Real().cuEventCreate(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) return nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(event);
    }
    slot = {this, stream, per_thread, event};
    return event;
  }

  std::mutex mu_;
  std::vector<CUevent> events_;  // every event ever made; each covers its stream's last launch
};

}  // namespace

std::unique_ptr<Tracker> MakeEventTracker() { return std::make_unique<EventTracker>(); }

}  // namespace gpushare::compute
