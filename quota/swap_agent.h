// SPDX-License-Identifier: Apache-2.0
// The swap agent: one thread in every process of a swap tenant (GPUSHARE_RESOLVER=swap). It
// makes the pinned staging pool once, ahead, then sleeps on its tenant's ask word in the ledger
// (quota/resolver_swap.cpp). Asked, it swaps this process out:
//
//   state      gate    who moves it on
//   resident   open    the agent, asked: -> swapping-out
//   swapping-out closed the agent: gate closed, gated calls drained (quota/swap_gate.h), no
//                      stream capture open (else back to resident, and retried later: a drain
//                      would invalidate the capture), every context synchronized, allocations
//                      copied out and released -> out (or resident when nothing moved)
//   out        closed  the first gated call: -> swapping-in (the agent may move more out first)
//   swapping-in closed that call: charges the bytes back through the ledger (waiting, and asking
//                      others to swap out, as any burst under swap), maps and copies them back
//                      at the same addresses -> resident, and proceeds
//
// Nothing of the process runs on the GPU while any of its memory is out: a kernel touching an
// unmapped address loses the context (CUDA_ERROR_ILLEGAL_ADDRESS on the H100).
#pragma once
#include <cstdint>

#include "src/cuda_api.h"

namespace gpushare::quota {
class DeviceQuota;
}

namespace gpushare::quota::swap {

// Enables the gate for a device quota under the swap resolver, at enumeration (before any gated
// call can reach a swap allocation). `staging_bytes` adds to this process's pinned pool.
void AddQuota(DeviceQuota& quota, uint64_t staging_bytes);
// Starts the agent thread once, when AddQuota was called.
void StartAgentThread();

// Stream captures open in this process (cuStreamBeginCapture .. cuStreamEndCapture).
void NoteCaptureBegun();
void NoteCaptureEnded();

}  // namespace gpushare::quota::swap
