// The decisions behind hooks/memory*.cpp: which quota an allocation charges, what a denial
// returns, and how a kept charge is recorded so that its free gives it back.
#pragma once
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

// Calls the driver for memory the ledger granted. A co-tenant that just died (a victim of the
// priority resolver, a crash) gives its memory back to the driver some milliseconds after the
// ledger sees it dead, so under a waiting resolver an out-of-memory answer is retried for a
// while (bounded by GPUSHARE_WAIT_TIMEOUT, at most kDriverLagNs).
inline constexpr uint64_t kDriverLagNs = 2'000'000'000ull;
[[gnu::cold]] uint64_t DriverLagDeadline(const DeviceQuota& quota);
// Sleeps a little; false once the deadline has passed.
[[gnu::cold]] bool AwaitDriverLag(uint64_t deadline_ns);
[[gnu::cold]] void NoteDriverLag(const DeviceQuota& quota, CUresult rc);
template <typename Call>
CUresult CallDriverGranted(const DeviceQuota& quota, Call&& call) {
  CUresult rc = call();
  if (rc != CUDA_ERROR_OUT_OF_MEMORY || quota.wait_timeout_ns() == 0) return rc;
  const uint64_t deadline = DriverLagDeadline(quota);
  while (rc == CUDA_ERROR_OUT_OF_MEMORY && AwaitDriverLag(deadline)) rc = call();
  NoteDriverLag(quota, rc);
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
