// SPDX-License-Identifier: Apache-2.0
// The collision resolvers inside the ledger: waits (order, timeout, wake-up latency, a waiter
// killed while waiting, starvation), and the priority resolver's choice of victims. Co-tenants
// are sessions in threads of this process or in forked children; either way they share the
// ledger file, its lock and its futex word exactly as separate containers do.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Find;
using testing::Snapshot;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kUsable = 100 * kMiB;
constexpr uint64_t kSecond = 1'000'000'000ull;

TenantConfig Tenant(const std::string& name, uint64_t request_mib, uint64_t limit_mib,
                    ResolverKind resolver = ResolverKind::kWait, int32_t priority = 0,
                    uint64_t idle_timeout_ns = 0) {
  TenantConfig t = testing::Tenant(name, request_mib, limit_mib);
  t.resolver = resolver;
  t.priority = priority;
  t.idle_timeout_ns = idle_timeout_ns;
  t.kill_grace_ns = kSecond;
  return t;
}

std::unique_ptr<LedgerSession> Join(const TempDir& tmp, const TenantConfig& tenant) {
  std::string error;
  auto s = LedgerSession::Open(tmp.path(), kUuid, kUsable, tenant, &error);
  EXPECT_NE(s, nullptr) << error;
  return s;
}

uint32_t Waiting(LedgerSession& s) {
  return __atomic_load_n(&LedgerSessionTest::Header(s)->waiting, __ATOMIC_SEQ_CST);
}

// Polls until pred holds (true) or 5 s pass (false).
bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

uint64_t MonoNs() { return ActivityClockNs(); }

// a (request 10, limit 100) holds 90 MiB, which leaves the burst pool empty for b, c, d
// (request 10 each): a burst of theirs waits until a frees.
struct Crowded {
  TempDir tmp;
  std::unique_ptr<LedgerSession> a = Join(tmp, Tenant("a", 10, 100));
  std::unique_ptr<LedgerSession> b = Join(tmp, Tenant("b", 10, 90));
  std::unique_ptr<LedgerSession> c = Join(tmp, Tenant("c", 10, 90));
  std::unique_ptr<LedgerSession> d = Join(tmp, Tenant("d", 10, 90));
  Crowded() { EXPECT_TRUE(a->TryCharge(70 * kMiB)); }  // 10 + 60: the pool (100 - 40) is gone
};

