// SPDX-License-Identifier: Apache-2.0
// Device memory the driver holds for this process outside every allocation the hooks see:
// kernel code loaded lazily on first launch (CUDA_MODULE_LOADING=LAZY), local memory, a
// context's growth after creation. nvidia-smi counts it, so the quota must too. NVML reports
// the process's real use; the difference from what we charge is charged as "unseen".
#pragma once
#include "quota/charge.h"

namespace gpushare::quota {

// Re-reads NVML's figure for this process. No-op without NVML or when NVML does not list our
// pid (inside a PID namespace it reports host pids).
void ReconcileUnseen(DeviceQuota& quota);

// Charges an allocation. Near the limit (and before refusing), unseen memory is re-read first,
// so that what the program is granted plus what the driver holds stays under the limit.
Charge ChargeAllocation(DeviceQuota& quota, uint64_t bytes);

}  // namespace gpushare::quota
