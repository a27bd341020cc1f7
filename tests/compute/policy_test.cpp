// SPDX-License-Identifier: Apache-2.0
// The compute-share policy alone: virtual time, the lift of returning tenants, who goes next,
// when the holder yields, and the strict pause.
#include "compute/policy.h"

#include <gtest/gtest.h>

#include <vector>

#include "gpushare/ledger_abi.h"

namespace gpushare::compute {
namespace {

constexpr uint64_t kMs = 1'000'000;

TEST(ComputePolicy, VirtualTimeIsInverseToTheShare) {
  EXPECT_EQ(VirtualNs(7 * kMs, 7000), 10 * kMs);
  EXPECT_EQ(VirtualNs(3 * kMs, 3000), 10 * kMs);
  EXPECT_EQ(VirtualNs(kMs, 10000), kMs);
  EXPECT_GT(VirtualNs(UINT64_MAX, 1), 0u);  // clamps, never wraps
}

TEST(ComputePolicy, SmallestVirtualTimeGoesNextThenOldestWaiter) {
  std::vector<Candidate> c = {{0, 0, 7000, 50 * kMs, 100}, {1, 1, 3000, 40 * kMs, 200}};
  EXPECT_EQ(PickNext(c, 0, 10 * kMs), 1);
  c[1].vtime = 50 * kMs;
  EXPECT_EQ(PickNext(c, 0, 10 * kMs), 0);  // tie: the older wait
  EXPECT_EQ(PickNext(std::vector<Candidate>{}, 0, 10 * kMs), -1);
}

TEST(ComputePolicy, AReturningTenantIsLiftedToOneQuantumBehindTheFloor) {
  // Idle for a long time: its old virtual time would win every turn for seconds.
  EXPECT_EQ(LiftedVtime(0, 1000 * kMs, 10 * kMs, 5000), 1000 * kMs - 100 * kMs);
  EXPECT_EQ(LiftedVtime(950 * kMs, 1000 * kMs, 10 * kMs, 5000), 950 * kMs);  // within the lag: kept
  std::vector<Candidate> c = {{0, 0, 5000, 0, 1}, {1, 1, 5000, 905 * kMs, 2}};
  EXPECT_EQ(PickNext(c, 1000 * kMs, 10 * kMs), 0);  // still first, but only just
}

TEST(ComputePolicy, RecentUseDecaysByHalfEveryHalfLifeAndReadsAsAShare) {
  const uint64_t h = GS_COMPUTE_RECENT_HALF_LIFE_NS;
  EXPECT_EQ(DecayedNs(80 * kMs, 0), 80 * kMs);
  EXPECT_NEAR(static_cast<double>(DecayedNs(80 * kMs, h)), 40e6, 1);
  EXPECT_NEAR(static_cast<double>(DecayedNs(80 * kMs, 2 * h)), 20e6, 1);
  EXPECT_EQ(DecayedNs(80 * kMs, 100 * h), 0u);
  // Steady use of 30% (1 ms of every 3.33 ms, long enough) reads as about 3000 bp.
  uint64_t recent = 0;
  for (int i = 0; i < 3000; ++i) recent = DecayedNs(recent, 3'333'333) + kMs;
  EXPECT_NEAR(static_cast<double>(RecentUseBp(recent)), 3000, 60);
}

TEST(ComputePolicy, ExpressOnlyWellWithinTheShare) {
  const uint64_t h = GS_COMPUTE_RECENT_HALF_LIFE_NS;
  // recent = f * h / ln 2 for a use of f.
  auto recent_for = [&](double f) { return static_cast<uint64_t>(f * static_cast<double>(h) / 0.6931471805599453); };
  EXPECT_TRUE(MayPassWithoutTurn(recent_for(0.07), 3000, 50));   // a server at 7% of a 30% share
  EXPECT_FALSE(MayPassWithoutTurn(recent_for(0.16), 3000, 50));  // past half its share
  EXPECT_FALSE(MayPassWithoutTurn(recent_for(0.29), 3000, 50));  // a busy tenant near its share
  EXPECT_TRUE(MayPassWithoutTurn(recent_for(0.29), 3000, 100));
  EXPECT_FALSE(MayPassWithoutTurn(0, 3000, 0));                  // 0%: never
}

TEST(ComputePolicy, HolderKeepsTheTurnWhileNobodyWaits) {
  YieldQuery q;
  q.held_ns = 500 * kMs;
  q.quantum_ns = 10 * kMs;
  EXPECT_EQ(DecideYield(q), YieldVerdict::kKeep);
  q.others_waiting = true;
  q.holder_share_bp = 5000;
  q.best_waiter_share_bp = 5000;
  EXPECT_EQ(DecideYield(q), YieldVerdict::kQuantumOver);
}

TEST(ComputePolicy, AHolderStillBehindTheWaitersKeepsTheTurnPastItsQuantum) {
  YieldQuery q;
  q.quantum_ns = 2 * kMs;
  q.others_waiting = true;
  q.min_turn_ns = q.quantum_ns / 10;
  q.holder_share_bp = 7000;
  q.holder_vtime = 100 * kMs;
  q.best_waiter_share_bp = 3000;
  q.best_waiter_vtime = 110 * kMs;
  q.held_ns = 3 * kMs;  // 100 + 3 / 0.7 = 104.3 ms virtual: still behind the waiter
  EXPECT_EQ(DecideYield(q), YieldVerdict::kKeep);
  q.held_ns = 8 * kMs;  // 111.4 ms: past it
  EXPECT_EQ(DecideYield(q), YieldVerdict::kQuantumOver);
  q.held_ns = 3 * kMs;
  q.only_siblings_wait = true;  // a quantum each
  EXPECT_EQ(DecideYield(q), YieldVerdict::kQuantumOver);
}

TEST(ComputePolicy, AWaiterBelowItsShareCutsTheQuantumShort) {
  YieldQuery q;
  q.others_waiting = true;
  q.quantum_ns = 10 * kMs;
  q.min_turn_ns = kMs;
  q.holder_share_bp = 7000;
  q.holder_vtime = 100 * kMs;
  q.best_waiter_share_bp = 3000;
  q.best_waiter_vtime = 60 * kMs;  // far behind: more than one of its quanta (33 ms)
  q.held_ns = kMs / 2;
  EXPECT_EQ(DecideYield(q), YieldVerdict::kKeep);  // the minimal turn first
  q.held_ns = 2 * kMs;
  EXPECT_EQ(DecideYield(q), YieldVerdict::kPreempt);
  q.best_waiter_vtime = 90 * kMs;  // close behind: waits for the quantum
  EXPECT_EQ(DecideYield(q), YieldVerdict::kKeep);
}

TEST(ComputePolicy, StrictPauseKeepsTheTenantAtItsShare) {
  EXPECT_EQ(StrictPauseNs(3 * kMs, 3000), 7 * kMs);
  EXPECT_EQ(StrictPauseNs(10 * kMs, 10000), 0u);
  EXPECT_EQ(StrictPauseNs(kMs, 2500), 3 * kMs);
}

}  // namespace
}  // namespace gpushare::compute
