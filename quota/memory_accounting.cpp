// SPDX-License-Identifier: Apache-2.0
#include "quota/memory_accounting.h"

#include <unistd.h>

#include <algorithm>

#include "quota/activity.h"
#include "quota/pool_accounting.h"
#include "quota/unseen_memory.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::quota {
namespace {

// Hopper's largest texture pitch alignment; the real pitch replaces the estimate at once.
constexpr uint64_t kPitchAlignment = 512;

uint64_t RoundUp(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

uint64_t FormatBytes(CUarray_format format) {
  switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 16;  // packed, video and compressed formats: never below their real size
  }
}

}  // namespace

Target CurrentTarget() {
  Target t;
  CUdevice dev = 0;
  if (Real().cuCtxGetDevice(&dev) != CUDA_SUCCESS) return t;
  t.quota = QuotaFor(dev);
  if (t.quota != nullptr) Real().cuCtxGetCurrent(&t.context);
  return t;
}

DeviceQuota* StreamQuota(CUstream stream) {
  CUdevice dev = 0;
  if (Real().cuStreamGetDevice != nullptr && Real().cuStreamGetDevice(stream, &dev) == CUDA_SUCCESS)
    return QuotaFor(dev);
  return CurrentQuota();
}

CUresult Deny(const DeviceQuota& quota, uint64_t bytes, const char* what) {
  GS_LOG_DEBUG("device {}: {} of {} bytes denied ({} of {} used)", quota.ordinal(), what, bytes,
               quota.used_bytes(), quota.limit_bytes());
  return CUDA_ERROR_OUT_OF_MEMORY;
}

bool RechargeAfterDriverRefusal(DeviceQuota& quota, Charge& charge, uint64_t deadline_ns) {
  const uint64_t bytes = charge.bytes();
  charge = Charge();  // back to the ledger: the gap is measured without it
  if (ActivityClockNs() >= deadline_ns || quota.session() == nullptr) return false;
  uint64_t hidden = 0;
  CUdevice current = -1;
  size_t free_bytes = 0, total_bytes = 0;
  if (Real().cuCtxGetDevice(&current) == CUDA_SUCCESS && current == quota.ordinal() &&
      Real().cuMemGetInfo_v2(&free_bytes, &total_bytes) == CUDA_SUCCESS)
    hidden = quota.session()->NoteHiddenMemory(free_bytes);
  if (hidden == 0) usleep(5000);  // the ledger agrees there is room: the driver lags (a teardown)
  charge = Charge::Try(&quota, bytes);
  if (!charge) GS_LOG_DEBUG("device {}: {} bytes refused after the driver ran out", quota.ordinal(), bytes);
  return static_cast<bool>(charge);
}

void Keep(HandleKind kind, uint64_t handle, const Target& target, Charge& charge) {
  Record(kind, handle, {target.quota->ordinal(), charge.Keep(), target.context});
}

void ClampMemInfo(DeviceQuota& quota, size_t* free_bytes, size_t* total_bytes) {
  SyncAllPools();
  ReconcileUnseen(quota);
  if (GraphMemoryInUse()) SyncGraphMemory(quota);
  const uint64_t total = quota.visible_total_bytes();
  if (total_bytes != nullptr) *total_bytes = total;
  if (free_bytes != nullptr)
    *free_bytes = std::min<uint64_t>({*free_bytes, quota.headroom_bytes(), total});
}

uint64_t EstimateArrayBytes(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned int mip_levels) {
  const uint64_t row = RoundUp(desc.Width * desc.NumChannels * FormatBytes(desc.Format), kPitchAlignment);
  const uint64_t level0 = row * std::max<size_t>(desc.Height, 1) * std::max<size_t>(desc.Depth, 1);
  // A mip chain adds at most level 0 again (1/2 + 1/4 + ... for 1D), plus padding per level.
  return mip_levels > 1 ? 2 * level0 + mip_levels * kPitchAlignment : level0;
}

uint64_t EstimatePitchedBytes(size_t width_bytes, size_t height) {
  return RoundUp(width_bytes, kPitchAlignment) * height;
}

}  // namespace gpushare::quota
