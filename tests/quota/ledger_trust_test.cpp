// SPDX-License-Identifier: Apache-2.0
// What a ledger file's contents may not make the library believe: a waiter that never was, a
// capacity the GPU does not have, a deadline far ahead, a frozen word nobody recounts. Nothing
// read from shared memory is trusted unchecked.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Snapshot;
using testing::Tenant;
using testing::TempDir;

template <typename T>
void Poke(const std::string& path, off_t offset, T value) {
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, &value, sizeof value, offset), static_cast<ssize_t>(sizeof value));
  close(fd);
}

// One stray nonzero byte at header offset 256 (the first waiter's ticket) made every first
// burst yield to a waiter that never was, and under the none resolver every burst, forever.
TEST(LedgerTrust, AStrayByteInTheWaiterTableIsNoWaiter) {
  TempDir tmp;
  std::string error;
  TenantConfig none = Tenant("a", 0, 10);
  none.resolver = ResolverKind::kNone;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, none, &error);
  ASSERT_NE(a, nullptr) << error;
  Poke<uint8_t>(a->path(), offsetof(GsLedgerHeader, waiters), 1);
  EXPECT_TRUE(Snapshot(a->path()).waiters.empty()) << "no phantom waiter is shown";
  EXPECT_EQ(Snapshot(a->path()).waiting, 0u);
  EXPECT_TRUE(a->TryCharge(5 * kMiB)) << "an empty GPU";
  // The same byte under the wait resolver, retry mode: the first burst is not refused either.
  TempDir tmp2;
  TenantConfig wait = Tenant("w", 0, 10);
  wait.resolver = ResolverKind::kWait;
  auto w = LedgerSession::Open(tmp2.path(), kUuid, 10 * kMiB, wait, &error);
  ASSERT_NE(w, nullptr) << error;
  Poke<uint8_t>(w->path(), offsetof(GsLedgerHeader, waiters), 1);
  Poke<uint32_t>(w->path(), offsetof(GsLedgerHeader, waiting), 7);  // and a stray count
  EXPECT_TRUE(w->TryCharge(5 * kMiB, 1'000'000'000ull, /*wait_on_retry_only=*/true));
  const LedgerSnapshot snap = Snapshot(w->path());
  EXPECT_TRUE(snap.waiters.empty());
  int fd = open(w->path().c_str(), O_RDONLY);
  GsLedgerHeader h{};
  ASSERT_EQ(pread(fd, &h, sizeof h, 0), static_cast<ssize_t>(sizeof h));
  close(fd);
  EXPECT_EQ(h.waiters[0].ticket, 0u) << "dropped";
  EXPECT_EQ(h.waiting, 0u) << "recounted";
}

// usable_bytes and total_bytes forged to 1 TiB let two 12 GiB requests in on a 16 GiB GPU.
TEST(LedgerTrust, AForgedCapacityIsBoundedByWhatWasMeasured) {
  TempDir tmp;
  std::string error;
  { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 16 * kMiB, Tenant("x", 0, 1), &error), nullptr) << error; }
  Poke<uint64_t>(tmp.ledger(), offsetof(GsLedgerHeader, total_bytes), 1ull << 40);
  Poke<uint64_t>(tmp.ledger(), offsetof(GsLedgerHeader, usable_bytes), 1ull << 40);
  auto a = LedgerSession::Open(tmp.path(), kUuid, 16 * kMiB, Tenant("a", 12, 12), &error);
  ASSERT_NE(a, nullptr) << error;
  EXPECT_EQ(a->usable_bytes(), 16 * kMiB);
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 16 * kMiB, Tenant("b", 12, 12), &error), nullptr);
  EXPECT_NE(error.find("can guarantee only " + std::to_string(4 * kMiB)), std::string::npos) << error;
  ASSERT_TRUE(a->TryCharge(12 * kMiB));
  auto c = LedgerSession::Open(tmp.path(), kUuid, 16 * kMiB, Tenant("c", 0, 12), &error);
  ASSERT_NE(c, nullptr) << error;
  EXPECT_FALSE(c->TryCharge(5 * kMiB)) << "bursts are bounded too";
  EXPECT_TRUE(c->TryCharge(4 * kMiB));
}

// hidden_bytes counts as used by others until hidden_until_ns, written kHiddenTtlNs ahead: a
// deadline far in the future refused every burst for as long as it said.
TEST(LedgerTrust, AForgedHiddenMemoryDeadlineIsNotBelieved) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 0, 10), &error);
  ASSERT_NE(a, nullptr) << error;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t now_ns = static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
  Poke<uint64_t>(a->path(), offsetof(GsLedgerHeader, hidden_bytes), 10 * kMiB);
  Poke<uint64_t>(a->path(), offsetof(GsLedgerHeader, hidden_until_ns), now_ns + 3600'000'000'000ull);
  EXPECT_TRUE(a->TryCharge(5 * kMiB));
}

// A tenant word left frozen with nobody recounting (written so: a recounter that died is
// repaired through EOWNERDEAD) made the locked path retry forever.
TEST(LedgerTrust, AFrozenWordNobodyRecountsDoesNotHangCharges) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("a", 10, 50), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(5 * kMiB));
  const pid_t child = fork();
  if (child == 0) {
    alarm(5);
    Poke<uint64_t>(a->path(), GS_LEDGER_HEADER_BYTES + a->tenant_index() * GS_LEDGER_TENANT_SLOT_BYTES +
                                  offsetof(GsLedgerTenant, used_bytes), GS_TENANT_USED_FROZEN | (5 * kMiB));
    const bool burst = a->TryCharge(20 * kMiB);  // past the request: the locked path
    Poke<uint64_t>(a->path(), GS_LEDGER_HEADER_BYTES + a->tenant_index() * GS_LEDGER_TENANT_SLOT_BYTES +
                                  offsetof(GsLedgerTenant, used_bytes), GS_TENANT_USED_FROZEN | (25 * kMiB));
    a->ForceCharge(kMiB);
    a->Uncharge(kMiB);
    _exit(burst && a->tenant_used_bytes() == 25 * kMiB ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "hung (killed by the alarm)" : "wrong totals");
}

}  // namespace
}  // namespace gpushare::quota
