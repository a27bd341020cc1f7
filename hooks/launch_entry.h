// SPDX-License-Identifier: Apache-2.0
// The one entry of every wrapper that puts work on a stream (kernel and graph launches of every
// form, copies, memsets, stream memory operations, host functions): what one does, all do.
//
//   1. the init check (src/runtime.h): one acquire load;
//   2. the swap gate (quota/swap_gate.h): no work of this process enters a queue while its memory
//      is moved, and a swapped-out process swaps in first; without swap, one relaxed load;
//   3. activity (quota/activity.h): the idle clock that GPUSHARE_IDLE_TIMEOUT reads (a tenant
//      that only replays graphs or only copies is busy); two relaxed loads, a store once a tick;
//   4. the compute gate (compute/compute.h), for kernels only: one relaxed load without a share.
// No lock, allocation, log, syscall or look-up; the real function is called once.
//
// How to add a launch-like hook: its body is
//   return EnterStreamWork<StreamWork::kKernels>(stream, per_thread_stream, [=] { return Real().sym(...); });
// (or GS_STREAM_WORK below for work that runs no kernel the turn measures). Capture by value:
// GCC keeps copied arguments in registers, but spills every argument a reference captures
// (cuLaunchKernel: 53 instructions with [=], 83 with [&]; bench/launch_path_cost.sh).
#pragma once
#include "compute/compute.h"
#include "hooks/export.h"
#include "quota/activity.h"
#include "quota/swap_gate.h"

namespace gpushare {

// What the call puts on the stream, which decides whether the compute turn gates it.
enum class StreamWork {
  // Kernels and graphs (of kernels): GPU time, which the compute turn shares out.
  kKernels,
  // Copies, memsets, stream memory operations (cuStreamWaitValue*/WriteValue*/BatchMemOp), host
  // functions and stream callbacks: they touch device memory or order the queue, so they pass
  // the swap gate and count as activity, but they run no kernel the turn measures (README:
  // "Memsets and copies are not gated"; a host function runs on a driver thread).
  kOther,
};

// No check of the call's ranges against swappable allocations.
struct NoSwapCheck {
  CUresult operator()() const { return CUDA_SUCCESS; }
};

// `swap_check`, run only while this call holds the swap gate, answers an error the driver would
// give for the call but cannot see under swap (hooks/copy.cpp: ranges past a swappable
// allocation's end, inside its rounded mapping); the call is then not made.
template <StreamWork kWork, typename Fn, typename SwapCheck = NoSwapCheck>
[[gnu::always_inline]] inline CUresult EnterStreamWork(CUstream stream, bool per_thread_stream, Fn&& call,
                                                       SwapCheck&& swap_check = {}) {
  if (const CUresult rc = EnsureInit(); __builtin_expect(rc != CUDA_SUCCESS, 0)) return rc;
  const quota::swap::SwapGate gate;
  if (__builtin_expect(gate.rc() != CUDA_SUCCESS, 0)) return gate.rc();
  if (__builtin_expect(gate.held(), 0)) {
    if (const CUresult rc = swap_check(); rc != CUDA_SUCCESS) return rc;
  }
  quota::NoteActivity();
  if constexpr (kWork == StreamWork::kKernels) {
    // Without a compute share the call is made right here, so that the arguments go straight
    // from the wrapper's registers to the real function.
    if (__builtin_expect(!compute::detail::g_enabled.load(std::memory_order_relaxed), 1)) return call();
    return compute::GatedLaunch(stream, per_thread_stream, call);
  } else {
    (void)stream;
    (void)per_thread_stream;
    return call();
  }
}

}  // namespace gpushare

// A wrapper of stream work that runs no kernel of the turn's: `params` and `args` in parentheses.
#define GS_UNPAREN(...) __VA_ARGS__
#define GS_STREAM_WORK(symbol, params, args)                                                        \
  GS_EXPORT CUresult symbol params {                                                                 \
    return ::gpushare::EnterStreamWork<::gpushare::StreamWork::kOther>(                              \
        nullptr, false, [=] { return ::gpushare::Real().symbol(GS_UNPAREN args); });                \
  }
