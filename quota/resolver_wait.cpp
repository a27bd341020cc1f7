// SPDX-License-Identifier: Apache-2.0
// The locked charge path and the wait-retry resolver: a burst refused for lack of room waits in
// the ledger's waiter table (a FIFO ticket each) on the header's futex word until a free lets it
// fit, then retries under the lock.
//
// No lost wake-up: a waiter registers (header.waiting, seq_cst) and reads wake_seq before it
// decides again and sleeps; a free lowers a tenant's use (seq_cst) before it reads `waiting`, and
// if nonzero bumps wake_seq and wakes everyone. Either the free sees the waiter and wakes it, or
// the waiter's decision sees the free.
//
// Fairness: a burst yields to an older waiter that fits now, and to any older waiter that has
// waited past kPatienceNs (then the queue is strict FIFO, so a large request is not starved by
// small ones). Requests within a tenant's guarantee never wait: the fast path grants them.
//
// Deaths: a process that dies holding memory wakes nobody, so a waiter also wakes every
// kPollNs to reap dead processes (and a victim of the priority resolver is one of those).

#include <atomic>
#include <climits>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "quota/slot_liveness.h"
#include "src/futex.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

constexpr uint64_t kPollNs = 20'000'000;       // reap dead processes at least this often
constexpr uint64_t kPatienceNs = 200'000'000;  // after this, younger bursts queue behind a waiter
constexpr uint64_t kStaleGraceNs = 1'000'000'000;  // a waiter past its deadline by this is gone

// GPUSHARE_WAIT_MODE=retry: when this thread last met a collision (a refusal, or the end of a
// wait); 0: never. A refusal within kRetryWindowNs of it waits, so the caller's retry after
// freeing its cache waits, and so does the re-charge after the driver refused a grant.
thread_local uint64_t t_last_collision_ns = 0;

}  // namespace

struct LedgerSession::WaitState {
  uint64_t bytes = 0;
  bool may_wait = false;
  uint64_t deadline_ns = 0;
  int entry = -1;  // in header.waiters while waiting
  uint64_t ticket = UINT64_MAX;  // UINT64_MAX: not queued (younger than every waiter)
  uint64_t since_ns = 0;
  uint64_t last_reap_ns = 0;
  uint32_t seq = 0;  // wake_seq read after registering
  bool victims_pending = false;
};

bool LedgerSession::TryChargeSlow(uint64_t bytes, uint64_t wait_timeout_ns, bool wait_on_retry_only) {
  const ErrnoKeeper keep_errno;
  // Before the lock, whose mutex a zeroed file no longer holds.
  if (const uint32_t why = DamageSeen(); why != 0) {
    MarkLost(why);
    return TryChargeLost(bytes, wait_timeout_ns, wait_on_retry_only);
  }
  WaitState w;
  w.bytes = bytes;
  w.may_wait = wait_timeout_ns > 0 && resolver_ != ResolverKind::kNone;
  const uint64_t start = lf::NowMonotonicNs();
  bool first_refusal = false;
  if (w.may_wait && wait_on_retry_only) {
    const bool retry = t_last_collision_ns != 0 && start - t_last_collision_ns <= kRetryWindowNs;
    first_refusal = !retry;
    w.may_wait = retry;
  }
  w.deadline_ns = start + wait_timeout_ns;
  for (;;) {
    Attempt attempt;
    {
      RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
      if (!guard.held()) {
        GS_LOG_ERROR("gpushare: {}: {}; allocation of {} bytes refused", path_, guard.Describe(), bytes);
        A(tenant_->oom_denials).fetch_add(1, std::memory_order_relaxed);
        return false;  // a queued entry of ours goes stale at its deadline
      }
      attempt = AttemptLocked(bytes, &w);
    }
    if (attempt == Attempt::kGranted) {
      if (w.since_ns != 0) t_last_collision_ns = lf::NowMonotonicNs();  // it waited
      return true;
    }
    if (attempt == Attempt::kLost) {
      const uint32_t why = DamageSeen();
      MarkLost(why != 0 ? why : GS_REJOIN_OVERWRITTEN);
      return TryChargeLost(bytes, wait_timeout_ns, wait_on_retry_only);
    }
    if (attempt == Attempt::kRefused) {
      if (first_refusal || w.since_ns != 0) t_last_collision_ns = lf::NowMonotonicNs();
      return false;
    }
    const uint64_t now = lf::NowMonotonicNs();
    uint64_t sleep = w.deadline_ns > now ? w.deadline_ns - now : 0;
    if (sleep > kPollNs) sleep = kPollNs;
    if (sleep > 0) FutexWait(&header_->wake_seq, w.seq, sleep, FutexScope::kShared);
  }
}

