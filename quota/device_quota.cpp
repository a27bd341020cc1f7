// SPDX-License-Identifier: Apache-2.0
#include "quota/device_quota.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

#include "compute/compute.h"
#include "quota/swap_agent.h"
#include "quota/tenant_identity.h"
#include "sm_partition/sm_partition.h"
#include "quota/watcher.h"
#include "src/log.h"
#include "src/options.h"
#include "src/real_driver.h"
#include "src/runtime.h"

namespace gpushare::quota {

DeviceQuota::DeviceQuota(CUdevice ordinal, const CUuuid& uuid, uint64_t physical_bytes,
                         std::unique_ptr<LedgerSession> session, bool show_request_as_total)
    : ordinal_(ordinal),
      uuid_(uuid),
      physical_bytes_(physical_bytes),
      session_(std::move(session)),
      show_request_as_total_(show_request_as_total) {}

void DeviceQuota::SetUnseen(uint64_t bytes) {
  const uint64_t before = unseen_bytes_.exchange(bytes, std::memory_order_relaxed);
  if (bytes > before) {
    ForceCharge(bytes - before);
  } else {
    Uncharge(before - bytes);
  }
}

uint64_t DeviceQuota::visible_total_bytes() const {
  const uint64_t quota = show_request_as_total_ ? request_bytes() : limit_bytes();
  return quota < physical_bytes_ ? quota : physical_bytes_;
}

void FormatUuid(const CUuuid& uuid, char (&out)[41]) {
  const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
  std::snprintf(out, sizeof out,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
}

namespace {

struct Registry {
  std::array<std::unique_ptr<DeviceQuota>, kMaxDevices> quotas;
  bool all_admitted = true;
};

// Leaked: CUDA frees memory from exit handlers, after static destructors would have run. At
// exit the kernel drops this process's liveness lock and co-tenants reap what it held.
Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

std::unique_ptr<LedgerSession> JoinLedger(int index, const CUuuid& uuid, uint64_t physical,
                                          std::string* error) {
  const Options& o = Opts();
  const Options::Quota quota = o.ResolveQuota(index, physical);
  if (!quota.error.empty()) {
    *error = quota.error;
    return nullptr;
  }
  if (!quota.note.empty()) GS_LOG_INFO("device {}: {}", index, quota.note);
  TenantConfig tenant;
  tenant.name = o.tenant.empty() ? DefaultTenantName() : o.tenant;
  // A tenant with an SM slice but no memory quota: its memory is counted (so co-tenants'
  // guarantees hold) but not capped.
  tenant.request_bytes = quota.limited ? quota.request_bytes : 0;
  tenant.limit_bytes = quota.limited ? quota.limit_bytes : physical;
  tenant.sm = sm::AskOf(o);
  tenant.best_effort = o.best_effort;
  tenant.resolver = o.resolver == option_kind::ResolverValue::kPriority ? ResolverKind::kPriority
                    : o.resolver == option_kind::ResolverValue::kWait   ? ResolverKind::kWait
                    : o.resolver == option_kind::ResolverValue::kSwap   ? ResolverKind::kSwap
                                                                        : ResolverKind::kNone;
  if (tenant.resolver == ResolverKind::kSwap) tenant.swap_quantum_ns = o.swap_quantum;
  tenant.priority = o.priority;
  tenant.idle_timeout_ns = o.idle_timeout;
  tenant.kill_grace_ns = o.kill_grace;
  tenant.compute_share_bp = o.compute.For(index);
  tenant.compute_flags = tenant.compute_share_bp != 0 && o.compute_strict ? GS_COMPUTE_STRICT : 0;
  return LedgerSession::Open(o.ledger_dir, reinterpret_cast<const unsigned char*>(uuid.bytes),
                             physical, tenant, error, physical);
}

// False while the driver is not initialised: the program has not called cuInit yet, and every
// call must get the driver's own CUDA_ERROR_NOT_INITIALIZED (we never initialise it for them).
bool Enumerate() {
  Registry& reg = TheRegistry();
  const RealDriver& real = Real();
  int count = 0;
  const CUresult rc = real.cuDeviceGetCount(&count);
  if (rc == CUDA_ERROR_NOT_INITIALIZED) return false;
  if (rc != CUDA_SUCCESS) return true;
  for (int i = 0; i < count && i < kMaxDevices; ++i) {
    if (!Opts().HasQuota(i) && !sm::AskOf(Opts()).any() && Opts().compute.For(i) == 0) continue;
    CUdevice dev = 0;
    CUuuid uuid{};
    size_t total = 0;
    std::string error;
    std::unique_ptr<LedgerSession> session;
    if (real.cuDeviceGet(&dev, i) != CUDA_SUCCESS || real.cuDeviceGetUuid_v2(&uuid, dev) != CUDA_SUCCESS ||
        real.cuDeviceTotalMem_v2(&total, dev) != CUDA_SUCCESS) {
      error = "cannot read the device's identity";
    } else {
      session = JoinLedger(i, uuid, total, &error);
      if (session != nullptr && !sm::ConfineDevice(i, dev, *session, &error)) session.reset();
    }
    char name[41];
    FormatUuid(uuid, name);
    if (session == nullptr) {
      // Fail closed: a quota we cannot keep denies every allocation, and cuInit fails.
      fmt::print(stderr, "gpushare: device {} ({}): {}; CUDA calls will fail\n", i, name, error);
      reg.all_admitted = false;
    } else {
      GS_LOG_INFO("device {} ({}): tenant request {} limit {} of {} bytes, ledger {}", i, name,
                  session->request_bytes(), session->limit_bytes(), total, session->path());
    }
    const uint32_t share_bp = Opts().compute.For(i);
    if (session != nullptr && share_bp != 0) {
      compute::GateConfig gate;
      gate.turn.quantum_ns = Opts().compute_quantum;
      gate.turn.min_turn_ns = Opts().compute_quantum / 10;
      gate.idle_ns = Opts().compute_idle;
      gate.turn.express_percent = Opts().compute_express;
      compute::AttachDevice(i, *session, gate);
      GS_LOG_INFO("device {} ({}): compute share {}.{:02}% (quantum {} us{})", i, name, share_bp / 100,
                  share_bp % 100, Opts().compute_quantum / 1000, Opts().compute_strict ? ", strict" : "");
    }
    reg.quotas[i] = std::make_unique<DeviceQuota>(
        dev, uuid, total, std::move(session), Opts().meminfo_total == option_kind::MeminfoTotalValue::kRequest);
    const Options& o = Opts();
    if (o.resolver != option_kind::ResolverValue::kNone)
      reg.quotas[i]->SetWaitPolicy(o.wait_timeout, o.wait_mode == option_kind::WaitModeValue::kRetry);
    DeviceQuota& q = *reg.quotas[i];
    if (!q.refused() && q.session()->resolver() == ResolverKind::kSwap)
      swap::AddQuota(q, o.swap_staging.value_or(q.limit_bytes() - q.request_bytes()));
  }
  return true;
}

// Enumerated once the driver is initialised (the first call after the program's cuInit);
// empty before.
Registry& Devices() {
  static std::atomic<bool> enumerated{false};
  if (__builtin_expect(enumerated.load(std::memory_order_acquire), 1)) return TheRegistry();
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (enumerated.load(std::memory_order_relaxed) || !Enumerate()) return TheRegistry();
  swap::StartAgentThread();
  for (const auto& q : TheRegistry().quotas) {
    if (q != nullptr && !q->refused()) {
      StartWatcher();
      break;
    }
  }
  enumerated.store(true, std::memory_order_release);
  return TheRegistry();
}

}  // namespace

DeviceQuota* QuotaFor(CUdevice ordinal) {
  if (ordinal < 0 || ordinal >= kMaxDevices) return nullptr;
  return Devices().quotas[ordinal].get();
}

DeviceQuota* CurrentQuota() {
  CUdevice dev = 0;
  if (Real().cuCtxGetDevice(&dev) != CUDA_SUCCESS) return nullptr;
  return QuotaFor(dev);
}

bool AllDevicesAdmitted() { return Devices().all_admitted; }

}  // namespace gpushare::quota