TEST(WaitResolver, AWaiterResumesWithinAMillisecondOfTheFree) {
  TempDir tmp;
  auto a = Join(tmp, Tenant("a", 10, 100));
  ASSERT_TRUE(a->TryCharge(90 * kMiB));  // burst 80: the pool is empty for b
  struct Shared {
    std::atomic<int> round{-1};
    std::atomic<int> done{-1};
    std::atomic<uint64_t> granted_ns[40];
    std::atomic<int> failures{0};
  };
  constexpr int kRounds = 40;
  void* page = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  Shared* shared = new (page) Shared();
  const std::string dir = tmp.path();
  const pid_t child = fork();
  if (child == 0) {  // tenant b, in another process
    std::string error;
    auto b = LedgerSession::Open(dir, kUuid, kUsable, Tenant("b", 10, 90), &error);
    if (b == nullptr) _exit(1);
    for (int r = 0; r < kRounds; ++r) {
      while (shared->round.load() < r) usleep(100);
      if (!b->TryCharge(20 * kMiB, 5 * kSecond)) shared->failures.fetch_add(1);
      shared->granted_ns[r].store(MonoNs());
      b->Uncharge(20 * kMiB);
      shared->done.store(r);
    }
    _exit(0);
  }
  std::vector<double> latency_us;
  for (int r = 0; r < kRounds; ++r) {
    shared->round.store(r);
    ASSERT_TRUE(Eventually([&] { return Waiting(*a) == 1; })) << "round " << r;
    usleep(500);  // let it reach the futex
    const uint64_t freed = MonoNs();
    a->Uncharge(10 * kMiB);
    ASSERT_TRUE(Eventually([&] { return shared->done.load() == r; })) << "round " << r;
    latency_us.push_back(static_cast<double>(shared->granted_ns[r].load() - freed) / 1e3);
    ASSERT_TRUE(a->TryCharge(10 * kMiB));
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(shared->failures.load(), 0);
  std::sort(latency_us.begin(), latency_us.end());
  const double median = latency_us[latency_us.size() / 2];
  const double p90 = latency_us[latency_us.size() * 9 / 10];
  std::printf("wake-up latency over %d frees: median %.0f us, p90 %.0f us, max %.0f us\n", kRounds,
              median, p90, latency_us.back());
  EXPECT_LT(median, 1000.0) << "a waiter resumes within 1 ms of the free that lets it fit";
}

TEST(WaitResolver, TimeoutRefusesAndLeavesNoEntry) {
  Crowded g;
  const auto start = Clock::now();
  EXPECT_FALSE(g.b->TryCharge(20 * kMiB, 150'000'000));
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(elapsed, 0.15);
  EXPECT_LT(elapsed, 1.5);
  EXPECT_EQ(Waiting(*g.b), 0u);
  const LedgerSnapshot snap = Snapshot(g.a->path());
  EXPECT_TRUE(snap.waiters.empty());
  const TenantSnapshot* b = Find(snap, "b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->waits, 1u);
  EXPECT_GE(b->wait_ns_total, 150'000'000u);
  EXPECT_EQ(b->oom_denials, 1u);
  EXPECT_EQ(b->used_bytes, 0u);
}

TEST(WaitResolver, WaitersAreServedInArrivalOrder) {
  Crowded g;
  std::mutex mu;
  std::vector<std::string> order;
  auto waiter = [&](LedgerSession* s, const std::string& name) {
    return std::async(std::launch::async, [&, s, name] {
      const bool ok = s->TryCharge(20 * kMiB, 5 * kSecond);
      std::lock_guard lock(mu);
      order.push_back(name);
      return ok;
    });
  };
  auto fb = waiter(g.b.get(), "b");
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 1; }));
  auto fc = waiter(g.c.get(), "c");
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 2; }));
  auto fd = waiter(g.d.get(), "d");
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 3; }));
  for (size_t served = 1; served <= 3; ++served) {
    g.a->Uncharge(10 * kMiB);  // room for exactly one of them
    ASSERT_TRUE(Eventually([&] {
      std::lock_guard lock(mu);
      return order.size() == served;
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::lock_guard lock(mu);
    EXPECT_EQ(order.size(), served) << "one free, one grant";
  }
  EXPECT_TRUE(fb.get());
  EXPECT_TRUE(fc.get());
  EXPECT_TRUE(fd.get());
  EXPECT_EQ(order, (std::vector<std::string>{"b", "c", "d"}));
}

TEST(WaitResolver, AYoungerBurstMayUseRoomAnOlderWaiterCannotUseUntilThatWaiterStarves) {
  Crowded g;
  auto big = std::async(std::launch::async, [&] { return g.b->TryCharge(40 * kMiB, 5 * kSecond); });
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 1; }));
  g.a->Uncharge(10 * kMiB);  // 10 MiB of pool: too little for b's 30 of burst
  EXPECT_TRUE(g.c->TryCharge(20 * kMiB)) << "work-conserving while b is young";
  g.c->Uncharge(20 * kMiB);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // b now waited past its patience
  EXPECT_FALSE(g.c->TryCharge(20 * kMiB)) << "younger bursts queue behind a starving waiter";
  g.a->Uncharge(20 * kMiB);
  EXPECT_TRUE(big.get());
  EXPECT_EQ(g.b->tenant_used_bytes(), 40 * kMiB);
}

TEST(WaitResolver, AWaiterKilledWhileWaitingLeavesNothingBehind) {
  Crowded g;
  const std::string dir = g.tmp.path();
  const pid_t child = fork();
  if (child == 0) {
    std::string error;
    auto e = LedgerSession::Open(dir, kUuid, kUsable, Tenant("e", 0, 90), &error);
    if (e == nullptr) _exit(1);
    e->TryCharge(10 * kMiB, 30 * kSecond);
    _exit(2);
  }
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 1; }));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  // c queues behind the dead waiter's older ticket; the room a frees must go to c.
  auto fc = std::async(std::launch::async, [&] { return g.c->TryCharge(20 * kMiB, 5 * kSecond); });
  ASSERT_TRUE(Eventually([&] {
    const LedgerSnapshot snap = Snapshot(g.a->path());
    return snap.waiters.size() == 1 && snap.waiters[0].tenant_slot == g.c->tenant_index();
  })) << "c waits, and the dead waiter's entry is gone";
  g.a->Uncharge(10 * kMiB);
  EXPECT_TRUE(fc.get());
  const LedgerSnapshot snap = Snapshot(g.a->path());
  EXPECT_TRUE(snap.waiters.empty());
  EXPECT_EQ(snap.waiting, 0u);
  EXPECT_EQ(Find(snap, "e"), nullptr) << "the dead tenant was reaped";
}

