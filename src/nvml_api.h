// SPDX-License-Identifier: Apache-2.0
// The few NVML declarations gpushare needs. The CUDA toolkit here ships no nvml.h; these match
// NVIDIA's stable C ABI of libnvidia-ml.so.1 (nvml.h of driver R550+).
#pragma once
#include <cstdint>

extern "C" {
typedef int nvmlReturn_t;  // NVML_SUCCESS == 0
typedef struct nvmlDevice_st* nvmlDevice_t;
typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;
typedef struct {
  unsigned int version;  // nvmlMemory_v2
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;
// Also the layout of nvmlProcessInfo_t, which the _v3 entry points take.
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
  unsigned long long usedGpuCcProtectedMemory;
} nvmlProcessDetail_v1_t;
typedef struct {
  unsigned int version;  // nvmlProcessDetailList_v1
  unsigned int mode;     // 0 compute, 1 graphics, 2 MPS compute
  unsigned int numProcArrayEntries;
  nvmlProcessDetail_v1_t* procArray;
} nvmlProcessDetailList_v1_t;

// Declared by their exported names, so hooks/nvml.cpp is type-checked against them.
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v1_t* infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v2_t* infos);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v2_t* infos);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v1_t* infos);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v2_t* infos);
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v2_t* infos);
nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(nvmlDevice_t device, nvmlProcessDetailList_v1_t* plist);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index);
}

// Their function types, named like cudaTypedefs.h's, for the NVML hook table.
using PFN_nvmlDeviceGetMemoryInfo = decltype(&nvmlDeviceGetMemoryInfo);
using PFN_nvmlDeviceGetMemoryInfo_v2 = decltype(&nvmlDeviceGetMemoryInfo_v2);
using PFN_nvmlDeviceGetComputeRunningProcesses = decltype(&nvmlDeviceGetComputeRunningProcesses);
using PFN_nvmlDeviceGetComputeRunningProcesses_v2 = decltype(&nvmlDeviceGetComputeRunningProcesses_v2);
using PFN_nvmlDeviceGetComputeRunningProcesses_v3 = decltype(&nvmlDeviceGetComputeRunningProcesses_v3);
using PFN_nvmlDeviceGetMPSComputeRunningProcesses = decltype(&nvmlDeviceGetMPSComputeRunningProcesses);
using PFN_nvmlDeviceGetMPSComputeRunningProcesses_v2 = decltype(&nvmlDeviceGetMPSComputeRunningProcesses_v2);
using PFN_nvmlDeviceGetMPSComputeRunningProcesses_v3 = decltype(&nvmlDeviceGetMPSComputeRunningProcesses_v3);
using PFN_nvmlDeviceGetRunningProcessDetailList = decltype(&nvmlDeviceGetRunningProcessDetailList);
using PFN_nvmlDeviceGetUUID = decltype(&nvmlDeviceGetUUID);
using PFN_nvmlDeviceGetIndex = decltype(&nvmlDeviceGetIndex);

namespace gpushare {
inline constexpr nvmlReturn_t kNvmlSuccess = 0;
inline constexpr nvmlReturn_t kNvmlErrorInvalidArgument = 2;
inline constexpr nvmlReturn_t kNvmlErrorNoPermission = 4;
inline constexpr nvmlReturn_t kNvmlErrorInsufficientSize = 7;
inline constexpr nvmlReturn_t kNvmlErrorLibraryNotFound = 12;
inline constexpr nvmlReturn_t kNvmlErrorFunctionNotFound = 13;
inline constexpr unsigned kNvmlUuidBytes = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE
}  // namespace gpushare
