// SPDX-License-Identifier: Apache-2.0
#include "compute/event_tracker.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::compute {
namespace {

// What cuEventQuery answers for an event the driver destroyed with its context: the event
// covers nothing any more.
bool EventGone(CUresult rc) {
  return rc == CUDA_ERROR_INVALID_HANDLE || rc == CUDA_ERROR_INVALID_CONTEXT ||
         rc == CUDA_ERROR_CONTEXT_IS_DESTROYED;
}

class EventTracker final : public Tracker {
 public:
  void Launched(void* stream_ptr, bool per_thread_stream) override {
    auto* stream = static_cast<CUstream>(stream_ptr);
    const RealDriver& real = Real();
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    const CUresult rc = per_thread_stream ? real.cuStreamIsCapturing_ptsz(stream, &capture)
                                          : real.cuStreamIsCapturing(stream, &capture);
    if (rc != CUDA_SUCCESS || capture != CU_STREAM_CAPTURE_STATUS_NONE) return;  // no work runs
    ThreadSlots& t = Mine();
    Slot* slot = SlotFor(t, stream, per_thread_stream);
    if (slot == nullptr) return;
    if (Record(slot->event, stream, per_thread_stream) != CUDA_SUCCESS) Rebind(t, *slot, stream, per_thread_stream);
  }

  bool Drained() override {
    std::lock_guard<std::mutex> lock(mu_);
    bool drained = true, dropped = false;
    for (auto it = events_.begin(); it != events_.end();) {
      const CUresult rc = Real().cuEventQuery(it->event);
      if (rc == CUDA_ERROR_NOT_READY) {
        drained = false;
        break;
      }
      if (EventGone(rc)) {  // its context went without telling us: nothing to wait for there
        it = events_.erase(it);
        dropped = true;
        continue;
      }
      ++it;  // done (or failed: a sticky error ends that work too)
    }
    if (dropped) epoch_.fetch_add(1, std::memory_order_release);
    return drained;
  }

  void OnKeeperThread() override {
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    Real().cuThreadExchangeStreamCaptureMode(&mode);
  }

  // Under mu_, so the keeper never queries an event of `context` once this returns; the caller
  // then lets the driver destroy them. Slots of other threads that still name them see the
  // epoch change at their next lookup and find their entry gone.
  void ContextGone(void* context) override {
    auto* ctx = static_cast<CUcontext>(context);
    size_t forgotten = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      forgotten = std::erase_if(events_, [ctx](const Entry& e) { return e.ctx == ctx; });
      if (forgotten != 0) epoch_.fetch_add(1, std::memory_order_release);
    }
    if (forgotten != 0) GS_LOG_DEBUG("compute: context {} going: {} events forgotten", context, forgotten);
  }

 private:
  // One event per (thread, stream): the per-thread default stream differs by thread. Slots are
  // thread-local, so only their own thread reads or writes them; an entry of events_ can leave
  // from any thread, which bumps epoch_: a slot whose epoch is older checks its entry (by
  // serial, never reused) before its event is used again.
  struct Slot {
    const EventTracker* owner;  // nullptr: free
    CUstream stream;
    bool per_thread;
    CUcontext ctx;   // the stream's, and the event's
    CUevent event;
    uint64_t serial;  // its entry in events_
    uint64_t epoch;   // epoch_ when the entry was last known to be there
  };
  struct ThreadSlots {
    Slot slots[16];
    size_t used, next_victim;
  };
  static constexpr size_t kSlotsPerThread = sizeof(ThreadSlots::slots) / sizeof(Slot);

  struct Entry {
    CUcontext ctx;
    CUevent event;
    uint64_t serial;
  };

  static ThreadSlots& Mine() {
    thread_local ThreadSlots slots;  // zero-initialized: no guard on the hot path
    return slots;
  }

  static CUresult Record(CUevent event, CUstream stream, bool per_thread) {
    return per_thread ? Real().cuEventRecord_ptsz(event, stream) : Real().cuEventRecord(event, stream);
  }

  // The default streams' handles (NULL, legacy, per-thread) name a stream of the current
  // context: their slots are per context too. Another stream's context is fixed for its life.
  static bool IsDefaultStream(CUstream stream) {
    return stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD;
  }

