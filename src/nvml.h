// SPDX-License-Identifier: Apache-2.0
// The real NVML, found at run time (libnvidia-ml.so.1), for what the driver API cannot tell:
// how much device memory a device and this process really use.
#pragma once
#include <cstdint>

namespace gpushare {

// Device-wide used bytes of the GPU with this NVML UUID string ("GPU-...").
bool NvmlDeviceUsedBytes(const char* uuid, uint64_t& used);
// Bytes NVML charges to process `pid` on that GPU (what nvidia-smi shows). False when NVML is
// absent or does not list the pid (in a PID namespace NVML reports host pids).
bool NvmlProcessUsedBytes(const char* uuid, unsigned int pid, uint64_t& used);

}  // namespace gpushare
