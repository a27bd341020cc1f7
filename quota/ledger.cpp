// SPDX-License-Identifier: Apache-2.0
// LedgerSession: charging one GPU's ledger (joining and leaving it: quota/ledger_join.cpp).
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
    AddHeld(delta);  // after the shared words: held_ never exceeds them
  } else {
    own.fetch_sub(delta, std::memory_order_relaxed);
  }
  inflight.fetch_sub(1, std::memory_order_release);
  return true;
}

bool LedgerSession::TryCharge(uint64_t bytes, uint64_t wait_timeout_ns, bool wait_on_retry_only) {
  if (bytes == 0) return true;
  const uint64_t held = held_.load(std::memory_order_acquire);
  if ((held & kLostBit) != 0) return TryChargeLost(bytes, wait_timeout_ns, wait_on_retry_only);
  // Fast path: within the request, only this tenant's and this process's words are touched.
  auto inflight = A(process_->inflight);
  auto tenant_used = A(tenant_->used_bytes);
  inflight.fetch_add(1, std::memory_order_relaxed);
  uint64_t u = tenant_used.load(std::memory_order_relaxed);
  // Also false when FROZEN, and when the slot no longer counts what this process holds (the file
  // was overwritten, or its mapping lost): the slow path looks.
  while (bytes <= request_bytes_ && u <= request_bytes_ - bytes && u >= held &&
         LoadState(tenant_->state) == GS_SLOT_ACTIVE) {
    if (tenant_used.compare_exchange_weak(u, u + bytes, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
      NotePeak(process_, A(process_->used_bytes).fetch_add(bytes, std::memory_order_relaxed) + bytes);
      AddHeld(bytes);
      inflight.fetch_sub(1, std::memory_order_release);
      return true;
    }
  }
  inflight.fetch_sub(1, std::memory_order_release);
  return TryChargeSlow(bytes, wait_timeout_ns, wait_on_retry_only);
}

void LedgerSession::ForceCharge(uint64_t bytes) {
  if (Lost()) return AdjustLost(bytes, /*add=*/true);
  if (!AdjustAtomic(bytes, /*add=*/true)) AdjustSlow(bytes, /*add=*/true);
}

void LedgerSession::Uncharge(uint64_t bytes) {
  if (!LowerHeld(bytes)) return AdjustLost(bytes, /*add=*/false);
  if (!AdjustAtomic(bytes, /*add=*/false)) AdjustSlow(bytes, /*add=*/false);
  NotifyFreed();
}

bool LedgerSession::LowerHeld(uint64_t bytes) {
  uint64_t h = held_.load(std::memory_order_relaxed);
  do {
    if ((h & kLostBit) != 0) return false;
  } while (!held_.compare_exchange_weak(h, h - (h > bytes ? bytes : h), std::memory_order_acq_rel,
                                        std::memory_order_relaxed));
  return true;
}

void LedgerSession::AdjustSlow(uint64_t bytes, bool add) {
  const ErrnoKeeper keep_errno;
  // The tenant is being recounted: the recount ends before the lock is released.
  for (;;) {
    if (const uint32_t why = Lost() ? lost_reason() : DamageSeen(); why != 0) {
      MarkLost(why);
      // A free already lowered held_; the successor learns of it from the reconciliation.
      return AdjustLost(add ? bytes : 0, add);
    }
    {
      RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
      if (AdjustAtomic(bytes, add)) return;
      // Frozen while we hold the lock: no recount runs, the word was left (or written) so.
      if (guard.held()) ReapLocked(/*all_tenants=*/true);
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
  // Written for kHiddenTtlNs ahead at most: a later deadline, or more than the GPU, is not believed.
  const uint64_t now = lf::NowMonotonicNs(), until = Load(header_->hidden_until_ns);
  const uint64_t hidden = Load(header_->hidden_bytes);
  if (now < until && until - now <= kHiddenTtlNs && hidden <= usable_bytes_) q.others_used_bytes += hidden;
  return q;
}

uint64_t LedgerSession::NoteHiddenMemory(uint64_t physical_free_bytes) {
  if (Lost()) {
    LedgerSession* next = successor();
    return next != nullptr ? next->NoteHiddenMemory(physical_free_bytes) : 0;
  }
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

void LedgerSession::NoteActivity(uint64_t now_ns) {
  if (Lost()) {  // the old mapping is nobody's to write
    if (LedgerSession* next = successor()) next->NoteActivity(now_ns);
    return;
  }
  __atomic_store_n(&process_->last_active_ns, now_ns, __ATOMIC_RELAXED);
}

bool LedgerSession::TerminationRequested(TerminationRequest* out) const {
  if (Lost()) {
    const LedgerSession* next = successor();
    return next != nullptr && next->TerminationRequested(out);
  }
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

uint64_t LedgerSession::tenant_used_bytes() const {
  if (Lost()) {
    const LedgerSession* next = successor();
    return next != nullptr ? next->tenant_used_bytes() : Held();
  }
  return Load(tenant_->used_bytes) & kUsedMask;
}
uint64_t LedgerSession::process_used_bytes() const { return Held(); }

uint64_t LedgerSession::available_bytes() const {
  if (Lost()) {
    if (const LedgerSession* next = successor()) return next->available_bytes();
    const uint64_t budget = lost_budget_.load(std::memory_order_acquire), held = Held();
    return budget > held ? budget - held : 0;
  }
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
