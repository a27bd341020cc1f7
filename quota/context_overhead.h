// SPDX-License-Identifier: Apache-2.0
// A CUDA context holds device memory of its own (526 MiB for a bare context on our H100), which
// counts against the quota. GPUSHARE_CONTEXT_OVERHEAD fixes the figure; "auto" measures it as
// the growth of the device's used memory across the context's creation, read through NVML.
#pragma once
#include <cstdint>

#include "quota/device_quota.h"

namespace gpushare::quota {

class ContextOverheadProbe {
 public:
  // Reads the device's used memory now (when measuring), before the context exists.
  explicit ContextOverheadProbe(const DeviceQuota& quota);
  // The overhead to charge for the context created since construction.
  uint64_t Finish() const;

 private:
  const DeviceQuota& quota_;
  uint64_t used_before_ = 0;
  bool measuring_ = false;
};

}  // namespace gpushare::quota
