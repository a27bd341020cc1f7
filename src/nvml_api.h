// The few NVML declarations gpushare needs. The CUDA toolkit here ships no nvml.h; these match
// NVIDIA's stable C ABI of libnvidia-ml.so.1.
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
}

namespace gpushare {
inline constexpr nvmlReturn_t kNvmlSuccess = 0;
}
