// SPDX-License-Identifier: Apache-2.0
// The swap gate: every hooked entry that can touch device memory (launches, graph launches,
// copies, memsets, capture begins) passes through a SwapGate for its duration, so that the swap
// agent (quota/swap_agent.h) can close the gate, know when the calls already inside have left,
// drain the GPU, and move memory out; a call that arrives while the gate is closed waits, and
// the first one after a swap-out swaps in before it proceeds.
//
// Cost when the process has no swap tenant (the default): one load of a process-local flag
// written before the first CUDA call returns, and one predictable branch. With swap: a relaxed
// thread-local read, a seq_cst add and sub on this thread's own stripe of the in-flight counter
// (a cache line per stripe), and a seq_cst load of the gate word; no lock, allocation or log.
//
// How to gate a new hook: put `GS_SWAP_GATE();` after GS_ENSURE_INIT() (hooks/export.h).
#pragma once
#include <atomic>
#include <cstdint>

#include "src/cuda_api.h"

namespace gpushare::quota::swap {
namespace detail {

inline constexpr int kStripes = 16;
struct alignas(64) Stripe {
  std::atomic<int64_t> inflight{0};
};
extern Stripe g_stripes[kStripes];
extern std::atomic<bool> g_enabled;   // a swap tenant exists on some device (set at enumeration)
extern std::atomic<uint32_t> g_gate;  // 0: open; nonzero: closed (swapping, or memory out)
extern thread_local int t_stripe;     // this thread's stripe + 1 (0: not chosen yet)
extern thread_local int t_depth;      // gated calls this thread is inside (a kernel calling back)

int ChooseStripe();
// The gate was closed: waits for the agent, swaps in if this process's memory is out. Returns
// CUDA_SUCCESS when the call may proceed, else the error the call returns.
[[gnu::cold, gnu::noinline]] CUresult WaitAtGate();

}  // namespace detail

// Whether this process may swap: nothing below runs otherwise.
inline bool Enabled() { return detail::g_enabled.load(std::memory_order_relaxed); }

// Sum of the in-flight stripes: 0 once every call that passed the gate has left.
int64_t InFlight();

class SwapGate {
 public:
  SwapGate() {
    if (__builtin_expect(!detail::g_enabled.load(std::memory_order_relaxed), 1)) return;
    Enter();
  }
  ~SwapGate() {
    if (stripe_ >= 0) {
      detail::g_stripes[stripe_].inflight.fetch_sub(1, std::memory_order_release);
      --detail::t_depth;
    }
  }
  SwapGate(const SwapGate&) = delete;
  SwapGate& operator=(const SwapGate&) = delete;
  // Whether this call holds the gate (this process may swap, and no gated call of this thread
  // is already inside).
  bool held() const { return stripe_ >= 0; }
  // CUDA_SUCCESS, or the error the gated call must return without calling the driver.
  CUresult rc() const { return rc_; }

 private:
  void Enter() {
    if (detail::t_depth > 0) return;  // already inside a gated call on this thread
    int s = detail::t_stripe - 1;
    if (s < 0) s = detail::ChooseStripe();
    for (;;) {
      // Dekker with the agent: it stores the gate then sums the stripes; we add then load the
      // gate. seq_cst on both sides: one of us sees the other.
      detail::g_stripes[s].inflight.fetch_add(1, std::memory_order_seq_cst);
      if (__builtin_expect(detail::g_gate.load(std::memory_order_seq_cst) == 0, 1)) break;
      detail::g_stripes[s].inflight.fetch_sub(1, std::memory_order_release);
      rc_ = detail::WaitAtGate();
      if (rc_ != CUDA_SUCCESS) return;
    }
    stripe_ = s;
    ++detail::t_depth;
  }

  int stripe_ = -1;
  CUresult rc_ = CUDA_SUCCESS;
};

}  // namespace gpushare::quota::swap

// The first statement of a gated hook, after GS_ENSURE_INIT().
#define GS_SWAP_GATE()                                                                   \
  const ::gpushare::quota::swap::SwapGate gs_swap_gate_;                                 \
  if (__builtin_expect(gs_swap_gate_.rc() != CUDA_SUCCESS, 0)) return gs_swap_gate_.rc()
