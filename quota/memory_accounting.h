// SPDX-License-Identifier: Apache-2.0
// The decisions behind hooks/memory*.cpp: which quota an allocation charges, what a denial
// returns, and how a kept charge is recorded so that its free gives it back.
#pragma once
#include "quota/activity.h"
#include "quota/allocation_table.h"
#include "quota/charge.h"
#include "src/cuda_api.h"

namespace gpushare::quota {

// Where an allocation made now, on the calling thread, is charged. quota == nullptr: the device
// has no limit (or there is no current context) and the call passes through.
struct Target {
  DeviceQuota* quota = nullptr;
  CUcontext context = nullptr;
};
Target CurrentTarget();
// The quota of the device a stream's work runs on.
DeviceQuota* StreamQuota(CUstream stream);

// The error a denied allocation returns (CUDA_ERROR_OUT_OF_MEMORY: PyTorch then frees its cache
// and retries), logged at debug level.
[[gnu::cold]] CUresult Deny(const DeviceQuota& quota, uint64_t bytes, const char* what);

// Calls the driver for memory the ledger granted (`charge`). When the driver still says out of
// memory, memory is in use that no charge accounts for (the driver's own, a process without
// gpushare, a co-tenant that died but is not yet torn down): under a waiting resolver the gap is
// published to the ledger (LedgerSession::NoteHiddenMemory), the charge is asked for again
// through the resolver (which now sees the shortfall: it waits, or takes from victims), and the
// call is retried, until GPUSHARE_WAIT_TIMEOUT.
// Gives the charge back, measures the hidden memory, and charges again through the resolver.
// False (charge released) when it is refused or the deadline passed.
[[gnu::cold, gnu::noinline]] bool RechargeAfterDriverRefusal(DeviceQuota& quota, Charge& charge,
                                                            uint64_t deadline_ns);
template <typename Call>
CUresult CallDriverGranted(DeviceQuota& quota, Charge& charge, Call&& call) {
  CUresult rc = call();
  if (rc != CUDA_ERROR_OUT_OF_MEMORY || quota.wait_timeout_ns() == 0 || charge.bytes() == 0) return rc;
  const uint64_t deadline = ActivityClockNs() + quota.wait_timeout_ns();
  while (rc == CUDA_ERROR_OUT_OF_MEMORY && RechargeAfterDriverRefusal(quota, charge, deadline)) rc = call();
  return rc;
}


// The driver succeeded: the charge now belongs to `handle` until it is freed.
void Keep(HandleKind kind, uint64_t handle, const Target& target, Charge& charge);

// Clamps what cuMemGetInfo reports for a limited device: total = min(limit, physical), free =
// min(limit - used, physically free).
void ClampMemInfo(DeviceQuota& quota, size_t* free_bytes, size_t* total_bytes);

// Upper bounds of an array's size before it exists; the charge is corrected to the driver's
// figure (cuArrayGetMemoryRequirements) right after creation.
uint64_t EstimateArrayBytes(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned int mip_levels);
uint64_t EstimatePitchedBytes(size_t width_bytes, size_t height);

}  // namespace gpushare::quota
