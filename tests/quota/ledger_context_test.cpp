// SPDX-License-Identifier: Apache-2.0
// A lone context's own memory in the ledger: published once per driver and MPS mode, the first
// figure winning; the measuring turn held by one open ledger at a time and freed by death; each
// process's context bytes shown to the tools.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Snapshot;
using testing::TempDir;
using testing::Tenant;

constexpr ContextOverheadKey kDriver13{13000, false};

std::unique_ptr<LedgerSession> Open(const TempDir& dir, const std::string& name) {
  std::string error;
  auto s = LedgerSession::Open(dir.path(), kUuid, 4096 * kMiB, Tenant(name, 0, 1024), &error);
  EXPECT_NE(s, nullptr) << error;
  return s;
}

TEST(LedgerContext, TheFirstPublishedFigureIsSharedPerDriverAndMpsMode) {
  TempDir dir;
  auto a = Open(dir, "a");
  auto b = Open(dir, "b");
  uint64_t bytes = 0;
  EXPECT_FALSE(b->CachedContextOverhead(kDriver13, &bytes));
  ASSERT_TRUE(a->PublishContextOverhead(kDriver13, 526 * kMiB));
  ASSERT_TRUE(b->CachedContextOverhead(kDriver13, &bytes));
  EXPECT_EQ(bytes, 526 * kMiB);
  // A second lone measurement does not replace it: every process is charged one figure.
  ASSERT_TRUE(b->PublishContextOverhead(kDriver13, 530 * kMiB));
  ASSERT_TRUE(a->CachedContextOverhead(kDriver13, &bytes));
  EXPECT_EQ(bytes, 526 * kMiB);
  // Another driver, or MPS, has other contexts: not this figure.
  EXPECT_FALSE(a->CachedContextOverhead({13010, false}, &bytes));
  EXPECT_FALSE(a->CachedContextOverhead({13000, true}, &bytes));
  // and its own measurement replaces it.
  ASSERT_TRUE(a->PublishContextOverhead({13010, false}, 600 * kMiB));
  ASSERT_TRUE(b->CachedContextOverhead({13010, false}, &bytes));
  EXPECT_EQ(bytes, 600 * kMiB);

  const LedgerSnapshot snap = Snapshot(dir.ledger());
  EXPECT_EQ(snap.context_overhead_bytes, 600 * kMiB);
  EXPECT_EQ(snap.context_overhead_driver, 13010);
  EXPECT_FALSE(snap.context_overhead_mps);
  EXPECT_GT(snap.context_overhead_unix_ns, 0u);
}

TEST(LedgerContext, OneProcessAtATimeHoldsTheMeasuringTurn) {
  TempDir dir;
  auto a = Open(dir, "a");
  auto b = Open(dir, "b");  // another open file description, as another process has
  ASSERT_TRUE(a->TryHoldOverheadTurn());
  EXPECT_FALSE(b->TryHoldOverheadTurn());
  a->ReleaseOverheadTurn();
  ASSERT_TRUE(b->TryHoldOverheadTurn());
  b->ReleaseOverheadTurn();
}

TEST(LedgerContext, AHolderKilledWithTheTurnFreesIt) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // holds the turn until killed; no gtest assertions here
    std::string error;
    auto s = LedgerSession::Open(dir.path(), kUuid, 4096 * kMiB, Tenant("child", 0, 1024), &error);
    const char ok = s != nullptr && s->TryHoldOverheadTurn() ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(2);
    for (;;) pause();
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  auto a = Open(dir, "a");
  EXPECT_FALSE(a->TryHoldOverheadTurn());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(a->TryHoldOverheadTurn()) << "the kernel dropped the dead holder's lock";
}

TEST(LedgerContext, EachProcessShowsItsContextsOwnMemory) {
  TempDir dir;
  auto a = Open(dir, "a");
  a->AddProcessContextBytes(526 * kMiB);
  a->AddProcessContextBytes(200 * kMiB);
  a->SubtractProcessContextBytes(200 * kMiB);
  a->SubtractProcessContextBytes(0);
  LedgerSnapshot snap = Snapshot(dir.ledger());
  ASSERT_EQ(snap.tenants.size(), 1u);
  ASSERT_EQ(snap.tenants[0].processes.size(), 1u);
  EXPECT_EQ(snap.tenants[0].processes[0].context_bytes, 526 * kMiB);
  a->SubtractProcessContextBytes(1024 * kMiB);  // never below zero
  snap = Snapshot(dir.ledger());
  EXPECT_EQ(snap.tenants[0].processes[0].context_bytes, 0u);
}

}  // namespace
}  // namespace gpushare::quota
