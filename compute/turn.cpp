// SPDX-License-Identifier: Apache-2.0
#include "compute/turn.h"

#include "src/futex.h"

#include <atomic>
#include <algorithm>
#include <climits>
#include <vector>

namespace gpushare::compute {
namespace {

std::atomic_ref<uint64_t> A64(uint64_t& field) { return std::atomic_ref<uint64_t>(field); }
uint32_t Load32(const uint32_t& w) { return __atomic_load_n(&w, __ATOMIC_ACQUIRE); }
uint64_t Load64(const uint64_t& w) { return __atomic_load_n(&w, __ATOMIC_ACQUIRE); }

// A tenant's recent use, decayed to now_ns. Its two fields are written under the lock; read
// without it (MayExpress), a torn pair only skews one estimate.
uint64_t RecentNs(const GsLedgerTenant& t, uint64_t now_ns) {
  const uint64_t at = Load64(t.compute_recent_at_ns);
  return DecayedNs(Load64(t.compute_recent_ns), now_ns > at ? now_ns - at : 0);
}


}  // namespace

Turn::Turn(quota::LedgerSession* session, const TurnConfig& config)
    : session_(session),
      header_(session->header()),
      tenants_(session->tenant_slots()),
      processes_(session->process_slots()),
      me_(session->process_index() + 1),
      tenant_(session->tenant_index()),
      share_bp_(session->tenant()->compute_share_bp),
      strict_((session->tenant()->compute_flags & GS_COMPUTE_STRICT) != 0),
      config_(config) {}

void Turn::WaitSeq(uint32_t seen, uint64_t timeout_ns) const {
  FutexWait(&header_->compute_seq, seen, timeout_ns, FutexScope::kShared);
}
void Turn::WaitKick(uint32_t seen, uint64_t timeout_ns) const {
  FutexWait(&header_->compute_kick, seen, timeout_ns, FutexScope::kShared);
}

void Turn::BeginWant(uint64_t now_ns) {
  GsLedgerProcess& p = processes_[me_ - 1];
  if (__atomic_fetch_add(&p.compute_wanting, 1, __ATOMIC_SEQ_CST) == 0) {
    A64(p.compute_want_since_ns).store(now_ns, std::memory_order_release);
    __atomic_fetch_add(&header_->compute_waiting, 1, __ATOMIC_SEQ_CST);
  }
  A64(tenants_[tenant_].compute_busy_ns).store(now_ns, std::memory_order_relaxed);
  __atomic_fetch_add(&header_->compute_kick, 1, __ATOMIC_SEQ_CST);
  FutexWake(&header_->compute_kick, INT_MAX, FutexScope::kShared);
}

void Turn::EndWant(uint64_t waited_ns) {
  GsLedgerProcess& p = processes_[me_ - 1];
  GsLedgerTenant& t = tenants_[tenant_];
  A64(p.compute_throttled_ns).fetch_add(waited_ns, std::memory_order_relaxed);
  A64(t.compute_throttled_ns).fetch_add(waited_ns, std::memory_order_relaxed);
  A64(t.compute_window_throttled_ns[0]).fetch_add(waited_ns, std::memory_order_relaxed);
  if (__atomic_fetch_sub(&p.compute_wanting, 1, __ATOMIC_SEQ_CST) == 1) {
    // Never below zero: a holder's recount (GrantNextLocked) may have fixed the count already.
    uint32_t w = Load32(header_->compute_waiting);
    while (w > 0 && !__atomic_compare_exchange_n(&header_->compute_waiting, &w, w - 1, false, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_ACQUIRE)) {
    }
  }
}

bool Turn::HolderAliveLocked(uint32_t owner) const {
  const uint32_t slot = owner - 1;
  if (slot >= GS_LEDGER_PROCESS_SLOTS) return false;
  const GsLedgerProcess& p = processes_[slot];
  if (Load32(p.state) != GS_SLOT_ACTIVE || p.generation != Load64(header_->compute_owner_generation)) return false;
  return session_->ProcessAlive(slot);
}

bool Turn::Arbitrate(uint64_t now_ns) {
  session_->WithLock([&] {
    const uint32_t owner = Load32(header_->compute_owner);
    if (owner != 0) {
      if (HolderAliveLocked(owner)) return;
      // Its process died holding the turn: charge what it held, pass the turn on.
      const uint32_t slot = owner - 1;
      // Only while the slot is still the holder's: a reaped slot may already be another
      // process's (of another tenant), which must not pay for the dead holder's turn.
      if (slot < GS_LEDGER_PROCESS_SLOTS &&
          processes_[slot].generation == Load64(header_->compute_owner_generation)) {
        const uint32_t tenant = processes_[slot].tenant_index;
        const uint64_t grant = Load64(header_->compute_grant_ns);
        if (tenant < GS_LEDGER_TENANT_SLOTS && Load32(tenants_[tenant].state) == GS_SLOT_ACTIVE)
          ChargeLocked(tenant, slot, now_ns > grant ? now_ns - grant : 0, now_ns);
      }
      A64(header_->compute_dead_handovers).fetch_add(1, std::memory_order_relaxed);
    }
    GrantNextLocked(now_ns);
  });
  return Held();
}

YieldVerdict Turn::Check(uint64_t now_ns, bool* others_waiting) const {
  YieldQuery q;
  const uint64_t grant = grant_ns();
  q.held_ns = now_ns > grant ? now_ns - grant : 0;
  q.quantum_ns = config_.quantum_ns;
  q.min_turn_ns = config_.min_turn_ns;
  q.holder_vtime = Load64(tenants_[tenant_].compute_vtime);
  q.holder_share_bp = share_bp_;
  *others_waiting = false;
  if (Load32(header_->compute_waiting) == 0) return YieldVerdict::kKeep;
  const uint64_t vfloor = Load64(header_->compute_vfloor);
  bool other_tenant = false;
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes_[i];
    if (i + 1 == me_ || Load32(p.compute_wanting) == 0 || Load32(p.state) != GS_SLOT_ACTIVE) continue;
    const uint32_t t = p.tenant_index;
    if (t >= GS_LEDGER_TENANT_SLOTS) continue;
    *others_waiting = true;
    if (t == tenant_) continue;  // a sibling process: waits for the quantum, never preempts
    const uint32_t share = tenants_[t].compute_share_bp;
    const uint64_t v = LiftedVtime(Load64(tenants_[t].compute_vtime), vfloor, config_.quantum_ns, share);
    if (!other_tenant || v < q.best_waiter_vtime) {
      q.best_waiter_vtime = v;
      q.best_waiter_share_bp = share;
    }
    other_tenant = true;
  }
  q.others_waiting = *others_waiting;
  q.only_siblings_wait = !other_tenant;
  return DecideYield(q);
}

