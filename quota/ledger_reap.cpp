// SPDX-License-Identifier: Apache-2.0
// LedgerSession's reaping and repair: releasing what dead processes held, exactly, and
// rebuilding every total after a lock holder died (see the recount protocol in ledger.cpp).
#include <sched.h>

#include <bitset>
#include <chrono>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "quota/slot_liveness.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

size_t LedgerSession::Reap() {
  if (Lost()) {
    LedgerSession* next = successor();
    return next != nullptr ? next->Reap() : 0;
  }
  const ErrnoKeeper keep_errno;
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) return 0;
  return ReapLocked(/*all_tenants=*/false);
}

void LedgerSession::RepairLocked() {
  A(header_->repairs).fetch_add(1, std::memory_order_relaxed);
  ReapLocked(/*all_tenants=*/true);
}

size_t LedgerSession::ReapLocked(bool all_tenants) {
  std::bitset<GS_LEDGER_PROCESS_SLOTS> dead;
  std::bitset<GS_LEDGER_TENANT_SLOTS> dirty;
  auto is_dead = [&](uint32_t i) {
    return i != process_index_ &&
           ProbeSlot(fd_, lf::ProcessSlotOffset(i), GS_LEDGER_PROCESS_SLOT_BYTES) == Liveness::kDead;
  };
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes_[i];
    if (p.state != GS_SLOT_ACTIVE || p.tenant_index >= GS_LEDGER_TENANT_SLOTS) continue;
    if (is_dead(i)) {
      dead.set(i);
      dirty.set(p.tenant_index);
    }
  }
  for (uint32_t t = 0; t < GS_LEDGER_TENANT_SLOTS; ++t)
    if (all_tenants && tenants_[t].state == GS_SLOT_ACTIVE) dirty.set(t);
  size_t reaped = 0;
  for (uint32_t t = 0; t < GS_LEDGER_TENANT_SLOTS; ++t) {
    if (!dirty.test(t)) continue;
    GsLedgerTenant& tenant = tenants_[t];
    auto tenant_used = A(tenant.used_bytes);
    const uint64_t before = tenant_used.fetch_or(GS_TENANT_USED_FROZEN, std::memory_order_acq_rel);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kQuiesceTimeoutMs);
    uint64_t live_sum = 0, dead_sum = 0;
    uint32_t live = 0;
    bool quiesced = true;
    for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
      GsLedgerProcess& p = processes_[i];
      if (p.state != GS_SLOT_ACTIVE || p.tenant_index != t) continue;
      // A live process may be inside its pair update; wait it out (or see it die).
      while (!dead.test(i) && A(p.inflight).load(std::memory_order_acquire) != 0) {
        if (is_dead(i)) dead.set(i);
        else if (std::chrono::steady_clock::now() > deadline) { quiesced = false; break; }
        else sched_yield();
      }
      if (dead.test(i)) {
        dead_sum += Load(p.used_bytes);
        A(p.used_bytes).store(0, std::memory_order_relaxed);
        A(p.inflight).store(0, std::memory_order_relaxed);
        StoreState(p.state, GS_SLOT_FREE);
        ++reaped;
        continue;
      }
      live_sum += Load(p.used_bytes);
      ++live;
    }
    if (!quiesced) {
      // A live process stopped mid-update: keep its tenant's word, minus what the dead held.
      GS_LOG_WARN("gpushare: ledger {}: tenant '{}' not quiescent; releasing dead usage only", path_,
                  tenant.name);
      const uint64_t u = before & kUsedMask;
      live_sum = u > dead_sum ? u - dead_sum : 0;
    }
    tenant_used.store(live_sum, std::memory_order_release);
    tenant.process_count = live;
    if (tenant.state == GS_SLOT_ACTIVE && live == 0 && !(process_ != nullptr && t == tenant_index_))
      RemoveTenantLocked(t);
  }
  if (reaped > 0) {
    A(header_->reaped_processes).fetch_add(reaped, std::memory_order_relaxed);
    NotifyFreed();
    GS_LOG_INFO("gpushare: ledger {}: released the usage of {} dead process(es)", path_, reaped);
  }
  return reaped;
}

}  // namespace gpushare::quota
