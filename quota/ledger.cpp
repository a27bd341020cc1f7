// SPDX-License-Identifier: Apache-2.0
// LedgerSession: joining, charging and leaving one GPU's ledger.
//
// Lock-free pair update (AdjustAtomic): a process raises its slot's `inflight`, CASes its
// tenant's used_bytes, adds to its own used_bytes, lowers `inflight`. The lock holder recounts a
// tenant (after a death) by setting GS_TENANT_USED_FROZEN with a CAS, which makes every later
// CAS of that word fail over to the locked path, waiting for live processes' `inflight` to reach
// zero, and storing the sum of the live processes' used_bytes. A process killed anywhere inside
// the pair is thus dropped exactly: its slot no longer counts, whatever it had done.
#include "quota/ledger.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "quota/slot_liveness.h"
#include "quota/tenant_identity.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;  // the atomic helpers and timeouts

ChargeVerdict DecideCharge(const ChargeQuery& q) {
  if (q.bytes > q.limit_bytes || q.tenant_used_bytes > q.limit_bytes - q.bytes)
    return ChargeVerdict::kOverLimit;
  const uint64_t new_used = q.tenant_used_bytes + q.bytes;
  if (new_used <= q.request_bytes) return ChargeVerdict::kGrant;  // held back for it
  const uint64_t promised = q.sum_request_bytes + q.others_burst_bytes;
  const uint64_t pool = q.usable_bytes > promised ? q.usable_bytes - promised : 0;
  if (BurstOf(new_used, q.request_bytes) > pool) return ChargeVerdict::kNoBurstRoom;
  if (q.others_used_bytes > q.usable_bytes || new_used > q.usable_bytes - q.others_used_bytes)
    return ChargeVerdict::kNoPhysicalRoom;
  return ChargeVerdict::kGrant;
}

Room ShortfallOf(const ChargeQuery& q) {
  const uint64_t new_used = q.tenant_used_bytes + q.bytes;
  const uint64_t promised = q.sum_request_bytes + q.others_burst_bytes;
  const uint64_t pool = q.usable_bytes > promised ? q.usable_bytes - promised : 0;
  const uint64_t burst = BurstOf(new_used, q.request_bytes);
  const uint64_t physical = q.usable_bytes > q.others_used_bytes ? q.usable_bytes - q.others_used_bytes : 0;
  return {burst > pool ? burst - pool : 0, new_used > physical ? new_used - physical : 0};
}

const char* DescribeVerdict(ChargeVerdict verdict) {
  switch (verdict) {
    case ChargeVerdict::kGrant: return "granted";
    case ChargeVerdict::kOverLimit: return "past the tenant's limit";
    case ChargeVerdict::kNoBurstRoom: return "the burst pool is exhausted";
    case ChargeVerdict::kNoPhysicalRoom: return "the GPU is full";
  }
  return "?";
}

const char* ResolverName(ResolverKind resolver) {
  switch (resolver) {
    case ResolverKind::kNone: return "none";
    case ResolverKind::kWait: return "wait";
    case ResolverKind::kPriority: return "priority";
    case ResolverKind::kSwap: return "swap";
  }
  return "?";
}

const char* DescribeTerminationReason(uint32_t reason) {
  switch (reason) {
    case GS_TERMINATE_LOWER_PRIORITY: return "lower priority";
    case GS_TERMINATE_IDLE: return "idle";
    default: return "?";
  }
}

uint64_t ActivityClockNs() { return lf::NowMonotonicNs(); }

std::string LedgerPath(const std::string& dir, const unsigned char uuid[16]) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "gpushare-";
  for (int i = 0; i < 16; ++i) {
    name += kHex[uuid[i] >> 4];
    name += kHex[uuid[i] & 15];
  }
  return (dir.empty() || dir.back() == '/' ? dir : dir + "/") + name + ".ledger";
}

