// SPDX-License-Identifier: Apache-2.0
// The swap resolver's ledger side: a refused burst asks other swap tenants to move memory to host
// memory, and waits (FIFO, as under wait) for their agents to release it.
//
// Who gives, in this order, and only as much as the shortfall needs:
//   1. tenants bursting past their request whose quantum is over (swap_turn_ns +
//      swap_quantum_ns in the past), the longest turn first: their burst;
//   2. then, if the requester has GPUSHARE_IDLE_TIMEOUT, tenants idle longer than it, quantum or
//      not: all their swappable memory (a swapped-out idle tenant's request stays held for it,
//      so this makes physical room, not burst-pool room).
// A victim is never asked for more than its live processes report as swappable. Round robin
// comes from the waiters' FIFO (an older waiter that fits goes first) and from the quantum: the
// tenant that just got memory back keeps it for a whole quantum, and then the next waiter's
// ask takes it. Nobody starves: a waiter's ticket only gets older, and every quantum ends.
//
// The process side (gating, draining, copying, swap-in) is quota/swap_agent.cpp.
#include <time.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "src/futex.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

struct Victim {
  uint32_t slot;
  bool idle;
  uint64_t turn_age_ns;
  uint64_t cap;       // the most it may be asked for
  uint64_t burst;     // its burst (what its swap-out gives the pool)
};

uint64_t Min(uint64_t a, uint64_t b) { return a < b ? a : b; }

}  // namespace

bool LedgerSession::AskSwapVictimsLocked(const ChargeQuery& q) {
  const Room need = ShortfallOf(q);
  auto covered = [&](const Room& g) { return g.Covers(need); };

  const uint64_t now = lf::NowMonotonicNs();
  Room pending;
  bool any_pending = false;
  std::vector<uint64_t> swappable(GS_LEDGER_TENANT_SLOTS, 0);
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes_[i];
    if (LoadState(p.state) != GS_SLOT_ACTIVE || p.tenant_index >= GS_LEDGER_TENANT_SLOTS) continue;
    swappable[p.tenant_index] += __atomic_load_n(&p.swappable_bytes, __ATOMIC_RELAXED);
  }
  std::vector<Victim> candidates;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants_[i];
    if (i == tenant_index_ || LoadState(t.state) != GS_SLOT_ACTIVE || t.resolver != GS_RESOLVER_SWAP) continue;
    const uint64_t used = Load(t.used_bytes) & kUsedMask;
    const uint64_t t_burst = BurstOf(used, t.request_bytes);
    const uint64_t asked = Load(t.swap_ask_bytes);
    if (asked > 0) {  // asked already, by us or another requester, and not yet answered
      pending.pool += Min(asked, t_burst);
      pending.physical += asked;
      any_pending = true;
    }
    const uint64_t left = swappable[i] > asked ? swappable[i] - asked : 0;
    if (left == 0) continue;
    const uint64_t turn = Load(t.swap_turn_ns);
    const uint64_t age = now > turn ? now - turn : 0;
    const bool idle = idle_timeout_ns_ > 0 && TenantIdleNsLocked(i, now) > idle_timeout_ns_;
    const uint64_t burst_left = t_burst > asked ? t_burst - asked : 0;
    if (!idle && (age < t.swap_quantum_ns || burst_left == 0)) continue;  // its turn, or its guarantee
    candidates.push_back({i, idle, age, idle ? left : Min(left, burst_left), burst_left});
  }
  if (covered(pending)) return any_pending;
  // Bursts first (longest turn first), then whole idle tenants.
  std::stable_sort(candidates.begin(), candidates.end(), [](const Victim& a, const Victim& b) {
    if (a.idle != b.idle) return !a.idle;
    return a.turn_age_ns > b.turn_age_ns;
  });
  Room total = pending;
  std::vector<std::pair<uint32_t, uint64_t>> asks;
  for (const Victim& v : candidates) {
    if (covered(total)) break;
    const uint64_t want_pool = need.pool > total.pool ? need.pool - total.pool : 0;
    const uint64_t want_physical = need.physical > total.physical ? need.physical - total.physical : 0;
    // A victim gives its whole burst (an idle one all it can move), not just the shortfall: the
    // requester's turn then runs without a collision per allocation, and the victim is swapped
    // once per turn, not piecemeal. Its burst counts for the pool and physically; an idle
    // victim's memory within its request only physically (the request stays held for it).
    if (want_pool == 0 && want_physical == 0) break;
    const uint64_t ask = v.cap;
    total.pool += Min(ask, v.burst);
    total.physical += ask;
    asks.emplace_back(v.slot, ask);
  }
  if (!covered(total)) return any_pending;  // all of them would not be enough: just wait

  for (const auto& [slot, ask] : asks) {
    GsLedgerTenant& victim = tenants_[slot];
    A(victim.swap_ask_bytes).fetch_add(ask, std::memory_order_acq_rel);
    victim.swap_requester = tenant_index_;
    __atomic_add_fetch(&victim.swap_seq, 1, __ATOMIC_SEQ_CST);
    FutexWake(&victim.swap_seq, INT_MAX, FutexScope::kShared);
    GS_LOG_INFO("gpushare: {}: tenant '{}' needs {} bytes; asking tenant '{}' to swap out {} bytes", path_,
                tenant_->name, q.bytes, victim.name, ask);
  }
  return true;
}