  Slot* SlotFor(ThreadSlots& t, CUstream stream, bool per_thread) {
    CUcontext ctx = nullptr;
    if (IsDefaultStream(stream) && Real().cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = nullptr;
    if (Slot* s = FindSlot(t, stream, per_thread, ctx)) return s;
    return NewSlot(t, stream, per_thread, StreamContext(stream, per_thread));
  }

  // This thread's slot for the stream in `ctx` (nullptr: in any context) whose event is still
  // tracked, other than `except`. A slot found untracked is freed on the way: its event went
  // with its context (the handle may now be a new stream's).
  Slot* FindSlot(ThreadSlots& t, CUstream stream, bool per_thread, CUcontext ctx, const Slot* except = nullptr) {
    const uint64_t epoch = epoch_.load(std::memory_order_acquire);
    for (size_t i = 0; i < t.used; ++i) {
      Slot& s = t.slots[i];
      if (&s == except || s.owner != this || s.stream != stream || s.per_thread != per_thread) continue;
      if (ctx != nullptr && s.ctx != ctx) continue;
      if (s.epoch == epoch || StillTracked(s)) return &s;
    }
    return nullptr;
  }

  // Whether the slot's entry is still in events_; frees the slot if not.
  [[gnu::cold, gnu::noinline]] bool StillTracked(Slot& s) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Entry& e : events_) {
      if (e.serial != s.serial) continue;
      s.epoch = epoch_.load(std::memory_order_relaxed);
      return true;
    }
    s.owner = nullptr;
    return false;
  }

  [[gnu::cold, gnu::noinline]] Slot* NewSlot(ThreadSlots& t, CUstream stream, bool per_thread, CUcontext ctx) {
    if (ctx == nullptr) return nullptr;
    Slot* slot = nullptr;
    for (size_t i = 0; i < t.used && slot == nullptr; ++i)
      if (t.slots[i].owner == nullptr) slot = &t.slots[i];
    if (slot == nullptr && t.used < kSlotsPerThread) slot = &t.slots[t.used++];
    if (slot == nullptr) {
      // More streams than slots: the oldest slot goes to the new stream. Its event moves with it
      // once its last record completed (it then covers nothing) and if it is of the stream's
      // context; while that work still runs, a new event is made and the old one stays in
      // events_, covering it. So events_ grows only by events that were busy when their slot
      // was taken (or of another context).
      slot = &t.slots[t.next_victim++ % kSlotsPerThread];
      if (slot->owner == this && slot->ctx == ctx && StillTracked(*slot) &&
          Real().cuEventQuery(slot->event) == CUDA_SUCCESS) {
        slot->stream = stream;
        slot->per_thread = per_thread;
        return slot;
      }
    }
    return Bind(*slot, stream, per_thread, ctx) ? slot : nullptr;
  }

  // The slot's event failed to record because the stream handle is now of another context: a
  // destroyed stream's handle reused in another live context. The thread's slot for that handle
  // in that context (made if need be) moves in front, so that the next lookup finds it first.
  [[gnu::cold, gnu::noinline]] void Rebind(ThreadSlots& t, Slot& slot, CUstream stream, bool per_thread) {
    const CUcontext ctx = StreamContext(stream, per_thread);
    if (ctx == nullptr || ctx == slot.ctx) return;  // not a context mix-up
    Slot* other = FindSlot(t, stream, per_thread, ctx, &slot);
    if (other == nullptr) other = NewSlot(t, stream, per_thread, ctx);
    if (other == nullptr) return;
    if (other != &slot) std::swap(*other, slot);
    Record(slot.event, stream, per_thread);
  }

  // A new event in `ctx`, tracked, in the slot. The slot's previous event (if any) stays in
  // events_, covering its last record.
  bool Bind(Slot& slot, CUstream stream, bool per_thread, CUcontext ctx) {
    const CUevent event = CreateEventIn(ctx);
    if (event == nullptr) return false;
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t serial = next_serial_++;
    events_.push_back({ctx, event, serial});
    slot = {this, stream, per_thread, ctx, event, serial, epoch_.load(std::memory_order_relaxed)};
    return true;
  }

  // The stream's context (the current one for the NULL, legacy and per-thread streams).
  static CUcontext StreamContext(CUstream stream, bool per_thread) {
    const RealDriver& real = Real();
    CUcontext ctx = nullptr;
    const CUresult rc = per_thread ? real.cuStreamGetCtx_ptsz(stream, &ctx) : real.cuStreamGetCtx(stream, &ctx);
    if (rc != CUDA_SUCCESS || ctx == nullptr) {
      ctx = nullptr;
      if (real.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) return nullptr;
    }
    return ctx;
  }

  // cuEventRecord wants the event and the stream in one context; cuEventCreate makes it in the
  // current one.
  static CUevent CreateEventIn(CUcontext ctx) {
    const RealDriver& real = Real();
    CUcontext current = nullptr;
    const bool push = real.cuCtxGetCurrent(&current) != CUDA_SUCCESS || current != ctx;
    if (push && real.cuCtxPushCurrent_v2(ctx) != CUDA_SUCCESS) return nullptr;
    CUevent event = nullptr;
    if (real.cuEventCreate(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) event = nullptr;
    if (push) {
      CUcontext popped = nullptr;
      real.cuCtxPopCurrent_v2(&popped);
    }
    return event;
  }

  std::mutex mu_;
  std::vector<Entry> events_;  // every live event made; each covers its stream's last launch
  uint64_t next_serial_ = 1;   // under mu_
  // Bumped (under mu_) whenever an entry leaves events_; read lock-free by slot lookups.
  std::atomic<uint64_t> epoch_{0};
};

}  // namespace

std::unique_ptr<Tracker> MakeEventTracker() { return std::make_unique<EventTracker>(); }

}  // namespace gpushare::compute