std::unique_ptr<LedgerSession> LedgerSession::Open(const std::string& dir, const unsigned char uuid[16],
                                                   uint64_t usable_bytes, const TenantConfig& tenant,
                                                   std::string* error, uint64_t total_bytes) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  if (tenant.name.empty() || tenant.name.size() >= GS_LEDGER_NAME_BYTES ||
      tenant.name.find('\0') != std::string::npos) {
    *error = "gpushare: tenant name '" + tenant.name + "' must have 1 to " +
             std::to_string(GS_LEDGER_NAME_BYTES - 1) + " bytes";
    return nullptr;
  }
  if (tenant.request_bytes > tenant.limit_bytes) {
    *error = "gpushare: tenant '" + tenant.name + "' asks for request " +
             std::to_string(tenant.request_bytes) + " above its limit " + std::to_string(tenant.limit_bytes);
    return nullptr;
  }
  if (usable_bytes == 0) {
    *error = "gpushare: a ledger needs the GPU's usable bytes";
    return nullptr;
  }
  if (!lf::EnsureDir(dir, error)) return nullptr;
  std::unique_ptr<LedgerSession> s(new LedgerSession);
  s->path_ = LedgerPath(dir, uuid);
  s->fd_ = lf::OpenOrCreate(s->path_, uuid, total_bytes < usable_bytes ? usable_bytes : total_bytes,
                            usable_bytes, error);
  if (s->fd_ < 0) return nullptr;
  s->map_ = lf::MapChecked(s->fd_, s->path_, /*writable=*/true, error);
  if (s->map_ == nullptr) return nullptr;
  s->header_ = lf::Header(s->map_);
  s->tenants_ = lf::Tenants(s->map_);
  s->processes_ = lf::Processes(s->map_);
  s->usable_bytes_ = s->header_->usable_bytes;
  if (std::memcmp(s->header_->uuid, uuid, 16) != 0) {
    *error = "gpushare: refusing the ledger " + s->path_ + ": it belongs to another GPU (UUID mismatch)";
    return nullptr;
  }
  if (s->usable_bytes_ != usable_bytes)
    GS_LOG_INFO("gpushare: ledger {} shares {} usable bytes (this process measured {})", s->path_,
                s->usable_bytes_, usable_bytes);
  RobustLockGuard guard(s->header_->lock, kLockTimeoutMs, [&] { s->RepairLocked(); });
  if (!guard.held()) {
    *error = "gpushare: ledger " + s->path_ + ": " + guard.Describe();
    return nullptr;
  }
  if (std::string why = lf::CheckSlots(s->map_); !why.empty()) {
    *error = "gpushare: refusing the ledger " + s->path_ + ": " + why;
    return nullptr;
  }
  s->ReapLocked(/*all_tenants=*/false);
  if (!s->Join(tenant, error) || !s->ClaimProcessSlot(error)) return nullptr;
  return s;
}

void LedgerSession::AdoptResolver(const TenantConfig& cfg) {
  resolver_ = cfg.resolver;
  priority_ = cfg.priority;
  idle_timeout_ns_ = cfg.idle_timeout_ns;
  kill_grace_ns_ = cfg.kill_grace_ns;
  swap_quantum_ns_ = cfg.swap_quantum_ns;
}