TEST(WaitResolver, RetryModeRefusesTheFirstTimeAndWaitsOnTheRetry) {
  Crowded g;
  auto result = std::async(std::launch::async, [&] {
    const auto t0 = Clock::now();
    const bool first = g.b->TryCharge(20 * kMiB, 5 * kSecond, /*wait_on_retry_only=*/true);
    const double first_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const bool retry = g.b->TryCharge(20 * kMiB, 5 * kSecond, /*wait_on_retry_only=*/true);
    return std::make_tuple(first, first_s, retry);
  });
  ASSERT_TRUE(Eventually([&] { return Waiting(*g.a) == 1; })) << "the retry waits";
  g.a->Uncharge(10 * kMiB);
  const auto [first, first_s, retry] = result.get();
  EXPECT_FALSE(first);
  EXPECT_LT(first_s, 0.1);
  EXPECT_TRUE(retry);
}

TEST(WaitResolver, NoneAndOverLimitNeverWait) {
  TempDir tmp;
  auto a = Join(tmp, Tenant("a", 10, 100));
  auto n = Join(tmp, Tenant("n", 10, 90, ResolverKind::kNone));
  auto w = Join(tmp, Tenant("w", 10, 30));
  ASSERT_TRUE(a->TryCharge(80 * kMiB));
  const auto start = Clock::now();
  EXPECT_FALSE(n->TryCharge(20 * kMiB, 5 * kSecond)) << "resolver none";
  EXPECT_FALSE(w->TryCharge(40 * kMiB, 5 * kSecond)) << "past its own limit";
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 0.5);
}

// Three bursting tenants and a priority requester that needs 20 MiB of their memory.
struct Contest {
  TempDir tmp;
  std::unique_ptr<LedgerSession> low, mid, high;
  Contest(const TenantConfig& low_cfg, const TenantConfig& mid_cfg, const TenantConfig& high_cfg,
          uint64_t low_mib = 40, uint64_t mid_mib = 40) {
    low = Join(tmp, low_cfg);
    mid = Join(tmp, mid_cfg);
    high = Join(tmp, high_cfg);
    EXPECT_TRUE(low->TryCharge(low_mib * kMiB));
    EXPECT_TRUE(mid->TryCharge(mid_mib * kMiB));
  }
};

TEST(PriorityResolver, MarksTheLowerPriorityBurstingTenantAndRecordsIt) {
  Contest c(Tenant("low", 10, 60, ResolverKind::kWait, 0), Tenant("mid", 10, 60, ResolverKind::kWait, 5),
            Tenant("high", 10, 60, ResolverKind::kPriority, 10));
  auto grant = std::async(std::launch::async, [&] { return c.high->TryCharge(40 * kMiB, 5 * kSecond); });
  TerminationRequest req;
  ASSERT_TRUE(Eventually([&] { return c.low->TerminationRequested(&req); }));
  EXPECT_EQ(req.requester, "high");
  EXPECT_EQ(req.reason_code, TerminationReason::kLowerPriority);
  EXPECT_FALSE(c.mid->TerminationRequested(&req)) << "one victim is enough: as few as needed";
  const LedgerSnapshot snap = Snapshot(c.low->path());
  ASSERT_EQ(snap.recent_terminations.size(), 1u);
  const TerminationSnapshot& r = snap.recent_terminations[0];
  EXPECT_EQ(r.victim, "low");
  EXPECT_EQ(r.requester, "high");
  EXPECT_EQ(r.reason, static_cast<uint32_t>(GS_TERMINATE_LOWER_PRIORITY));
  EXPECT_EQ(r.victim_used_bytes, 40 * kMiB);
  EXPECT_EQ(r.victim_burst_bytes, 30 * kMiB);
  EXPECT_EQ(r.requester_bytes, 40 * kMiB);
  EXPECT_EQ(r.victim_priority, 0);
  EXPECT_EQ(r.requester_priority, 10);
  EXPECT_EQ(Find(snap, "low")->terminations_total, 1u);
  EXPECT_TRUE(Find(snap, "low")->terminate_requested);
  c.low.reset();  // the victim's processes exit
  EXPECT_TRUE(grant.get()) << "then the requester's allocation proceeds";
}

