// SPDX-License-Identifier: Apache-2.0
// Compute shares inside one process: the launch gate and the keeper thread for one GPU.
//
//   Enter()/Exit()  around every kernel or graph launch of this process on that GPU: a launch
//                   passes when this process holds the turn and is not handing it over, or
//                   when its tenant may launch without the turn (express, compute/policy.h),
//                   else it waits (futex) for the turn. Exit tells the Tracker what was launched.
//   keeper thread   while this process holds the turn, decides when to give it up (quantum
//                   over with others waiting, preempted by a tenant below its share, or idle:
//                   nothing launched for GPUSHARE_COMPUTE_IDLE and nothing in flight); then
//                   closes the gate, waits for launches inside it, drains the work in flight
//                   (Tracker::Drained) and hands the turn over, charging grant..drained.
//                   Without the turn it sleeps, but polls an express burst until it drained
//                   and charges it, first launch..drained.
//
// How to gate another launch entry point: call GatedLaunch (compute/compute.h) from its hook.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "compute/turn.h"

namespace gpushare::compute {

// The work this process has in flight on the GPU, as far as the gate can see it.
class Tracker {
 public:
  virtual ~Tracker() = default;
  // On the launching thread, right after a launch into `stream` succeeded.
  virtual void Launched(void* stream, bool per_thread_stream) = 0;
  // On the keeper thread: whether everything launched so far has finished.
  virtual bool Drained() = 0;
  // On the keeper thread, once, before its first Drained().
  virtual void OnKeeperThread() {}
  // On any thread, before the driver destroys or resets `context` (a CUcontext): forget what
  // was launched in it without touching it (whatever tracks that work dies with the context).
  virtual void ContextGone(void* context) { (void)context; }
};

struct GateConfig {
  TurnConfig turn;
  uint64_t idle_ns = 500'000;
};

class Gate {
 public:
  Gate(std::unique_ptr<Turn> turn, std::unique_ptr<Tracker> tracker, const GateConfig& config);
  ~Gate();  // stops the keeper (tests; the library's gates live for the process)
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void Enter() {
    launches_.fetch_add(1, std::memory_order_relaxed);
    in_gate_.fetch_add(1, std::memory_order_seq_cst);
    if (__builtin_expect(turn_->Held() && !closing_.load(std::memory_order_seq_cst), 1)) return;
    EnterSlow();
  }
  void Exit(void* stream, bool per_thread_stream, bool launched) {
    if (launched) tracker_->Launched(stream, per_thread_stream);
    in_gate_.fetch_sub(1, std::memory_order_release);
  }

  void StartKeeper();
  Turn& turn() { return *turn_; }
  void ContextGone(void* context) { tracker_->ContextGone(context); }

 private:
  [[gnu::cold, gnu::noinline]] void EnterSlow();
  void Keep();
  void WakeKeeper();
  // Without the turn: charges the express burst in flight once it drained. False while it runs.
  bool SettleExpress();
  void HandOver(uint64_t drained_ns, bool preempted);

  std::unique_ptr<Turn> turn_;
  std::unique_ptr<Tracker> tracker_;
  GateConfig config_;
  alignas(64) std::atomic<uint64_t> launches_{0};
  alignas(64) std::atomic<uint32_t> in_gate_{0};
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> strict_until_ns_{0};
  std::atomic<uint64_t> turn_started_ns_{0};  // the current turn's first launch
  std::atomic<uint64_t> express_since_ns_{0};  // the first launch of the express burst in flight
  std::atomic<uint32_t> keeper_word_{0};       // private futex: a turn or an express burst began
  std::atomic<bool> stop_{false};
  std::thread keeper_;
};

uint64_t MonotonicNs();

}  // namespace gpushare::compute
