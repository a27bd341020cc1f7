// SPDX-License-Identifier: Apache-2.0
#include "quota/context_overhead.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "src/log.h"
#include "src/nvml.h"
#include "src/nvml_processes.h"
#include "src/options.h"
#include "src/runtime.h"
#include "src/real_driver.h"

namespace gpushare::quota {
namespace {

constexpr auto kTurnPoll = std::chrono::milliseconds(10);

struct PerDevice {
  std::mutex mu;
  std::atomic<bool> had_context{false};  // a first context was charged already
};

PerDevice& StateOf(CUdevice dev) {
  static PerDevice* devices = new PerDevice[kMaxDevices];  // leaked: contexts die during exit
  return devices[dev >= 0 && dev < kMaxDevices ? dev : 0];
}

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

ContextOverheadKey KeyOf(CUdevice dev) {
  ContextOverheadKey key;
  Real().cuDriverGetVersion(&key.driver_version);
  int mps = 0;
  if (Real().cuDeviceGetAttribute(&mps, CU_DEVICE_ATTRIBUTE_MPS_ENABLED, dev) == CUDA_SUCCESS) key.mps = mps != 0;
  return key;
}

// NVML's pids are those of the initial PID namespace: getpid() names this process there only.
std::optional<unsigned> OwnNvmlPid() {
  static const bool initial = ProcessAttribution().InInitialPidNamespace();
  if (!initial) return std::nullopt;
  return static_cast<unsigned>(getpid());
}

}  // namespace

ContextOverheadProbe::ContextOverheadProbe(const DeviceQuota& quota) : quota_(quota) {
  if (Opts().context_overhead) {
    fixed_ = *Opts().context_overhead;
    source_ = "GPUSHARE_CONTEXT_OVERHEAD";
    return;
  }
  const int saved_errno = errno;
  PerDevice& state = StateOf(quota_.ordinal());
  device_lock_ = std::unique_lock(state.mu);
  first_ = !state.had_context.load(std::memory_order_relaxed);
  ledger_ = quota_.session();
  key_ = KeyOf(quota_.ordinal());
  if (first_ && ledger_ != nullptr) {
    uint64_t shared = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTurnWaitMs);
    while (!Shared(&shared)) {
      if (ledger_->TryHoldOverheadTurn()) {
        holds_turn_ = true;
        if (Shared(&shared)) ReleaseTurn();  // published just before we got the turn
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        GS_LOG_INFO("device {}: another process has been measuring a context's own memory for {} ms; "
                    "measuring without waiting", quota_.ordinal(), kTurnWaitMs);
        break;
      }
      std::this_thread::sleep_for(kTurnPoll);
    }
    if (shared != 0) {
      fixed_ = shared;
      source_ = "shared in the ledger";
      errno = saved_errno;
      return;
    }
  }
  own_pid_ = OwnNvmlPid();
  before_ = Read();
  errno = saved_errno;
}

ContextOverheadProbe::~ContextOverheadProbe() { ReleaseTurn(); }

void ContextOverheadProbe::ReleaseTurn() {
  if (holds_turn_ && ledger_ != nullptr) ledger_->ReleaseOverheadTurn();
  holds_turn_ = false;
}

// The ledger's figure for this driver and MPS mode, when it is plausible.
bool ContextOverheadProbe::Shared(uint64_t* bytes) const {
  uint64_t v = 0;
  if (ledger_ == nullptr || !ledger_->CachedContextOverhead(key_, &v)) return false;
  if (v == 0 || v > kMaxContextOverhead) {
    static std::once_flag warned;
    std::call_once(warned, [&] {
      GS_LOG_WARN("ledger {}: ignoring its context overhead of {} bytes (above {:.0f} MiB or zero)",
                  ledger_->path(), v, MiB(kMaxContextOverhead));
    });
    return false;
  }
  *bytes = v;
  return true;
}

DeviceReading ContextOverheadProbe::Read() const {
  char uuid[41];
  FormatUuid(quota_.uuid(), uuid);
  DeviceReading r;
  r.processes_ok = NvmlDeviceProcesses(uuid, r.processes);
  r.used_ok = NvmlDeviceUsedBytes(uuid, r.used_bytes);
  return r;
}

uint64_t ContextOverheadProbe::Finish() {
  if (!device_lock_.owns_lock()) return fixed_.value_or(0);  // GPUSHARE_CONTEXT_OVERHEAD
  const int saved_errno = errno;
  StateOf(quota_.ordinal()).had_context.store(true, std::memory_order_relaxed);
  if (fixed_) {
    GS_LOG_INFO("device {}: context's own memory {:.1f} MiB ({})", quota_.ordinal(), MiB(*fixed_), source_);
    errno = saved_errno;
    return *fixed_;
  }
  const OverheadJudgement j = JudgeOverhead(before_, Read(), own_pid_);
  uint64_t bytes = j.bytes;
  uint64_t shared = 0;
  if (!j.measured) {
    static std::once_flag told;
    std::call_once(told, [] {
      GS_LOG_INFO("NVML unavailable: contexts' own memory is not measured "
                  "(set GPUSHARE_CONTEXT_OVERHEAD to count it)");
    });
    const bool have = Shared(&shared);
    bytes = have ? shared : 0;
    source_ = have ? "shared in the ledger" : "not measured: NVML unavailable";
  } else if (j.lone) {
    source_ = first_ ? "measured alone" : "measured alone (a later context of this process)";
    // Published when nobody else measured meanwhile: the turn rules out other gpushare starts,
    // NVML's process list everyone else.
    if (first_ && bytes > 0 && ledger_ != nullptr && (holds_turn_ || j.checked))
      ledger_->PublishContextOverhead(key_, bytes);
  } else if (Shared(&shared)) {
    bytes = shared;
    source_ = "shared in the ledger; this process's measurement raced (" + j.why + ")";
  } else {
    source_ = std::string(j.own_known ? "this process's own NVML figure" : "estimated") +
              "; the measurement raced (" + j.why + ")";
  }
  ReleaseTurn();
  GS_LOG_INFO("device {}: context's own memory {:.1f} MiB ({}; device-wide growth {:.1f} MiB)", quota_.ordinal(),
              MiB(bytes), source_, MiB(j.device_delta_bytes));
  errno = saved_errno;
  return bytes;
}

void WarnContextRefused(const DeviceQuota& quota, uint64_t overhead, const std::string& source) {
  if (quota.refused()) return;  // said at cuInit
  GS_LOG_WARN("device {}: CUDA context refused (CUDA_ERROR_OUT_OF_MEMORY): its own memory, {:.1f} MiB ({}), "
              "does not fit the tenant's quota: limit {:.1f} MiB, request {:.1f} MiB, used {:.1f} MiB, "
              "{:.1f} MiB could be had now; GPUSHARE_CONTEXT_OVERHEAD sets the figure charged per context",
              quota.ordinal(), MiB(overhead), source, MiB(quota.limit_bytes()), MiB(quota.request_bytes()),
              MiB(quota.used_bytes()), MiB(quota.headroom_bytes()));
}

}  // namespace gpushare::quota