bool LedgerSession::Join(const TenantConfig& cfg, std::string* error) {
  uint64_t sum_requests = 0, others_burst = 0;
  int free_slot = -1;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    GsLedgerTenant& t = tenants_[i];
    if (t.state != GS_SLOT_ACTIVE) {
      if (free_slot < 0) free_slot = static_cast<int>(i);
      continue;
    }
    if (std::strncmp(t.name, cfg.name.c_str(), sizeof t.name) == 0) {
      if (t.asked_request_bytes != cfg.request_bytes || t.limit_bytes != cfg.limit_bytes) {
        *error = "gpushare: tenant '" + cfg.name + "' in " + path_ + " has request " +
                 std::to_string(t.asked_request_bytes) + " and limit " + std::to_string(t.limit_bytes) +
                 "; this process asks for request " + std::to_string(cfg.request_bytes) +
                 " and limit " + std::to_string(cfg.limit_bytes);
        return false;
      }
      if (t.resolver != static_cast<uint32_t>(cfg.resolver) || t.priority != cfg.priority ||
          t.idle_timeout_ns != cfg.idle_timeout_ns || t.kill_grace_ns != cfg.kill_grace_ns ||
          t.swap_quantum_ns != cfg.swap_quantum_ns) {
        *error = "gpushare: tenant '" + cfg.name + "' in " + path_ + " has resolver " +
                 ResolverName(static_cast<ResolverKind>(t.resolver)) + ", priority " +
                 std::to_string(t.priority) + ", idle timeout " + std::to_string(t.idle_timeout_ns) +
                 " ns, kill grace " + std::to_string(t.kill_grace_ns) + " ns; this process asks for " +
                 ResolverName(cfg.resolver) + ", " + std::to_string(cfg.priority) + ", " +
                 std::to_string(cfg.idle_timeout_ns) + " ns, " + std::to_string(cfg.kill_grace_ns) +
                 " ns (every process of a tenant must agree; swap quantum " +
                 std::to_string(t.swap_quantum_ns) + " ns here, " + std::to_string(cfg.swap_quantum_ns) +
                 " ns asked)";
        return false;
      }
      if (t.compute_share_bp != cfg.compute_share_bp || t.compute_flags != cfg.compute_flags) {
        *error = "gpushare: tenant '" + cfg.name + "' in " + path_ + " has a compute share of " +
                 std::to_string(t.compute_share_bp) + " basis points (flags " + std::to_string(t.compute_flags) +
                 "); this process asks for " + std::to_string(cfg.compute_share_bp) + " (flags " +
                 std::to_string(cfg.compute_flags) + ") (GPUSHARE_COMPUTE, GPUSHARE_COMPUTE_STRICT: every "
                 "process of a tenant must agree)";
        return false;
      }
      if (t.sm_asked_kind != cfg.sm.kind || t.sm_asked != cfg.sm.value) {
        *error = "gpushare: tenant '" + cfg.name + "' in " + path_ + " has GPUSHARE_SM " +
                 sm::DescribeAsk({t.sm_asked_kind, t.sm_asked}) + "; this process asks for " +
                 sm::DescribeAsk(cfg.sm) + " (every process of a tenant must agree)";
        return false;
      }
      tenant_index_ = i;
      tenant_ = &t;
      request_bytes_ = t.request_bytes;
      limit_bytes_ = t.limit_bytes;
      best_effort_ = (t.flags & GS_TENANT_BEST_EFFORT) != 0;
      AdoptResolver(cfg);
      return true;
    }
    const uint64_t used = Load(t.used_bytes) & kUsedMask;
    sum_requests += t.request_bytes;
    others_burst += BurstOf(used, t.request_bytes);
  }
  if (free_slot < 0) {
    *error = "gpushare: ledger " + path_ + " has no free tenant slot (" +
             std::to_string(GS_LEDGER_TENANT_SLOTS) + " tenants share this GPU)";
    return false;
  }
  // The request is held back for the tenant from now on, so it must be neither promised to
  // another tenant nor taken by their bursts.
  const uint64_t promised = sum_requests + others_burst;
  const uint64_t room = usable_bytes_ > promised ? usable_bytes_ - promised : 0;
  uint64_t request = cfg.request_bytes;
  uint32_t flags = 0;
  if (request > room) {
    const std::string why = "tenant '" + cfg.name + "' asks for request " + std::to_string(request) +
        " bytes but " + path_ + " can guarantee only " + std::to_string(room) + " (usable " +
        std::to_string(usable_bytes_) + ", requested by others " + std::to_string(sum_requests) +
        ", burst by others " + std::to_string(others_burst) + ")";
    if (!cfg.best_effort) {
      *error = "gpushare: " + why;
      return false;
    }
    GS_LOG_WARN("gpushare: {}; admitted best-effort with request 0", why);
    request = 0;
    flags = GS_TENANT_BEST_EFFORT;
  }
  GsLedgerTenant& t = tenants_[free_slot];
  std::memset(&t, 0, sizeof t);
  t.flags = flags;
  t.request_bytes = request;
  t.limit_bytes = cfg.limit_bytes;
  t.asked_request_bytes = cfg.request_bytes;
  t.joined_unix_ns = lf::NowUnixNs();
  t.resolver = static_cast<uint32_t>(cfg.resolver);
  t.priority = cfg.priority;
  t.idle_timeout_ns = cfg.idle_timeout_ns;
  t.kill_grace_ns = cfg.kill_grace_ns;
  t.swap_quantum_ns = cfg.swap_quantum_ns;
  t.swap_turn_ns = lf::NowMonotonicNs();
  t.sm_asked_kind = cfg.sm.kind;
  t.sm_asked = cfg.sm.value;
  t.compute_share_bp = cfg.compute_share_bp;
  t.compute_flags = cfg.compute_flags;
  std::memcpy(t.name, cfg.name.data(), cfg.name.size());
  StoreState(t.state, GS_SLOT_ACTIVE);
  tenant_index_ = static_cast<uint32_t>(free_slot);
  tenant_ = &t;
  request_bytes_ = request;
  limit_bytes_ = cfg.limit_bytes;
  best_effort_ = flags != 0;
  AdoptResolver(cfg);
  return true;
}