TEST(PriorityResolver, NeverTakesMemoryWithinARequest) {
  // low (priority 0) holds only its request; mid (priority 5) bursts: mid is the victim.
  Contest c(Tenant("low", 40, 60, ResolverKind::kWait, 0), Tenant("mid", 10, 60, ResolverKind::kWait, 5),
            Tenant("high", 10, 60, ResolverKind::kPriority, 10), 40, 40);
  auto grant = std::async(std::launch::async, [&] { return c.high->TryCharge(30 * kMiB, 5 * kSecond); });
  TerminationRequest req;
  ASSERT_TRUE(Eventually([&] { return c.mid->TerminationRequested(&req); }));
  EXPECT_FALSE(c.low->TerminationRequested(&req));
  c.mid.reset();
  EXPECT_TRUE(grant.get());
}

TEST(PriorityResolver, TakesFromATenantIdlePastTheRequestersTimeout) {
  // Equal priorities: only idleness makes a victim. x has been idle for 2 s, y is active.
  Contest c(Tenant("x", 10, 60), Tenant("y", 10, 60),
            Tenant("z", 10, 60, ResolverKind::kPriority, 0, /*idle_timeout_ns=*/kSecond));
  const uint64_t now = MonoNs();
  c.low->NoteActivity(now - 2 * kSecond);
  c.mid->NoteActivity(now);
  auto grant = std::async(std::launch::async, [&] { return c.high->TryCharge(40 * kMiB, 5 * kSecond); });
  TerminationRequest req;
  ASSERT_TRUE(Eventually([&] { return c.low->TerminationRequested(&req); }));
  EXPECT_EQ(req.reason_code, TerminationReason::kIdle);
  EXPECT_FALSE(c.mid->TerminationRequested(&req));
  const LedgerSnapshot snap = Snapshot(c.low->path());
  ASSERT_EQ(snap.recent_terminations.size(), 1u);
  EXPECT_GE(snap.recent_terminations[0].victim_idle_ns, 2 * kSecond);
  c.low.reset();
  EXPECT_TRUE(grant.get());
}

TEST(PriorityResolver, LowerPriorityGoesBeforeLongerIdle) {
  // Both qualify: x by idleness (priority 5), y by its lower priority (0). y goes first.
  Contest c(Tenant("x", 10, 60, ResolverKind::kWait, 5), Tenant("y", 10, 60, ResolverKind::kWait, 0),
            Tenant("z", 10, 60, ResolverKind::kPriority, 5, kSecond));
  c.low->NoteActivity(MonoNs() - 3 * kSecond);
  auto grant = std::async(std::launch::async, [&] { return c.high->TryCharge(40 * kMiB, 5 * kSecond); });
  TerminationRequest req;
  ASSERT_TRUE(Eventually([&] { return c.mid->TerminationRequested(&req); }));
  EXPECT_EQ(req.reason_code, TerminationReason::kLowerPriority);
  EXPECT_FALSE(c.low->TerminationRequested(&req));
  c.mid.reset();
  EXPECT_TRUE(grant.get());
}

TEST(PriorityResolver, MarksNobodyWhenVictimsCouldNotCoverTheShortfall) {
  // high would need 50 MiB of burst; low's exit would give 40 and mid is of higher priority.
  Contest c(Tenant("low", 10, 60, ResolverKind::kWait, 0), Tenant("mid", 10, 60, ResolverKind::kWait, 20),
            Tenant("high", 10, 90, ResolverKind::kPriority, 10));
  EXPECT_FALSE(c.high->TryCharge(70 * kMiB, 200'000'000));
  TerminationRequest req;
  EXPECT_FALSE(c.low->TerminationRequested(&req));
  EXPECT_FALSE(c.mid->TerminationRequested(&req));
  EXPECT_TRUE(Snapshot(c.low->path()).recent_terminations.empty());
}

