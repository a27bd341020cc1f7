// SPDX-License-Identifier: Apache-2.0
// What NVML shows a tenant (the decisions behind hooks/nvml.cpp): a device with a quota shows the
// quota as its total, the tenant's use (all its processes, from the ledger) as used, and only
// the tenant's own processes. A device without a quota for this process passes through.
//
// The tenant's figures come from the GPU's ledger when the tenant has joined it (any of its
// processes initialised CUDA there), else from the options (nothing used yet). nvidia-smi and
// other NVML-only programs need no CUDA for this.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/nvml_api.h"
#include "src/nvml_processes.h"

namespace gpushare {

struct NvmlDeviceView {
  nvmlReturn_t status = kNvmlSuccess;  // anything else: the hook returns it (fail closed)
  bool limited = false;                // false: pass the real figures and processes through
  uint64_t quota_bytes = 0;            // shown as total (capped by the physical total)
  uint64_t used_bytes = 0;             // the tenant's, all its processes
  std::vector<TenantProcess> processes;  // its live processes on this GPU
};

// For NVML's device handle. physical_total_bytes sizes quotas relative to the device (0 when
// the caller has not read it: the view then only knows the ledger's figures and processes).
NvmlDeviceView ViewOfNvmlDevice(nvmlDevice_t device, uint64_t physical_total_bytes);

struct NvmlMemoryFigures {
  uint64_t total = 0;
  uint64_t free = 0;
  uint64_t used = 0;
};
// total = min(quota, physical total), used = min(tenant's use, total),
// free = min(total - used, physical free).
NvmlMemoryFigures ClampNvmlMemory(const NvmlDeviceView& view, const NvmlMemoryFigures& physical);

// The CUDA device index of NVML device `nvml_index` (uuid "GPU-..."), given CUDA_VISIBLE_DEVICES
// (nullptr: unset); -1 when CUDA does not see it. Assumes CUDA enumerates in NVML's (PCI) order,
// true for identical GPUs.
int CudaIndexOfNvmlDevice(unsigned int nvml_index, std::string_view uuid, const char* cuda_visible_devices);

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" -> its 16 bytes; nullopt for anything else (MIG-...).
std::optional<std::string> UuidBytesOf(std::string_view nvml_uuid);

}  // namespace gpushare