bool LedgerSession::ClaimProcessSlot(std::string* error) {
  const CgroupIdentity id = ReadCgroupIdentity();
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    GsLedgerProcess& p = processes_[i];
    if (p.state != GS_SLOT_FREE) continue;
    if (!HoldSlotLock(fd_, lf::ProcessSlotOffset(i), GS_LEDGER_PROCESS_SLOT_BYTES)) continue;
    const uint64_t generation = p.generation + 1;
    std::memset(&p, 0, sizeof p);
    p.tenant_index = tenant_index_;
    p.generation = generation;
    p.pid = static_cast<uint32_t>(getpid());
    p.start_unix_ns = lf::NowUnixNs();
    p.last_active_ns = lf::NowMonotonicNs();  // joining counts as activity
    std::strncpy(p.container_id, id.container_id.c_str(), sizeof p.container_id - 1);
    StoreState(p.state, GS_SLOT_ACTIVE);
    tenant_->process_count += 1;
    process_index_ = i;
    process_ = &p;
    return true;
  }
  if (tenant_->process_count == 0) RemoveTenantLocked(tenant_index_);
  *error = "gpushare: ledger " + path_ + " has no free process slot (" +
           std::to_string(GS_LEDGER_PROCESS_SLOTS) + " processes share this GPU)";
  return false;
}

LedgerSession::~LedgerSession() { Leave(); }

void LedgerSession::Leave() {
  if (process_ != nullptr) {
    RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
    if (guard.held()) {
      ReapLocked(/*all_tenants=*/false);  // so a tenant left with only dead processes goes too
      const uint64_t mine = Load(process_->used_bytes);
      auto used = A(tenant_->used_bytes);
      uint64_t u = used.load(std::memory_order_relaxed);
      while (!used.compare_exchange_weak(u, u - (u > mine ? mine : u), std::memory_order_acq_rel)) {
      }
      A(process_->used_bytes).store(0, std::memory_order_release);
      StoreState(process_->state, GS_SLOT_FREE);
      if (tenant_->process_count > 0) tenant_->process_count -= 1;
      if (tenant_->process_count == 0) RemoveTenantLocked(tenant_index_);
      NotifyFreed();
    }
    // Without the lock our slot stays active; once the descriptor closes, the next reaper
    // sees it unlocked and releases its usage.
    ReleaseSlotLock(fd_, lf::ProcessSlotOffset(process_index_), GS_LEDGER_PROCESS_SLOT_BYTES);
  }
  lf::Unmap(map_);
  if (fd_ >= 0) close(fd_);
  map_ = nullptr;
  fd_ = -1;
  process_ = nullptr;
}

