// SPDX-License-Identifier: Apache-2.0
// Compute shares: the scheduling policy, as pure functions over numbers read from the ledger
// (compute/turn.cpp reads them under the lock). Weighted fair queueing over exclusive turns:
//   virtual time  vtime(tenant) = sum of its turns' wall ns * 10000 / share_bp
//   next turn     the wanting process whose tenant has the smallest (lifted) virtual time;
//                 FIFO by want_since among equals
//   lift          a tenant coming back from idle starts at vfloor - kLagQuanta quanta of its
//                 own, so idle time is not banked as credit (it gets the turn promptly, and for
//                 at most that long ahead of the others); the floor follows the slowest tenant
//                 that was busy in the last kRecentBusyNs, so a busy tenant is never lifted
//   yield         the holder gives the turn up when someone waits and it held a quantum (and
//                 its running virtual time passed the best waiter's: a holder still behind
//                 keeps going), or at
//                 once (preemption) when a waiter's tenant is more than one of its own quanta
//                 behind the holder's running virtual time: a tenant below its share waits
//                 only for the holder's drain, not for a whole quantum.
//   express       a tenant whose recent use (GPU ns decayed with a 100 ms half-life) is below
//                 GPUSHARE_COMPUTE_EXPRESS of its share launches without waiting for the turn:
//                 its work time-slices with the holder's, as without gpushare, so short requests
//                 of a tenant well within its share wait for no drain. What such a burst takes is
//                 charged as a turn, so a tenant that grows busy soon waits for turns again.
#pragma once
#include <cstdint>
#include <span>

namespace gpushare::compute {

inline constexpr uint64_t kFullShareBp = 10000;
inline constexpr uint64_t kLagQuanta = 5;
inline constexpr uint64_t kRecentBusyNs = 50'000'000;

// ns of GPU time in a tenant's virtual time (share_bp 0 is treated as the smallest share).
uint64_t VirtualNs(uint64_t ns, uint32_t share_bp);
// A tenant's virtual time as the scheduler compares it: never more than one of its own quanta
// behind the floor.
uint64_t LiftedVtime(uint64_t vtime, uint64_t vfloor, uint64_t quantum_ns, uint32_t share_bp);

struct Candidate {
  uint32_t process = 0;  // process slot
  uint32_t tenant = 0;   // tenant slot
  uint32_t share_bp = 0;
  uint64_t vtime = 0;    // the tenant's, before lifting
  uint64_t want_since_ns = 0;
};
// Index into candidates of the next holder; -1 when there is none.
int PickNext(std::span<const Candidate> candidates, uint64_t vfloor, uint64_t quantum_ns);

struct YieldQuery {
  uint64_t held_ns = 0;          // since the grant
  uint64_t quantum_ns = 0;
  bool others_waiting = false;   // another process (of any tenant) wants the turn
  bool only_siblings_wait = false;  // all of them are the holder's tenant's: a quantum each, no preemption
  uint64_t holder_vtime = 0;     // the holder's tenant, before this turn
  uint32_t holder_share_bp = 0;
  uint64_t best_waiter_vtime = 0;  // lifted, the smallest among other tenants' waiters
  uint32_t best_waiter_share_bp = 0;
  uint64_t min_turn_ns = 0;      // no preemption before this (bounds hand-over overhead)
};
enum class YieldVerdict { kKeep, kQuantumOver, kPreempt };
YieldVerdict DecideYield(const YieldQuery& q);

// A decayed sum of GPU ns `age_ns` later (half-life GS_COMPUTE_RECENT_HALF_LIFE_NS).
uint64_t DecayedNs(uint64_t recent_ns, uint64_t age_ns);
// The share of the GPU, in basis points, a decayed sum stands for: steady use of a fraction f
// leaves recent_ns = f * half-life / ln 2.
uint64_t RecentUseBp(uint64_t recent_ns);
// Express: whether a tenant using recent_ns (decayed to now) launches without the turn;
// express_percent of its share is the bar (0: never).
bool MayPassWithoutTurn(uint64_t recent_ns, uint32_t share_bp, uint32_t express_percent);

// GPUSHARE_COMPUTE_STRICT: after holding the turn for held_ns, a tenant capped at its share sits
// out held_ns * (10000 - share) / share, so over any period it runs at most its share.
uint64_t StrictPauseNs(uint64_t held_ns, uint32_t share_bp);

}  // namespace gpushare::compute
