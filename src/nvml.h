// SPDX-License-Identifier: Apache-2.0
// The real NVML, found at run time (libnvidia-ml.so.1), for what the driver API cannot tell:
// how much device memory a device and this process really use.
#pragma once
#include <cstdint>
#include <vector>

namespace gpushare {

// One compute process as NVML lists it: its pid in the initial PID namespace (a host pid, also
// inside containers) and the device memory NVML charges to it.
struct NvmlProcessUse {
  unsigned int pid = 0;
  uint64_t used_bytes = 0;  // kNvmlUsedUnknown when NVML does not say
};
inline constexpr uint64_t kNvmlUsedUnknown = ~0ull;  // NVML_VALUE_NOT_AVAILABLE

// Device-wide used bytes of the GPU with this NVML UUID string ("GPU-...").
bool NvmlDeviceUsedBytes(const char* uuid, uint64_t& used);
// Bytes NVML charges to process `pid` on that GPU (what nvidia-smi shows). False when NVML is
// absent or does not list the pid (in a PID namespace NVML reports host pids).
bool NvmlProcessUsedBytes(const char* uuid, unsigned int pid, uint64_t& used);
// Every compute process NVML lists on that GPU. False when NVML or its process list is absent.
bool NvmlDeviceProcesses(const char* uuid, std::vector<NvmlProcessUse>& out);

}  // namespace gpushare