void LedgerSession::RemoveTenantLocked(uint32_t index) {
  GsLedgerTenant& t = tenants_[index];
  StoreState(t.state, GS_SLOT_FREE);
  A(t.used_bytes).store(0, std::memory_order_release);
  t.process_count = 0;
  NotifyFreed();  // its request and burst went back to the pool
}

bool LedgerSession::AdjustAtomic(uint64_t bytes, bool add) {
  auto inflight = A(process_->inflight);
  auto tenant_used = A(tenant_->used_bytes);
  auto own = A(process_->used_bytes);
  inflight.fetch_add(1, std::memory_order_relaxed);
  uint64_t u = tenant_used.load(std::memory_order_relaxed);
  uint64_t delta = bytes;
  if (!add) {  // never below what this process holds: a double free must not wrap
    const uint64_t mine = own.load(std::memory_order_relaxed);
    if (delta > mine) delta = mine;
  }
  for (;;) {
    if (u & GS_TENANT_USED_FROZEN) {
      inflight.fetch_sub(1, std::memory_order_release);
      return false;
    }
    const uint64_t next = add ? u + delta : u - (u > delta ? delta : u);
    // seq_cst: a free's store and its later read of header.waiting pair with a waiter's
    // registration and its later read of the tenants' use (no lost wake-up).
    if (tenant_used.compare_exchange_weak(u, next, std::memory_order_seq_cst, std::memory_order_relaxed))
      break;
  }
  if (add) {
    NotePeak(process_, own.fetch_add(delta, std::memory_order_relaxed) + delta);
  } else {
    own.fetch_sub(delta, std::memory_order_relaxed);
  }
  inflight.fetch_sub(1, std::memory_order_release);
  return true;
}

bool LedgerSession::TryCharge(uint64_t bytes, uint64_t wait_timeout_ns, bool wait_on_retry_only) {
  if (bytes == 0) return true;
  // Fast path: within the request, only this tenant's and this process's words are touched.
  auto inflight = A(process_->inflight);
  auto tenant_used = A(tenant_->used_bytes);
  inflight.fetch_add(1, std::memory_order_relaxed);
  uint64_t u = tenant_used.load(std::memory_order_relaxed);
  while (bytes <= request_bytes_ && u <= request_bytes_ - bytes) {  // also false when FROZEN
    if (tenant_used.compare_exchange_weak(u, u + bytes, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
      NotePeak(process_, A(process_->used_bytes).fetch_add(bytes, std::memory_order_relaxed) + bytes);
      inflight.fetch_sub(1, std::memory_order_release);
      return true;
    }
  }
  inflight.fetch_sub(1, std::memory_order_release);
  return TryChargeSlow(bytes, wait_timeout_ns, wait_on_retry_only);
}

void LedgerSession::ForceCharge(uint64_t bytes) {
  if (!AdjustAtomic(bytes, /*add=*/true)) AdjustSlow(bytes, /*add=*/true);
}

void LedgerSession::Uncharge(uint64_t bytes) {
  if (!AdjustAtomic(bytes, /*add=*/false)) AdjustSlow(bytes, /*add=*/false);
  NotifyFreed();
}

void LedgerSession::AdjustSlow(uint64_t bytes, bool add) {
  const ErrnoKeeper keep_errno;
  // The tenant is being recounted: the recount ends before the lock is released.
  for (;;) {
    {
      RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
      if (AdjustAtomic(bytes, add)) return;
    }
    sched_yield();
  }
}

ChargeQuery LedgerSession::QueryFor(uint32_t tenant, uint64_t bytes) const {
  ChargeQuery q;
  q.bytes = bytes;
  q.request_bytes = tenants_[tenant].request_bytes;
  q.limit_bytes = tenants_[tenant].limit_bytes;
  q.usable_bytes = usable_bytes_;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants_[i];
    if (LoadState(t.state) != GS_SLOT_ACTIVE) continue;
    const uint64_t used = Load(t.used_bytes) & kUsedMask;
    q.sum_request_bytes += t.request_bytes;
    if (i == tenant) {
      q.tenant_used_bytes = used;
    } else {
      q.others_burst_bytes += BurstOf(used, t.request_bytes);
      q.others_used_bytes += used;
    }
  }
  if (lf::NowMonotonicNs() < Load(header_->hidden_until_ns)) q.others_used_bytes += Load(header_->hidden_bytes);
  return q;
}