// Many processes of mixed resolvers colliding at random; the ledger's books balance at the end
// and no one hangs.
TEST(Resolvers, RandomCollisionSoakKeepsInvariants) {
  TempDir tmp;
  constexpr int kChildren = 8;
  struct Shared {
    std::atomic<int> stop{0};
    std::atomic<uint64_t> granted_after_wait{0};
    std::atomic<uint64_t> violations{0};
    std::atomic<int> finished{0};
  };
  void* page = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  Shared* shared = new (page) Shared();
  const std::string dir = tmp.path();
  const char* names[] = {"t0", "t1", "t2", "t3"};
  const ResolverKind kinds[] = {ResolverKind::kWait, ResolverKind::kWait, ResolverKind::kNone,
                                ResolverKind::kWait};
  // Admitted before anyone bursts (a request must be guaranteed when it joins).
  std::vector<std::unique_ptr<LedgerSession>> anchors;
  for (int t = 0; t < 4; ++t) anchors.push_back(Join(tmp, Tenant(names[t], 10, 60, kinds[t])));
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (auto& anchor : anchors) (void)anchor.release();  // the parent's: never left from here
      std::string error;
      auto s = LedgerSession::Open(dir, kUuid, kUsable, Tenant(names[i % 4], 10, 60, kinds[i % 4]), &error);
      if (s == nullptr) _exit(1);
      std::mt19937 rng(static_cast<unsigned>(i) * 7919u);
      std::vector<uint64_t> held;
      while (shared->stop.load() == 0) {
        if (held.empty() || rng() % 3 != 0) {
          const uint64_t bytes = (1 + rng() % 8) * kMiB;
          const uint64_t wait = (rng() % 2) * 30'000'000ull;
          const uint64_t t0 = MonoNs();
          if (s->TryCharge(bytes, wait)) {
            held.push_back(bytes);
            if (MonoNs() - t0 > 1'000'000) shared->granted_after_wait.fetch_add(1);
          }
        } else {
          s->Uncharge(held.back());
          held.pop_back();
        }
        if (s->tenant_used_bytes() > s->limit_bytes()) shared->violations.fetch_add(1);
        usleep(rng() % 500);
      }
      for (uint64_t bytes : held) s->Uncharge(bytes);
      s.reset();  // leaves (_exit runs no destructors)
      shared->finished.fetch_add(1);
      _exit(0);
    }
    pids.push_back(pid);
  }
  const auto end = Clock::now() + std::chrono::seconds(2);
  uint64_t samples = 0;
  while (Clock::now() < end) {
    LedgerSnapshot snap;
    std::string error;
    if (ReadLedger(LedgerPath(dir, kUuid), &snap, &error)) {
      ++samples;
      EXPECT_LE(snap.sum_used_bytes, snap.usable_bytes);
      for (const auto& t : snap.tenants) EXPECT_LE(t.used_bytes, t.limit_bytes) << t.name;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  shared->stop.store(1);
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(shared->finished.load(), kChildren) << "nobody hung";
  EXPECT_EQ(shared->violations.load(), 0u);
  EXPECT_GT(shared->granted_after_wait.load(), 0u) << "collisions did happen and were resolved by waiting";
  EXPECT_GT(samples, 10u);
  anchors.clear();
  const LedgerSnapshot snap = Snapshot(LedgerPath(dir, kUuid));
  EXPECT_TRUE(snap.tenants.empty()) << "every tenant left";
  EXPECT_TRUE(snap.waiters.empty());
  EXPECT_EQ(snap.waiting, 0u);
  std::printf("soak: %llu allocations granted after waiting\n",
              static_cast<unsigned long long>(shared->granted_after_wait.load()));
}

}  // namespace
}  // namespace gpushare::quota

