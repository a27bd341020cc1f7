// SPDX-License-Identifier: Apache-2.0
// Compute shares (GPUSHARE_COMPUTE): busy tenants get a GPU's time in proportion to their
// shares, without MPS, in exclusive turns handed over through the ledger (compute/turn.h,
// compute/gate.h, policy in compute/policy.h).
//
// Hot path: a launch hook calls GatedLaunch. Without a compute share (the default) that is one
// relaxed load of a process-local flag and a predictable branch; with one, the gate's two
// atomics and one load of the ledger's turn word, and the Tracker's event record.
//
// How to gate another launch entry point: wrap its real call in GatedLaunch(stream, ptsz, fn).
#pragma once
#include <atomic>

#include "compute/gate.h"
#include "src/cuda_api.h"

namespace gpushare::quota {
class LedgerSession;
}

namespace gpushare::compute {
namespace detail {
extern std::atomic<bool> g_enabled;
[[gnu::cold, gnu::noinline]] Gate* GateForCurrentContext();
}  // namespace detail

// Called once per device whose tenant has a compute share, after it joined the ledger: makes
// the gate and starts its keeper. From then on this process's launches on it are gated.
void AttachDevice(int ordinal, quota::LedgerSession& session, const GateConfig& config);

// Before the driver destroys `ctx` (cuCtxDestroy, cuDevicePrimaryCtxReset, the primary
// context's last release): every gate forgets the work launched in it, so that nothing queries
// what dies with it. Cheap without a compute share.
void ForgetContext(CUcontext ctx);

template <typename Fn>
CUresult GatedLaunch(CUstream stream, bool per_thread_stream, Fn&& launch) {
  if (__builtin_expect(!detail::g_enabled.load(std::memory_order_relaxed), 1)) return launch();
  Gate* gate = detail::GateForCurrentContext();
  if (gate == nullptr) return launch();
  gate->Enter();
  const CUresult rc = launch();
  gate->Exit(stream, per_thread_stream, rc == CUDA_SUCCESS);
  return rc;
}

}  // namespace gpushare::compute