bool Turn::MayExpress(uint64_t now_ns) const {
  if (strict_ || config_.express_percent == 0) return false;
  const GsLedgerTenant& t = tenants_[tenant_];
  // A newcomer takes turns for one half-life first: until then its recent use says too little.
  const uint64_t first = Load64(t.compute_first_charge_ns);
  if (first == 0 || now_ns < first + GS_COMPUTE_RECENT_HALF_LIFE_NS) return false;
  return MayPassWithoutTurn(RecentNs(t, now_ns), share_bp_, config_.express_percent);
}

void Turn::ChargeExpress(uint64_t started_ns, uint64_t drained_ns) {
  const uint64_t ns = drained_ns > started_ns ? drained_ns - started_ns : 0;
  session_->WithLock([&] {
    ChargeLocked(tenant_, me_ - 1, ns, drained_ns);
    A64(tenants_[tenant_].compute_express_ns).fetch_add(ns, std::memory_order_relaxed);
    // Not compute_busy_ns: a tenant that only runs express does not hold the virtual-time floor
    // back, so the credit it leaves unused is not banked for when it grows busy.
  });
}

void Turn::ChargeLocked(uint32_t tenant, uint32_t process, uint64_t ns, uint64_t now_ns) {
  GsLedgerTenant& t = tenants_[tenant];
  A64(t.compute_gpu_ns).fetch_add(ns, std::memory_order_relaxed);
  A64(t.compute_recent_ns).store(RecentNs(t, now_ns) + ns, std::memory_order_relaxed);
  if (now_ns > Load64(t.compute_recent_at_ns)) A64(t.compute_recent_at_ns).store(now_ns, std::memory_order_relaxed);
  if (Load64(t.compute_first_charge_ns) == 0) A64(t.compute_first_charge_ns).store(now_ns, std::memory_order_relaxed);
  A64(processes_[process].compute_gpu_ns).fetch_add(ns, std::memory_order_relaxed);
  A64(t.compute_vtime).fetch_add(VirtualNs(ns, t.compute_share_bp), std::memory_order_relaxed);
  // Windows of GS_COMPUTE_WINDOW_NS: [0] the current one, [1] the previous.
  uint64_t start = t.compute_window_start_ns;
  if (start == 0 || now_ns >= start + 2 * GS_COMPUTE_WINDOW_NS) {
    const bool fresh = start == 0;
    A64(t.compute_window_gpu_ns[1]).store(0, std::memory_order_relaxed);
    A64(t.compute_window_throttled_ns[1]).store(0, std::memory_order_relaxed);
    if (!fresh) {
      A64(t.compute_window_gpu_ns[0]).store(0, std::memory_order_relaxed);
      A64(t.compute_window_throttled_ns[0]).store(0, std::memory_order_relaxed);
    }
    start = now_ns;
  } else if (now_ns >= start + GS_COMPUTE_WINDOW_NS) {
    A64(t.compute_window_gpu_ns[1]).store(A64(t.compute_window_gpu_ns[0]).exchange(0), std::memory_order_relaxed);
    A64(t.compute_window_throttled_ns[1])
        .store(A64(t.compute_window_throttled_ns[0]).exchange(0), std::memory_order_relaxed);
    start += GS_COMPUTE_WINDOW_NS;
  }
  A64(t.compute_window_start_ns).store(start, std::memory_order_relaxed);
  A64(t.compute_window_gpu_ns[0]).fetch_add(ns, std::memory_order_relaxed);
}