// One decision under the lock: grant, refuse, or (re)register as a waiter and say kWait.
LedgerSession::Attempt LedgerSession::AttemptLocked(uint64_t bytes, WaitState* w) {
  bool registered_now = false;
  for (;;) {
    if (DamageSeen() != 0) return Attempt::kLost;  // nothing in the mapping counts any more
    if (w->entry >= 0) {  // registered: read the futex word before deciding
      w->seq = __atomic_load_n(&header_->wake_seq, __ATOMIC_SEQ_CST);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    const uint64_t now = lf::NowMonotonicNs();
    DropStaleWaitersLocked();  // whatever `waiting` says: entries are checked, not the count
    const ChargeQuery q = QueryFor(bytes);
    ChargeVerdict verdict = DecideCharge(q);
    if (verdict == ChargeVerdict::kGrant && q.tenant_used_bytes + bytes > q.request_bytes &&
        MustYieldLocked(w->ticket))
      verdict = ChargeVerdict::kNoBurstRoom;  // an older waiter goes first
    if (verdict == ChargeVerdict::kGrant) {
      if (!CommitLocked(q)) continue;  // this tenant's word moved (its fast paths): decide again
      if (w->entry >= 0) EndWaitLocked(w, /*granted=*/true);
      return Attempt::kGranted;
    }
    // Before refusing or sleeping, release what dead co-tenants still hold, then decide again.
    if (now - w->last_reap_ns >= kPollNs || w->last_reap_ns == 0) {
      w->last_reap_ns = now;
      if (ReapLocked(/*all_tenants=*/false) > 0) continue;
    }
    const bool can_wait = w->may_wait && verdict != ChargeVerdict::kOverLimit && now < w->deadline_ns;
    if (can_wait && w->entry < 0) {
      if (EnqueueLocked(w)) {
        registered_now = true;
        continue;  // decide once more now that frees will wake us
      }
    }
    if (!can_wait || w->entry < 0) {
      if (w->entry >= 0) EndWaitLocked(w, /*granted=*/false);
      A(tenant_->oom_denials).fetch_add(1, std::memory_order_relaxed);
      GS_LOG_DEBUG("gpushare: tenant '{}' refused {} bytes: {} (used {}, request {}, limit {})",
                   tenant_->name, bytes, DescribeVerdict(verdict), q.tenant_used_bytes, request_bytes_,
                   limit_bytes_);
      return Attempt::kRefused;
    }
    if (registered_now)
      GS_LOG_INFO("gpushare: tenant '{}' waits for {} bytes: {} (resolver {}, up to {} ms)", tenant_->name,
                  bytes, DescribeVerdict(verdict), ResolverName(resolver_), (w->deadline_ns - now) / 1'000'000);
    if (resolver_ == ResolverKind::kPriority) w->victims_pending = MarkVictimsLocked(q);
    if (resolver_ == ResolverKind::kSwap) w->victims_pending = AskSwapVictimsLocked(q);
    return Attempt::kWait;
  }
}

bool LedgerSession::CommitLocked(const ChargeQuery& q) {
  auto tenant_used = A(tenant_->used_bytes);
  auto inflight = A(process_->inflight);
  inflight.fetch_add(1, std::memory_order_relaxed);
  uint64_t expected = q.tenant_used_bytes;
  const bool ok = tenant_used.compare_exchange_strong(expected, expected + q.bytes, std::memory_order_acq_rel);
  if (ok) {
    NotePeak(process_, A(process_->used_bytes).fetch_add(q.bytes, std::memory_order_relaxed) + q.bytes);
    AddHeld(q.bytes);
  }
  inflight.fetch_sub(1, std::memory_order_release);
  // Frozen while we hold the lock: no recount runs, the word was left (or written) so.
  if (!ok && (expected & GS_TENANT_USED_FROZEN) != 0) ReapLocked(/*all_tenants=*/true);
  return ok;
}

bool LedgerSession::EnqueueLocked(WaitState* w) {
  for (uint32_t i = 0; i < GS_LEDGER_WAITER_SLOTS; ++i) {
    GsLedgerWaiter& e = header_->waiters[i];
    if (e.ticket != 0) continue;
    header_->next_ticket += 1;
    if (header_->next_ticket == 0) header_->next_ticket = 1;  // 0 marks a free entry
    e.ticket = header_->next_ticket;
    e.bytes = w->bytes;
    e.generation = process_->generation;
    e.process_index = process_index_;
    e.tenant_index = tenant_index_;
    w->since_ns = lf::NowMonotonicNs();
    e.since_ns = w->since_ns;
    e.deadline_ns = w->deadline_ns;  // lets others drop the entry if we vanish without the lock
    w->entry = static_cast<int>(i);
    w->ticket = e.ticket;
    process_->waiting += 1;
    __atomic_add_fetch(&header_->waiting, 1, __ATOMIC_SEQ_CST);
    return true;
  }
  GS_LOG_WARN("gpushare: {}: {} allocations already wait; tenant '{}' is refused {} bytes at once", path_,
              GS_LEDGER_WAITER_SLOTS, tenant_->name, w->bytes);
  return false;
}

void LedgerSession::DequeueLocked(WaitState* w) {
  GsLedgerWaiter& e = header_->waiters[w->entry];
  if (e.ticket == w->ticket) {  // not dropped as stale meanwhile
    e = GsLedgerWaiter{};
    if (process_->waiting > 0) process_->waiting -= 1;
    __atomic_sub_fetch(&header_->waiting, 1, __ATOMIC_SEQ_CST);
  }
  w->entry = -1;
  w->ticket = UINT64_MAX;
  NotifyFreed();  // younger waiters that yielded to us decide again
}

void LedgerSession::EndWaitLocked(WaitState* w, bool granted) {
  const uint64_t waited = lf::NowMonotonicNs() - w->since_ns;
  DequeueLocked(w);
  A(tenant_->wait_ns_total).fetch_add(waited, std::memory_order_relaxed);
  A(tenant_->waits).fetch_add(1, std::memory_order_relaxed);
  // Under swap, a burst granted after a collision starts the tenant's turn: its quantum runs
  // from here before it can be asked to swap out.
  if (granted && resolver_ == ResolverKind::kSwap)
    A(tenant_->swap_turn_ns).store(lf::NowMonotonicNs(), std::memory_order_relaxed);
  if (granted)
    GS_LOG_INFO("gpushare: tenant '{}' got {} bytes after waiting {:.1f} ms", tenant_->name, w->bytes,
                waited / 1e6);
  else
    GS_LOG_WARN("gpushare: tenant '{}' waited {:.1f} ms for {} bytes in vain: CUDA_ERROR_OUT_OF_MEMORY",
                tenant_->name, waited / 1e6, w->bytes);
}

bool LedgerSession::MustYieldLocked(uint64_t ticket) {
  const uint64_t now = lf::NowMonotonicNs();
  for (const GsLedgerWaiter& e : header_->waiters) {
    if (e.ticket == 0 || e.ticket >= ticket || !WaiterPlausibleLocked(e, now)) continue;
    if (now - e.since_ns > kPatienceNs) return true;
    if (e.tenant_index < GS_LEDGER_TENANT_SLOTS && LoadState(tenants_[e.tenant_index].state) == GS_SLOT_ACTIVE &&
        DecideCharge(QueryFor(e.tenant_index, e.bytes)) == ChargeVerdict::kGrant)
      return true;
  }
  return false;
}

// Whether an entry can be a waiter at all: an active process slot of its generation and
// tenant, times not in the future. Stray bytes in the table are not.
bool LedgerSession::WaiterPlausibleLocked(const GsLedgerWaiter& e, uint64_t now) const {
  if (e.process_index >= GS_LEDGER_PROCESS_SLOTS || e.tenant_index >= GS_LEDGER_TENANT_SLOTS) return false;
  const GsLedgerProcess& p = processes_[e.process_index];
  return LoadState(p.state) == GS_SLOT_ACTIVE && p.generation == e.generation && p.tenant_index == e.tenant_index &&
         LoadState(tenants_[e.tenant_index].state) == GS_SLOT_ACTIVE && e.since_ns != 0 && e.since_ns <= now &&
         e.deadline_ns >= e.since_ns;
}

// Entries whose process died, left, or outlived its deadline without the lock (a waiter killed
// while waiting leaves nothing behind), and entries that never were a waiter. `waiting` is then
// recounted from what is left, so a stray count heals too.
void LedgerSession::DropStaleWaitersLocked() {
  const uint64_t now = lf::NowMonotonicNs();
  uint32_t left = 0;
  for (GsLedgerWaiter& e : header_->waiters) {
    if (e.ticket == 0) continue;
    bool stale = !WaiterPlausibleLocked(e, now) || now > e.deadline_ns + kStaleGraceNs;
    if (!stale && e.process_index != process_index_)
      stale = ProbeSlot(fd_, lf::ProcessSlotOffset(e.process_index), GS_LEDGER_PROCESS_SLOT_BYTES) ==
              Liveness::kDead;
    if (!stale) {
      ++left;
      continue;
    }
    if (e.process_index < GS_LEDGER_PROCESS_SLOTS) {
      GsLedgerProcess& owner = processes_[e.process_index];
      if (owner.generation == e.generation && owner.waiting > 0) owner.waiting -= 1;
    }
    e = GsLedgerWaiter{};
  }
  if (__atomic_load_n(&header_->waiting, __ATOMIC_RELAXED) != left)
    __atomic_store_n(&header_->waiting, left, __ATOMIC_SEQ_CST);
}

void LedgerSession::WakeWaiters() {
  __atomic_add_fetch(&header_->wake_seq, 1, __ATOMIC_SEQ_CST);
  FutexWake(&header_->wake_seq, INT_MAX, FutexScope::kShared);
}

}  // namespace gpushare::quota
