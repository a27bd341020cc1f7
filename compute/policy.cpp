// SPDX-License-Identifier: Apache-2.0
#include "compute/policy.h"

#include <cmath>

#include "gpushare/ledger_abi.h"

namespace gpushare::compute {

uint64_t VirtualNs(uint64_t ns, uint32_t share_bp) {
  const uint64_t share = share_bp == 0 ? 1 : share_bp;
  // ns < 2^64 / 10^4 (about 21 days of GPU time in one turn) cannot overflow; clamp beyond.
  if (ns > UINT64_MAX / kFullShareBp) return UINT64_MAX / share;
  return ns * kFullShareBp / share;
}

uint64_t LiftedVtime(uint64_t vtime, uint64_t vfloor, uint64_t quantum_ns, uint32_t share_bp) {
  const uint64_t lag = VirtualNs(kLagQuanta * quantum_ns, share_bp);
  if (vfloor > lag && vtime < vfloor - lag) return vfloor - lag;
  return vtime;
}

int PickNext(std::span<const Candidate> candidates, uint64_t vfloor, uint64_t quantum_ns) {
  int best = -1;
  uint64_t best_v = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    const uint64_t v = LiftedVtime(c.vtime, vfloor, quantum_ns, c.share_bp);
    if (best < 0 || v < best_v ||
        (v == best_v && c.want_since_ns < candidates[static_cast<size_t>(best)].want_since_ns)) {
      best = static_cast<int>(i);
      best_v = v;
    }
  }
  return best;
}

YieldVerdict DecideYield(const YieldQuery& q) {
  if (!q.others_waiting) return YieldVerdict::kKeep;
  const uint64_t holder_now = q.holder_vtime + VirtualNs(q.held_ns, q.holder_share_bp);
  // At the quantum's end a holder still behind every waiting tenant keeps the turn: a holder
  // between two batches of work (synchronizing, then launching again) is not wanting at the
  // hand-over, so the turn would go to a waiter ahead of it, again and again.
  if (q.held_ns >= q.quantum_ns)
    return q.only_siblings_wait || q.best_waiter_vtime < holder_now ? YieldVerdict::kQuantumOver
                                                                     : YieldVerdict::kKeep;
  if (q.only_siblings_wait || q.held_ns < q.min_turn_ns) return YieldVerdict::kKeep;
  const uint64_t waiter_quantum = VirtualNs(q.quantum_ns, q.best_waiter_share_bp);
  if (q.best_waiter_vtime + waiter_quantum < holder_now) return YieldVerdict::kPreempt;
  return YieldVerdict::kKeep;
}

uint64_t DecayedNs(uint64_t recent_ns, uint64_t age_ns) {
  if (age_ns == 0 || recent_ns == 0) return recent_ns;
  const double halvings = static_cast<double>(age_ns) / static_cast<double>(GS_COMPUTE_RECENT_HALF_LIFE_NS);
  if (halvings >= 64) return 0;
  return static_cast<uint64_t>(static_cast<double>(recent_ns) * std::exp2(-halvings));
}

uint64_t RecentUseBp(uint64_t recent_ns) {
  return static_cast<uint64_t>(static_cast<double>(recent_ns) * M_LN2 * static_cast<double>(kFullShareBp) /
                               static_cast<double>(GS_COMPUTE_RECENT_HALF_LIFE_NS));
}

bool MayPassWithoutTurn(uint64_t recent_ns, uint32_t share_bp, uint32_t express_percent) {
  if (express_percent == 0) return false;
  return RecentUseBp(recent_ns) * 100 < static_cast<uint64_t>(share_bp) * express_percent;
}

uint64_t StrictPauseNs(uint64_t held_ns, uint32_t share_bp) {
  if (share_bp == 0 || share_bp >= kFullShareBp) return 0;
  return held_ns / share_bp * (kFullShareBp - share_bp) + held_ns % share_bp * (kFullShareBp - share_bp) / share_bp;
}

}  // namespace gpushare::compute
