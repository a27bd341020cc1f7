// SPDX-License-Identifier: Apache-2.0
// Whether the growth of a GPU's used memory across one context's creation is that context's own
// memory, judged from two NVML readings (before and after): the device's used memory and its
// list of compute processes. A context created meanwhile by another process (processes
// starting together), another process's allocation or exit, or a growth that this process's own
// NVML figure does not account for makes it a race, and the delta is then not the context's.
// Pure: quota/context_overhead.cpp takes the readings and decides what to charge.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/nvml.h"

namespace gpushare::quota {

// No context holds more than this of its own at creation (526 MiB on an H100): a larger figure,
// measured or read from the ledger, is someone else's memory.
inline constexpr uint64_t kMaxContextOverhead = 2ull << 30;
// Other processes' NVML figures may move this much while a measurement is lone.
inline constexpr uint64_t kOthersSlackBytes = 16ull << 20;
// The device-wide growth may differ this much from this process's own NVML growth (the driver
// holds some memory it charges to no process): max(128 MiB, a quarter of the own growth).
uint64_t OwnSlackBytes(uint64_t own_bytes);

struct DeviceReading {
  bool used_ok = false;       // nvmlDeviceGetMemoryInfo answered
  uint64_t used_bytes = 0;
  bool processes_ok = false;  // nvmlDeviceGetComputeRunningProcesses answered
  std::vector<NvmlProcessUse> processes;
};

struct OverheadJudgement {
  bool measured = false;  // both readings had the device's used memory
  bool lone = false;      // `bytes` is the device-wide growth, and nothing else moved
  bool checked = false;   // the process lists could be compared (else only the ceiling was)
  uint64_t bytes = 0;     // lone: the growth; otherwise the best estimate (see Judge)
  bool own_known = false; // this process's own NVML growth could be attributed
  uint64_t own_bytes = 0;
  uint64_t device_delta_bytes = 0;  // after - before, 0 when it shrank
  unsigned other_new = 0;           // other processes that appeared in NVML's list meanwhile
  std::string why;                  // why it is not lone, for the log
};

// own_pid: this process's pid as NVML names it, when known (in the initial PID namespace). When
// it is not known or not listed, the process that alone appeared in the list between the
// readings is this one. Not lone, the estimate is, in order: this process's own NVML growth
// when attributable; the median NVML figure of the processes that appeared meanwhile (this one
// among them: all started a context in the same window); the growth, less the other listed
// processes' growth, divided among the processes that appeared. Never above kMaxContextOverhead.
OverheadJudgement JudgeOverhead(const DeviceReading& before, const DeviceReading& after,
                                std::optional<unsigned> own_pid);

}  // namespace gpushare::quota
