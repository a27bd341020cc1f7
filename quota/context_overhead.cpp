// SPDX-License-Identifier: Apache-2.0
#include "quota/context_overhead.h"

#include <mutex>

#include "src/log.h"
#include "src/nvml.h"
#include "src/runtime.h"

namespace gpushare::quota {
namespace {

// Past this, a measured growth is someone else's allocation racing with ours, not overhead.
constexpr uint64_t kMaxPlausibleOverhead = 4ull << 30;

bool DeviceUsedBytes(const DeviceQuota& quota, uint64_t& used) {
  char uuid[41];
  FormatUuid(quota.uuid(), uuid);
  return NvmlDeviceUsedBytes(uuid, used);
}

}  // namespace

ContextOverheadProbe::ContextOverheadProbe(const DeviceQuota& quota) : quota_(quota) {
  if (!Opts().context_overhead) measuring_ = DeviceUsedBytes(quota_, used_before_);
}

uint64_t ContextOverheadProbe::Finish() const {
  if (Opts().context_overhead) return *Opts().context_overhead;
  uint64_t used_after = 0;
  if (!measuring_ || !DeviceUsedBytes(quota_, used_after)) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      GS_LOG_INFO("NVML unavailable: contexts' own memory is not counted "
                  "(set GPUSHARE_CONTEXT_OVERHEAD to count it)");
    });
    return 0;
  }
  const uint64_t growth = used_after > used_before_ ? used_after - used_before_ : 0;
  const uint64_t overhead = growth <= kMaxPlausibleOverhead ? growth : 0;
  GS_LOG_DEBUG("device {}: context overhead measured at {} bytes", quota_.ordinal(), overhead);
  return overhead;
}

}  // namespace gpushare::quota
