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
    CUevent event = nullptr;
    if (Real().cuEventCreate(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) return nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(event);
    }
    // More streams than slots: the new event takes the oldest slot; the old event stays in
    // events_, covering its stream's last record, so events_ grows with the distinct streams a
    // thread cycles through (known gap: PyTorch's stream pools can exceed the 16 slots).
    size_t i = used < kSlotsPerThread ? used++ : next_victim++ % kSlotsPerThread;
    slots[i] = {this, stream, per_thread, event};
    return event;
  }

  std::mutex mu_;
  std::vector<CUevent> events_;  // every event ever made; each covers its stream's last launch
};

}  // namespace

std::unique_ptr<Tracker> MakeEventTracker() { return std::make_unique<EventTracker>(); }

}  // namespace gpushare::compute