// After a loss, the successor's tenant is the one asked (and counted); until then nobody asks.
uint64_t LedgerSession::SwapAsk(uint32_t* seq) const {
  if (Lost()) {
    const LedgerSession* next = successor();
    if (next != nullptr) return next->SwapAsk(seq);
    if (seq != nullptr) *seq = 0;
    return 0;
  }
  if (seq != nullptr) *seq = __atomic_load_n(&tenant_->swap_seq, __ATOMIC_ACQUIRE);
  return Load(tenant_->swap_ask_bytes);
}

void LedgerSession::WaitForSwapAsk(uint32_t seq, uint64_t timeout_ns) const {
  if (Lost()) {
    if (const LedgerSession* next = successor()) return next->WaitForSwapAsk(seq, timeout_ns);
    const timespec nothing_can_ask{static_cast<time_t>(timeout_ns / 1'000'000'000ull),
                                   static_cast<long>(timeout_ns % 1'000'000'000ull)};
    nanosleep(&nothing_can_ask, nullptr);
    return;
  }
  const ErrnoKeeper keep_errno;
  // Shared: requesters in other processes wake it.
  FutexWait(&tenant_->swap_seq, seq, timeout_ns, FutexScope::kShared);
}

void LedgerSession::NoteSwappedOut(uint64_t bytes, uint64_t ns, uint64_t answered) {
  if (Lost()) {
    if (LedgerSession* next = successor()) next->NoteSwappedOut(bytes, ns, answered);
    return;
  }
  auto ask = A(tenant_->swap_ask_bytes);
  uint64_t a = ask.load(std::memory_order_relaxed);
  while (!ask.compare_exchange_weak(a, a > answered ? a - answered : 0, std::memory_order_acq_rel)) {
  }
  if (bytes == 0) return;
  A(tenant_->swaps_out).fetch_add(1, std::memory_order_relaxed);
  A(tenant_->swap_out_bytes).fetch_add(bytes, std::memory_order_relaxed);
  A(tenant_->swap_out_ns).fetch_add(ns, std::memory_order_relaxed);
  A(header_->swaps_out).fetch_add(1, std::memory_order_relaxed);
  A(header_->swap_out_bytes).fetch_add(bytes, std::memory_order_relaxed);
}

void LedgerSession::NoteSwappedIn(uint64_t bytes, uint64_t ns, uint64_t wait_ns) {
  if (Lost()) {
    if (LedgerSession* next = successor()) next->NoteSwappedIn(bytes, ns, wait_ns);
    return;
  }
  A(tenant_->swap_turn_ns).store(lf::NowMonotonicNs(), std::memory_order_relaxed);
  if (bytes == 0) return;
  A(tenant_->swaps_in).fetch_add(1, std::memory_order_relaxed);
  A(tenant_->swap_in_bytes).fetch_add(bytes, std::memory_order_relaxed);
  A(tenant_->swap_in_ns).fetch_add(ns, std::memory_order_relaxed);
  A(tenant_->swap_wait_ns).fetch_add(wait_ns, std::memory_order_relaxed);
  A(header_->swaps_in).fetch_add(1, std::memory_order_relaxed);
  A(header_->swap_in_bytes).fetch_add(bytes, std::memory_order_relaxed);
}

void LedgerSession::SetSwapState(uint32_t state) {
  if (Lost()) {  // the old mapping is nobody's to write
    if (LedgerSession* next = successor()) next->SetSwapState(state);
    return;
  }
  __atomic_store_n(&process_->swap_state, state, __ATOMIC_RELEASE);
  A(process_->swap_state_since_ns).store(lf::NowMonotonicNs(), std::memory_order_relaxed);
}

void LedgerSession::SetSwapBytes(uint64_t swappable_bytes, uint64_t out_bytes) {
  if (Lost()) {  // the old mapping is nobody's to write
    if (LedgerSession* next = successor()) next->SetSwapBytes(swappable_bytes, out_bytes);
    return;
  }
  A(process_->swappable_bytes).store(swappable_bytes, std::memory_order_relaxed);
  A(process_->swapped_out_bytes).store(out_bytes, std::memory_order_relaxed);
}

void LedgerSession::SetStagingBytes(uint64_t bytes) {
  if (Lost()) {  // the old mapping is nobody's to write
    if (LedgerSession* next = successor()) next->SetStagingBytes(bytes);
    return;
  }
  A(process_->staging_bytes).store(bytes, std::memory_order_relaxed);
}

}  // namespace gpushare::quota