void Turn::GrantNextLocked(uint64_t now_ns) {
  std::vector<Candidate> candidates;
  uint32_t waiting = 0;
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes_[i];
    if (Load32(p.state) != GS_SLOT_ACTIVE || Load32(p.compute_wanting) == 0) continue;
    if (p.tenant_index >= GS_LEDGER_TENANT_SLOTS || !session_->ProcessAlive(i)) continue;
    const GsLedgerTenant& t = tenants_[p.tenant_index];
    if (Load32(t.state) != GS_SLOT_ACTIVE || t.compute_share_bp == 0) continue;
    ++waiting;
    candidates.push_back({i, p.tenant_index, t.compute_share_bp, Load64(t.compute_vtime), Load64(p.compute_want_since_ns)});
  }
  __atomic_store_n(&header_->compute_waiting, waiting, __ATOMIC_SEQ_CST);  // recount: the dead drop out
  const uint64_t vfloor = Load64(header_->compute_vfloor);
  const int next = PickNext(candidates, vfloor, config_.quantum_ns);
  // The slowest tenant busy lately (waiting now, or holding or waiting within kRecentBusyNs):
  // the floor never passes it, so a tenant absent from the candidates for an instant keeps its
  // place.
  uint64_t slowest_busy = UINT64_MAX;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants_[i];
    if (Load32(t.state) != GS_SLOT_ACTIVE || t.compute_share_bp == 0) continue;
    const uint64_t busy = Load64(t.compute_busy_ns);
    if (busy != 0 && busy + kRecentBusyNs >= now_ns) slowest_busy = std::min(slowest_busy, Load64(t.compute_vtime));
  }
  uint32_t owner = 0;
  if (next >= 0) {
    const Candidate& c = candidates[static_cast<size_t>(next)];
    GsLedgerTenant& t = tenants_[c.tenant];
    // Lift its virtual time for good: idle time is not banked.
    const uint64_t lifted = LiftedVtime(c.vtime, vfloor, config_.quantum_ns, c.share_bp);
    A64(t.compute_vtime).store(lifted, std::memory_order_relaxed);
    const uint64_t floor = std::min(lifted, slowest_busy);
    if (floor > vfloor) A64(header_->compute_vfloor).store(floor, std::memory_order_relaxed);
    A64(t.compute_turns).fetch_add(1, std::memory_order_relaxed);
    A64(header_->compute_owner_generation).store(processes_[c.process].generation, std::memory_order_relaxed);
    A64(header_->compute_grant_ns).store(now_ns, std::memory_order_relaxed);
    A64(header_->compute_epoch).fetch_add(1, std::memory_order_relaxed);
    owner = c.process + 1;
  }
  __atomic_store_n(&header_->compute_owner, owner, __ATOMIC_RELEASE);
  __atomic_fetch_add(&header_->compute_seq, 1, __ATOMIC_SEQ_CST);
  FutexWake(&header_->compute_seq, INT_MAX, FutexScope::kShared);
}

uint64_t Turn::Release(uint64_t drained_ns, uint64_t started_ns, bool preempted) {
  uint64_t held = 0;
  session_->WithLock([&] {
    if (Load32(header_->compute_owner) != me_) return;
    uint64_t grant = Load64(header_->compute_grant_ns);
    if (started_ns > grant && started_ns <= drained_ns) grant = started_ns;
    held = drained_ns > grant ? drained_ns - grant : 0;
    ChargeLocked(tenant_, me_ - 1, held, drained_ns > grant ? drained_ns : grant);
    A64(tenants_[tenant_].compute_busy_ns).store(drained_ns, std::memory_order_relaxed);
    if (preempted) A64(header_->compute_preemptions).fetch_add(1, std::memory_order_relaxed);
    GrantNextLocked(drained_ns > grant ? drained_ns : grant);
  });
  return strict_ ? StrictPauseNs(held, share_bp_) : 0;
}

}  // namespace gpushare::compute
