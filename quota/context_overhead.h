// SPDX-License-Identifier: Apache-2.0
// A CUDA context holds device memory of its own (526 MiB for a bare context on our H100), which
// counts against the quota. GPUSHARE_CONTEXT_OVERHEAD fixes the figure; "auto" measures it.
//
// Measuring is the growth of the device's used memory across the context's creation (NVML), and
// processes that start together would each see the others' contexts in it. So:
//  - a process's first context on a GPU is charged the figure the GPU's ledger holds for this
//    driver and MPS mode, when one is there; no measurement;
//  - otherwise the process takes the ledger's measuring turn (one process at a time; the others
//    wait for the figure, at most kTurnWaitMs) and measures; a measurement is accepted only when
//    nothing else moved (quota/overhead_judge.h), and the first accepted one is published;
//  - a measurement that raced is not charged: the ledger's figure is, or an estimate bounded by
//    kMaxContextOverhead (this process's own NVML figure where it can be attributed).
// Later contexts of a process are measured too (they hold less than a first one), falling back
// the same way.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "quota/device_quota.h"
#include "quota/overhead_judge.h"

namespace gpushare::quota {

class ContextOverheadProbe {
 public:
  // How long a first context waits for another process's measurement before measuring itself.
  static constexpr int kTurnWaitMs = 5000;

  // Before the context exists: finds the shared figure, or takes the turn and reads NVML.
  explicit ContextOverheadProbe(const DeviceQuota& quota);
  ~ContextOverheadProbe();  // gives the turn back
  ContextOverheadProbe(const ContextOverheadProbe&) = delete;
  ContextOverheadProbe& operator=(const ContextOverheadProbe&) = delete;

  // The overhead to charge for the context created since construction; publishes a lone
  // measurement of a first context.
  uint64_t Finish();
  // Where Finish's figure came from, for messages ("measured alone", "shared in the ledger", ...).
  const std::string& source() const { return source_; }

 private:
  DeviceReading Read() const;
  bool Shared(uint64_t* bytes) const;
  void ReleaseTurn();

  const DeviceQuota& quota_;
  LedgerSession* ledger_ = nullptr;
  std::unique_lock<std::mutex> device_lock_;  // one measurement at a time in this process
  bool first_ = false;
  bool holds_turn_ = false;
  std::optional<uint64_t> fixed_;  // GPUSHARE_CONTEXT_OVERHEAD, or the ledger's figure
  ContextOverheadKey key_;
  std::optional<unsigned> own_pid_;
  DeviceReading before_;
  std::string source_;
};

// A context that does not fit is refused with CUDA_ERROR_OUT_OF_MEMORY: says why, at warn level.
void WarnContextRefused(const DeviceQuota& quota, uint64_t overhead, const std::string& source);

}  // namespace gpushare::quota
