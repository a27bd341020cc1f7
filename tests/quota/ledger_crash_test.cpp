// SPDX-License-Identifier: Apache-2.0
// Real processes sharing one ledger: children SIGKILLed inside the ledger lock, between a
// reserve and the "allocation", in the middle of a lock-free update, and at random during a
// soak of several tenants. Children report through an anonymous shared page and never return
// into gtest (_exit).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "quota/ledger.h"
#include "quota/robust_lock.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::Find;
using testing::Snapshot;
using testing::TempDir;

template <typename T>
T* SharedPage() {
  void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return new (p) T();
}

pid_t Spawn(const std::function<void()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  return pid;
}

// Waits for pid; true when it died of SIGKILL.
bool Killed(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(LedgerCrash, HolderKilledInsideTheLockIsRepaired) {
  TempDir tmp;
  std::string error;
  auto me = LedgerSession::Open(tmp.path(), kUuid, 1024 * kMiB, Tenant("t", 64, 128), &error);
  ASSERT_NE(me, nullptr) << error;
  ASSERT_TRUE(me->TryCharge(16 * kMiB));
  const pid_t child = Spawn([&] {
    auto s = LedgerSession::Open(tmp.path(), kUuid, 1024 * kMiB, Tenant("t", 64, 128), nullptr);
    if (!s || !s->TryCharge(32 * kMiB)) _exit(2);
    RobustLockGuard guard(LedgerSessionTest::Header(*s)->lock, 1000, {});
    // Mid-recount: the tenant frozen and its word garbage.
    __atomic_store_n(&LedgerSessionTest::Tenant(*s)->used_bytes, GS_TENANT_USED_FROZEN | 999,
                     __ATOMIC_RELEASE);
    raise(SIGKILL);
  });
  ASSERT_TRUE(Killed(child));
  // The fast path sees the frozen word, takes the lock, gets EOWNERDEAD and repairs.
  ASSERT_TRUE(me->TryCharge(8 * kMiB));
  EXPECT_EQ(me->tenant_used_bytes(), 24 * kMiB);
  const LedgerSnapshot snap = Snapshot(me->path());
  EXPECT_EQ(snap.repairs, 1u);
  EXPECT_EQ(snap.reaped_processes, 1u);
  ASSERT_EQ(snap.tenants.size(), 1u);
  EXPECT_EQ(snap.tenants[0].used_bytes, 24 * kMiB);
  ASSERT_EQ(snap.tenants[0].processes.size(), 1u);
  EXPECT_TRUE(me->TryCharge(104 * kMiB));  // up to the limit, nothing leaked
  EXPECT_FALSE(me->TryCharge(1));
}

TEST(LedgerCrash, KilledBetweenReserveAndAllocateLeaksNothing) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("a", 10, 100), &error);
  ASSERT_NE(a, nullptr) << error;
  const pid_t child = Spawn([&] {
    auto s = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("b", 10, 90), nullptr);
    if (!s || !s->TryCharge(80 * kMiB)) _exit(2);  // a burst of 70: the pool is 80
    raise(SIGKILL);                                 // before the driver call
  });
  ASSERT_TRUE(Killed(child));
  EXPECT_EQ(Snapshot(a->path()).sum_used_bytes, 80 * kMiB);
  // The pool looks exhausted; the refusal path reaps the dead, then grants.
  EXPECT_TRUE(a->TryCharge(50 * kMiB));
  const LedgerSnapshot snap = Snapshot(a->path());
  EXPECT_EQ(snap.reaped_processes, 1u);
  ASSERT_EQ(snap.tenants.size(), 1u);  // b had no process left
  EXPECT_EQ(snap.sum_used_bytes, 50 * kMiB);
  EXPECT_EQ(snap.sum_request_bytes, 10 * kMiB);
}

