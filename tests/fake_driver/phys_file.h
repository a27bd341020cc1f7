// SPDX-License-Identifier: Apache-2.0
// The fake GPU's physical memory shared across processes (GPUSHARE_FAKE_STATE_DIR): one
// memory-mapped file per device, <dir>/fakegpu-<index>, of per-process slots updated under
// flock. The fake driver (physical.cpp) writes it; the fake NVML (tests/fake_nvml) reads it
// with GPUSHARE_FAKE_NVML_LIVE=1, as the real NVML sees every process's memory.
#pragma once
#include <cstdint>
#include <string>

namespace fakecuda::phys_file {

inline constexpr uint64_t kMagic = 0x3176706b66736721ull;  // "!gsfkpv1"
inline constexpr int kSlots = 1024;

struct Slot {
  int32_t pid;        // 0: free
  uint32_t contexts;  // its contexts whose creation finished: NVML lists it while nonzero
  uint64_t bytes;     // device memory it holds, its contexts' own included
};

struct SharedFile {
  uint64_t magic;
  uint64_t reserved;
  Slot slots[kSlots];
};

inline std::string PathOf(const std::string& dir, int device) {
  return dir + "/fakegpu-" + std::to_string(device);
}

}  // namespace fakecuda::phys_file
