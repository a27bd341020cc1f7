// SPDX-License-Identifier: Apache-2.0
// LedgerSession: opening a GPU's ledger (creating it, or replacing a damaged one), joining its
// tenant, claiming a process slot, and leaving.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "quota/ledger.h"
#include "quota/ledger_fault.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "quota/slot_liveness.h"
#include "quota/tenant_identity.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;  // the atomic helpers and timeouts

namespace {

std::string LedgerName(const unsigned char uuid[16]) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "gpushare-";
  for (int i = 0; i < 16; ++i) {
    name += kHex[uuid[i] >> 4];
    name += kHex[uuid[i] & 15];
  }
  return name + ".ledger";
}

// How long an opener waits for the live processes of a damaged ledger to replace it (their
// watchers look every 100 ms) before refusing.
constexpr int kDamagedWaitTicks = 20;
constexpr useconds_t kDamagedTickUs = 100'000;

}  // namespace

std::string LedgerPath(const std::string& dir, const unsigned char uuid[16]) {
  return lf::PathIn(dir, LedgerName(uuid));
}

std::unique_ptr<LedgerSession> LedgerSession::Open(const std::string& dir, const unsigned char uuid[16],
                                                   uint64_t usable_bytes, const TenantConfig& tenant,
                                                   std::string* error, uint64_t total_bytes) {
  return OpenSession(dir, uuid, usable_bytes, tenant, error, total_bytes, /*rejoin=*/0);
}

std::unique_ptr<LedgerSession> LedgerSession::OpenSession(const std::string& dir, const unsigned char uuid[16],
                                                          uint64_t usable_bytes, const TenantConfig& tenant,
                                                          std::string* error, uint64_t total_bytes,
                                                          uint32_t rejoin) {
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
  if (total_bytes < usable_bytes) total_bytes = usable_bytes;
  const int dirfd = lf::OpenDir(dir, error);
  if (dirfd < 0) return nullptr;
  std::unique_ptr<LedgerSession> s(new LedgerSession);
  const std::string name = LedgerName(uuid);
  s->path_ = lf::PathIn(dir, name);
  for (int tick = 0;; ++tick) {
    s->fd_ = lf::OpenOrCreate(dirfd, dir, name, uuid, total_bytes, usable_bytes, error);
    if (s->fd_ < 0) break;
    const std::string damage = lf::DescribeDamage(s->fd_);
    if (damage.empty()) break;
    // Damaged as only a ledger gets (truncated, zeroed). With nobody in it, or when this process
    // is one of those who were (re-joining), it is replaced; otherwise its processes replace it
    // when their watchers see it, so wait for them a little.
    if (rejoin != 0 || !lf::AnyLiveSlot(s->fd_)) {
      const lf::ReplaceResult r =
          lf::ReplaceDamaged(dirfd, dir, name, s->fd_, uuid, total_bytes, usable_bytes, error);
      if (r == lf::ReplaceResult::kFailed) {
        close(s->fd_);
        s->fd_ = -1;
        break;
      }
      if (r == lf::ReplaceResult::kReplaced && rejoin == 0)  // a re-joining process says it all once
        GS_LOG_WARN("gpushare: the ledger {} was {} and no process used it: replaced it with a new one", s->path_,
                    damage);
    } else if (tick >= kDamagedWaitTicks) {
      *error = "gpushare: refusing the ledger " + s->path_ + ": " + damage +
               ", and live processes still use it (they replace it once they see it; remove it once they exit)";
      close(s->fd_);
      s->fd_ = -1;
      break;
    } else {
      usleep(kDamagedTickUs);
    }
    close(s->fd_);
    s->fd_ = -1;
  }
  close(dirfd);
  if (s->fd_ < 0) return nullptr;
  struct stat st {};
  if (fstat(s->fd_, &st) != 0) {
    *error = "gpushare: cannot stat the ledger " + s->path_ + ": " + std::strerror(errno);
    return nullptr;
  }
  s->dev_ = st.st_dev;
  s->ino_ = st.st_ino;
  s->map_ = lf::MapChecked(s->fd_, s->path_, /*writable=*/true, error);
  if (s->map_ == nullptr) return nullptr;
  // Before the first access: a truncation from now on is caught, not fatal.
  s->fault_slot_ = ledger_fault::Guard(s->map_, GS_LEDGER_FILE_BYTES);
  s->header_ = lf::Header(s->map_);
  s->tenants_ = lf::Tenants(s->map_);
  s->processes_ = lf::Processes(s->map_);
  s->dir_ = dir;
  std::memcpy(s->uuid_, uuid, sizeof s->uuid_);
  s->config_ = tenant;
  s->measured_usable_bytes_ = usable_bytes;
  s->measured_total_bytes_ = total_bytes;
  if (std::memcmp(s->header_->uuid, uuid, 16) != 0) {
    *error = "gpushare: refusing the ledger " + s->path_ + ": it belongs to another GPU (UUID mismatch)";
    return nullptr;
  }
  // What the file says is bounded by what this process measured: a header claiming more memory
  // than the GPU has would let requests in that the GPU cannot hold.
  const uint64_t header_usable = Load(s->header_->usable_bytes);
  s->usable_bytes_ = header_usable < usable_bytes ? header_usable : usable_bytes;
  if (header_usable > usable_bytes || Load(s->header_->total_bytes) > total_bytes)
    GS_LOG_WARN("gpushare: the ledger {} says this GPU has {} usable of {} bytes, more than the {} of {} this "
                "process measured: it counts with {}", s->path_, header_usable, Load(s->header_->total_bytes),
                usable_bytes, total_bytes, s->usable_bytes_);
  else if (header_usable != usable_bytes)
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
  s->process_->rejoined = rejoin;
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
    generation_ = generation;
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
  if (process_ != nullptr && !Lost())
    if (const uint32_t why = DamageSeen(); why != 0) MarkLost(why);  // then nothing in it is touched
  if (Lost()) {
    // The file is not ours any more: nothing in it is touched, and the mapping stays (see
    // quota/ledger_fault.h); the successor leaves the ledger that carries what this process held.
    delete successor_.exchange(nullptr, std::memory_order_acq_rel);
    if (process_ != nullptr) ReleaseSlotLock(fd_, lf::ProcessSlotOffset(process_index_), GS_LEDGER_PROCESS_SLOT_BYTES);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    process_ = nullptr;
    return;
  }
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
  // A mapping zeroed under a lock holder stays mapped (its address may be on a robust list).
  if (!ledger_fault::Faulted(fault_slot_)) {
    ledger_fault::Unguard(fault_slot_);
    lf::Unmap(map_);
  }
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

}  // namespace gpushare::quota