TEST(LedgerCrash, KilledInsideTheLockFreePairIsDroppedExactly) {
  TempDir tmp;
  std::string error;
  auto me = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("t", 50, 50), &error);
  ASSERT_NE(me, nullptr) << error;
  ASSERT_TRUE(me->TryCharge(3 * kMiB));
  for (int where = 0; where < 3; ++where) {
    const pid_t child = Spawn([&] {
      auto s = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("t", 50, 50), nullptr);
      if (!s || !s->TryCharge(kMiB)) _exit(2);
      GsLedgerProcess* p = LedgerSessionTest::Process(*s);
      __atomic_fetch_add(&p->inflight, 1, __ATOMIC_SEQ_CST);
      if (where >= 1) __atomic_fetch_add(&LedgerSessionTest::Tenant(*s)->used_bytes, 5 * kMiB, __ATOMIC_SEQ_CST);
      if (where >= 2) __atomic_fetch_add(&p->used_bytes, 5 * kMiB, __ATOMIC_SEQ_CST);
      raise(SIGKILL);
    });
    ASSERT_TRUE(Killed(child));
    EXPECT_EQ(me->Reap(), 1u) << where;
    EXPECT_EQ(me->tenant_used_bytes(), 3 * kMiB) << where;
  }
}

TEST(LedgerCrash, ConcurrentStartersAgreeOnOneLedger) {
  TempDir tmp;
  constexpr int kChildren = 8;
  struct Shared {
    std::atomic<int> go{0}, joined{0}, failed{0}, release{0};
  };
  Shared* shared = SharedPage<Shared>();
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i)
    children.push_back(Spawn([&, i] {
      while (shared->go.load() == 0) {
      }
      auto s = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("c" + std::to_string(i), 10, 20), nullptr);
      if (!s || !s->TryCharge(kMiB)) shared->failed.fetch_add(1);
      shared->joined.fetch_add(1);
      while (shared->release.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }));
  shared->go.store(1);
  while (shared->joined.load() < kChildren) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(shared->failed.load(), 0);
  const LedgerSnapshot snap = Snapshot(LedgerPath(tmp.path(), kUuid));
  EXPECT_EQ(snap.tenants.size(), static_cast<size_t>(kChildren));
  EXPECT_EQ(snap.sum_used_bytes, kChildren * kMiB);
  shared->release.store(1);
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  EXPECT_TRUE(Snapshot(LedgerPath(tmp.path(), kUuid)).tenants.empty());  // all left cleanly
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tmp.path())) files += entry.exists();
  EXPECT_EQ(files, 1u);  // no temporary file left behind
}

// ---- The soak: several tenants, random charges and frees, random SIGKILLs. ----

constexpr int kSoakChildren = 8;
constexpr uint64_t kSoakUsable = 1000 * kMiB;

struct Role {
  const char* tenant;
  uint64_t request_mib, limit_mib;
  bool best_effort;
  uint64_t guaranteed_share_mib;  // nonzero: stays within it, so every charge must succeed
};
constexpr Role kRoles[kSoakChildren] = {
    {"A", 300, 600, false, 100}, {"A", 300, 600, false, 100}, {"A", 300, 600, false, 100},
    {"B", 300, 500, false, 0},   {"B", 300, 500, false, 0},   {"C", 200, 1000, false, 0},
    {"C", 200, 1000, false, 0},  {"E", 300, 400, true, 0},  // never fits: best-effort
};

struct SoakShared {
  std::atomic<int> stop{0};
  std::atomic<uint64_t> guaranteed_denied{0}, over_limit_seen{0}, open_failed{0}, ops{0};
  std::atomic<int32_t> pid[kSoakChildren];
  std::atomic<uint64_t> held[kSoakChildren];
  std::atomic<int> parked[kSoakChildren];
};

void SoakChild(const std::string& dir, int index, SoakShared* shared) {
  const Role& role = kRoles[index];
  auto s = LedgerSession::Open(dir, kUuid, kSoakUsable,
                               Tenant(role.tenant, role.request_mib, role.limit_mib, role.best_effort), nullptr);
  if (!s) {
    shared->open_failed.fetch_add(1);
    _exit(3);
  }
  std::mt19937_64 rng(static_cast<uint64_t>(getpid()) * 7919);
  std::vector<uint64_t> allocs;
  uint64_t held = 0;
  const uint64_t share = role.guaranteed_share_mib * kMiB;
  while (shared->stop.load(std::memory_order_relaxed) == 0) {
    if (allocs.empty() || rng() % 100 < 55) {
      const uint64_t size = (1 + rng() % (share != 0 ? 20 : 60)) * kMiB;
      if (share != 0 && held + size > share) {
        s->Uncharge(allocs.back());
        held -= allocs.back();
        allocs.pop_back();
      } else if (s->TryCharge(size)) {
        allocs.push_back(size);
        held += size;
      } else if (share != 0) {
        shared->guaranteed_denied.fetch_add(1);
      }
      if (s->tenant_used_bytes() > role.limit_mib * kMiB) shared->over_limit_seen.fetch_add(1);
    } else {
      const size_t i = rng() % allocs.size();
      s->Uncharge(allocs[i]);
      held -= allocs[i];
      allocs[i] = allocs.back();
      allocs.pop_back();
    }
    shared->held[index].store(held);
    shared->ops.fetch_add(1, std::memory_order_relaxed);
  }
  shared->parked[index].store(1);
  for (;;) pause();  // holding its usage until the parent has checked and kills it
}