uint64_t LedgerSession::NoteHiddenMemory(uint64_t physical_free_bytes) {
  uint64_t used = 0;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i)
    if (LoadState(tenants_[i].state) == GS_SLOT_ACTIVE) used += Load(tenants_[i].used_bytes) & kUsedMask;
  const uint64_t ledger_free = usable_bytes_ > used ? usable_bytes_ - used : 0;
  const uint64_t hidden = ledger_free > physical_free_bytes ? ledger_free - physical_free_bytes : 0;
  A(header_->hidden_bytes).store(hidden, std::memory_order_relaxed);
  A(header_->hidden_until_ns).store(lf::NowMonotonicNs() + kHiddenTtlNs, std::memory_order_release);
  GS_LOG_INFO("gpushare: {}: the driver has {} bytes free where the ledger counts {}: {} bytes in use "
              "outside gpushare's charges", path_, physical_free_bytes, ledger_free, hidden);
  return hidden;
}

bool LedgerSession::TerminationRequested(TerminationRequest* out) const {
  const uint64_t word = __atomic_load_n(&tenant_->terminate, __ATOMIC_ACQUIRE);
  if ((word & GS_TERMINATE_REQUESTED) == 0) return false;
  const auto requester = static_cast<uint32_t>(word & 0xffffffffu);
  const auto reason = static_cast<uint32_t>((word >> 32) & 0x7fffffffu);
  out->requester_tenant = requester;
  out->requester = requester < GS_LEDGER_TENANT_SLOTS
                       ? std::string(tenants_[requester].name, strnlen(tenants_[requester].name, GS_LEDGER_NAME_BYTES))
                       : std::string("?");
  out->reason_code = static_cast<TerminationReason>(reason);
  out->reason = DescribeTerminationReason(reason);
  out->unix_ns = Load(tenant_->terminate_unix_ns);
  return true;
}

bool LedgerSession::WithLock(const std::function<void()>& fn) {
  const ErrnoKeeper keep_errno;
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) return false;
  fn();
  return true;
}

bool LedgerSession::ProcessAlive(uint32_t slot) const {
  if (slot == process_index_) return true;
  if (slot >= GS_LEDGER_PROCESS_SLOTS) return false;
  return ProbeSlot(fd_, lf::ProcessSlotOffset(slot), GS_LEDGER_PROCESS_SLOT_BYTES) != Liveness::kDead;
}

uint64_t LedgerSession::tenant_used_bytes() const { return Load(tenant_->used_bytes) & kUsedMask; }
uint64_t LedgerSession::process_used_bytes() const { return Load(process_->used_bytes); }

uint64_t LedgerSession::available_bytes() const {
  const ChargeQuery q = QueryFor(0);
  const uint64_t promised = q.sum_request_bytes + q.others_burst_bytes;
  const uint64_t pool = usable_bytes_ > promised ? usable_bytes_ - promised : 0;
  uint64_t cap = request_bytes_ + pool;
  if (cap > limit_bytes_) cap = limit_bytes_;
  const uint64_t physical = usable_bytes_ > q.others_used_bytes ? usable_bytes_ - q.others_used_bytes : 0;
  if (cap > physical) cap = physical;
  return cap > q.tenant_used_bytes ? cap - q.tenant_used_bytes : 0;
}

}  // namespace gpushare::quota