namespace gpushare::quota {
namespace {

TenantConfig SwapTenant(const std::string& name, uint64_t request_mib, uint64_t limit_mib, uint64_t quantum_ns,
                        uint64_t idle_timeout_ns = 0) {
  TenantConfig t = Tenant(name, request_mib, limit_mib, ResolverKind::kSwap, 0, idle_timeout_ns);
  t.swap_quantum_ns = quantum_ns;
  return t;
}

// The swap resolver asks a bursting tenant only once its quantum is over, for its whole burst
// (never more than it reports swappable); the requester is granted once the victim's agent gives
// the memory back (here: this test plays the agent).
TEST(SwapResolver, AsksTheBurstingTenantForItsBurstOnceItsQuantumIsOver) {
  TempDir tmp;
  auto a = Join(tmp, SwapTenant("a", 30, 80, 300'000'000));
  auto b = Join(tmp, SwapTenant("b", 30, 80, 300'000'000));
  ASSERT_TRUE(a->TryCharge(70 * kMiB));  // 40 MiB burst: the pool (40) is a's
  a->SetSwapBytes(70 * kMiB, 0);
  const auto start = Clock::now();
  std::atomic<bool> granted{false};
  std::thread requester([&] { granted = b->TryCharge(60 * kMiB, 5 * kSecond); });
  // Within a's quantum nothing is asked.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(a->SwapAsk(nullptr), 0u) << "a's quantum is not over";
  ASSERT_TRUE(Eventually([&] { return a->SwapAsk(nullptr) > 0; }));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(250));
  EXPECT_EQ(a->SwapAsk(nullptr), 40 * kMiB) << "its whole burst, not more";
  EXPECT_FALSE(granted.load());
  // The agent: moves 40 MiB out (uncharged), answers.
  a->Uncharge(40 * kMiB);
  a->SetSwapBytes(30 * kMiB, 40 * kMiB);
  a->NoteSwappedOut(40 * kMiB, 1'000'000, 40 * kMiB);
  requester.join();
  ASSERT_TRUE(granted.load());
  b->SetSwapBytes(60 * kMiB, 0);
  EXPECT_EQ(a->SwapAsk(nullptr), 0u);
  const LedgerSnapshot snap = Snapshot(a->path());
  EXPECT_EQ(Find(snap, "a")->swaps_out, 1u);
  EXPECT_EQ(Find(snap, "a")->swap_out_bytes, 40 * kMiB);
  EXPECT_EQ(Find(snap, "a")->swapped_out_bytes, 40 * kMiB);
  EXPECT_EQ(Find(snap, "a")->used_bytes, 30 * kMiB) << "swapped-out bytes are not counted as used";
  EXPECT_EQ(snap.swaps_out, 1u);
  // b's turn began at the grant: a waiting to swap back in cannot take it before b's quantum.
  std::atomic<bool> back{false};
  const auto wait_start = Clock::now();
  std::thread swap_in([&] { back = a->TryCharge(40 * kMiB, 5 * kSecond); });
  ASSERT_TRUE(Eventually([&] { return b->SwapAsk(nullptr) > 0; }));
  EXPECT_GE(Clock::now() - wait_start, std::chrono::milliseconds(200)) << "round robin after b's quantum";
  b->Uncharge(30 * kMiB);
  b->NoteSwappedOut(30 * kMiB, 1'000'000, 30 * kMiB);
  swap_in.join();
  EXPECT_TRUE(back.load());
  a->NoteSwappedIn(40 * kMiB, 1'000'000, 0);
  EXPECT_EQ(Find(Snapshot(a->path()), "a")->swaps_in, 1u);
}

TEST(SwapResolver, NeverAsksForMemoryWithinARequestUnlessTheTenantIsIdle) {
  TempDir tmp;
  auto a = Join(tmp, SwapTenant("a", 50, 80, 0));
  auto b = Join(tmp, SwapTenant("b", 20, 80, 0, /*idle_timeout_ns=*/200'000'000));
  ASSERT_TRUE(a->TryCharge(50 * kMiB));  // within its request
  a->SetSwapBytes(50 * kMiB, 0);
  EXPECT_FALSE(b->TryCharge(60 * kMiB, 100'000'000)) << "nothing to take: a is within its request";
  EXPECT_EQ(a->SwapAsk(nullptr), 0u);
  // Idle past b's timeout: a's memory may go (physically), but its request stays held, so b's
  // burst still cannot fit: b is told no without asking for nothing useful.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b->TryCharge(60 * kMiB, 100'000'000));
  EXPECT_TRUE(b->TryCharge(20 * kMiB)) << "its request is always there";
}

}  // namespace
}  // namespace gpushare::quota
