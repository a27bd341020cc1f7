// SPDX-License-Identifier: Apache-2.0
// Compute shares across processes: the GPU's exclusive turn, kept in the ledger header
// (include/gpushare/ledger_abi.h, compute_* fields; the protocol is written there).
//
// This file defines Turn, one process's view of one GPU's turn:
//   Held()             one acquire load: may this process launch now?
//   BeginWant/EndWant  a thread of this process waits for the turn (a candidate while any does)
//   Arbitrate          under the lock: grant the turn when nobody holds it or its holder is dead
//   Check              the holder's question: keep the turn, or yield it (quantum over, preempted)
//   Release            the holder's hand-over: charge grant..drained, grant the next by policy
//   MayExpress         may this process launch without the turn (its tenant's recent use is low)
//   ChargeExpress      charge a burst launched that way, first launch..drained
// The policy (who is next, when to yield) is compute/policy.h, pure and tested alone.
#pragma once
#include <cstdint>

#include "compute/policy.h"
#include "quota/ledger.h"

namespace gpushare::compute {

struct TurnConfig {
  uint64_t quantum_ns = 10'000'000;
  uint64_t min_turn_ns = 1'000'000;  // no preemption before the holder had this much
  uint32_t express_percent = 50;     // GPUSHARE_COMPUTE_EXPRESS; 0: every launch waits for the turn
};

class Turn {
 public:
  // The session must outlive the Turn; its tenant must have a compute share.
  Turn(quota::LedgerSession* session, const TurnConfig& config);

  bool Held() const { return __atomic_load_n(&header_->compute_owner, __ATOMIC_ACQUIRE) == me_; }
  bool Free() const { return __atomic_load_n(&header_->compute_owner, __ATOMIC_ACQUIRE) == 0; }
  uint32_t Seq() const { return __atomic_load_n(&header_->compute_seq, __ATOMIC_ACQUIRE); }
  uint32_t Kick() const { return __atomic_load_n(&header_->compute_kick, __ATOMIC_ACQUIRE); }
  // Sleeps until the word moves from `seen` or timeout_ns passes (FUTEX_WAIT, shared).
  void WaitSeq(uint32_t seen, uint64_t timeout_ns) const;
  void WaitKick(uint32_t seen, uint64_t timeout_ns) const;

  // The first waiting thread of this process makes it a candidate and wakes the holder's keeper.
  void BeginWant(uint64_t now_ns);
  void EndWant(uint64_t waited_ns);
  // Under the lock: when nobody holds the turn, or its holder's process is dead (charged up to
  // now), grant it to the best candidate. Returns whether this process holds it after.
  bool Arbitrate(uint64_t now_ns);

  // The holder: whether someone else wants the turn, and whether to yield it now.
  YieldVerdict Check(uint64_t now_ns, bool* others_waiting) const;
  // The holder ends its turn: charges drained_ns - max(grant, started_ns) to its tenant (started_ns:
  // its first launch in the turn, 0 if unknown), then grants the next
  // candidate (maybe this process again, when its own threads wait and its tenant is furthest
  // behind) or nobody. Returns how long the tenant must sit out under GPUSHARE_COMPUTE_STRICT.
  uint64_t Release(uint64_t drained_ns, uint64_t started_ns, bool preempted);

  // Lock-free: whether this tenant's recent use (decayed to now) is low enough to launch
  // without the turn. Never under GPUSHARE_COMPUTE_STRICT (the cap is kept by turns), nor
  // within a half-life of the tenant's first charge.
  bool MayExpress(uint64_t now_ns) const;
  // Under the lock: charges an express burst's wall time to the tenant, as a turn's.
  void ChargeExpress(uint64_t started_ns, uint64_t drained_ns);

  uint64_t grant_ns() const { return __atomic_load_n(&header_->compute_grant_ns, __ATOMIC_ACQUIRE); }
  uint32_t share_bp() const { return share_bp_; }
  bool strict() const { return strict_; }
  const TurnConfig& config() const { return config_; }

 private:
  void ChargeLocked(uint32_t tenant, uint32_t process, uint64_t ns, uint64_t now_ns);
  void GrantNextLocked(uint64_t now_ns);
  bool HolderAliveLocked(uint32_t owner) const;

  quota::LedgerSession* session_;
  GsLedgerHeader* header_;
  GsLedgerTenant* tenants_;
  GsLedgerProcess* processes_;
  uint32_t me_;          // this process's slot + 1
  uint32_t tenant_;      // its tenant slot
  uint32_t share_bp_;
  bool strict_;
  TurnConfig config_;
};

}  // namespace gpushare::compute