TEST(LedgerCrash, RandomSoakKeepsInvariants) {
  TempDir tmp;
  std::string error;
  // The parent holds a process in A, B and C so their requests stay reserved while their
  // children die and respawn.
  std::vector<std::unique_ptr<LedgerSession>> anchors;
  for (int r : {0, 3, 5}) {
    anchors.push_back(LedgerSession::Open(tmp.path(), kUuid, kSoakUsable,
                                          Tenant(kRoles[r].tenant, kRoles[r].request_mib, kRoles[r].limit_mib),
                                          &error));
    ASSERT_NE(anchors.back(), nullptr) << error;
  }
  SoakShared* shared = SharedPage<SoakShared>();
  pid_t pids[kSoakChildren];
  auto start = [&](int i) {
    shared->held[i].store(0);
    pids[i] = Spawn([&, i] { SoakChild(tmp.path(), i, shared); });
    shared->pid[i].store(pids[i]);
  };
  for (int i = 0; i < kSoakChildren; ++i) start(i);

  std::mt19937 rng(12345);
  int kills = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(3000);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
    const int victim = static_cast<int>(rng() % kSoakChildren);
    kill(pids[victim], SIGKILL);
    waitpid(pids[victim], nullptr, 0);
    ++kills;
    start(victim);
  }
  shared->stop.store(1);
  const auto park_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (int i = 0; i < kSoakChildren; ++i)
    while (shared->parked[i].load() == 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), park_deadline) << "child " << i << " hangs";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

  EXPECT_EQ(shared->open_failed.load(), 0u);
  EXPECT_EQ(shared->guaranteed_denied.load(), 0u);
  EXPECT_EQ(shared->over_limit_seen.load(), 0u);
  anchors[0]->Reap();  // the killed children nobody reaped yet
  const LedgerSnapshot snap = Snapshot(anchors[0]->path());
  std::map<uint32_t, uint64_t> used_by_pid;
  uint64_t sum = 0;
  for (const auto& t : snap.tenants) {
    uint64_t processes = 0;
    for (const auto& p : t.processes) {
      EXPECT_TRUE(p.alive) << t.name << " pid " << p.pid;
      processes += p.used_bytes;
      used_by_pid[p.pid] = p.used_bytes;
    }
    EXPECT_EQ(t.used_bytes, processes) << t.name;
    EXPECT_LE(t.used_bytes, t.limit_bytes) << t.name;
    sum += t.used_bytes;
  }
  EXPECT_LE(sum, snap.usable_bytes);
  EXPECT_LE(snap.sum_request_bytes, snap.usable_bytes);
  ASSERT_NE(Find(snap, "E"), nullptr);
  EXPECT_TRUE(Find(snap, "E")->best_effort);
  for (int i = 0; i < kSoakChildren; ++i)
    EXPECT_EQ(used_by_pid[static_cast<uint32_t>(pids[i])], shared->held[i].load()) << "child " << i;

  for (int i = 0; i < kSoakChildren; ++i) {
    kill(pids[i], SIGKILL);
    waitpid(pids[i], nullptr, 0);
  }
  EXPECT_EQ(anchors[0]->Reap(), static_cast<size_t>(kSoakChildren));
  const LedgerSnapshot after = Snapshot(anchors[0]->path());
  EXPECT_EQ(after.tenants.size(), 3u);  // E had only children
  EXPECT_EQ(after.sum_used_bytes, 0u);
  std::printf("soak: %d kills, %llu operations, %llu repairs, %llu reaped\n", kills,
              static_cast<unsigned long long>(shared->ops.load()),
              static_cast<unsigned long long>(after.repairs),
              static_cast<unsigned long long>(after.reaped_processes));
}

}  // namespace
}  // namespace gpushare::quota
