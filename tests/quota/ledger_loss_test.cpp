// SPDX-License-Identifier: Apache-2.0
// A session whose ledger file is truncated, zeroed, removed or replaced under it. CheckFile() is what the watcher thread calls every tick; the end-to-end tests
// (tests/e2e/ledger_damage_test.cpp) do the same through real programs and their watchers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::Find;
using testing::kMiB;
using testing::kUuid;
using testing::Snapshot;
using testing::Tenant;
using testing::TempDir;

void Truncate(const std::string& path, off_t size) { ASSERT_EQ(truncate(path.c_str(), size), 0) << path; }

void Zero(const std::string& path) {
  const std::vector<char> zeros(GS_LEDGER_FILE_BYTES, 0);
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, zeros.data(), zeros.size(), 0), static_cast<ssize_t>(zeros.size()));
  close(fd);
}

const ProcessSnapshot* OnlyProcess(const TenantSnapshot* t) {
  return t != nullptr && t->processes.size() == 1 ? &t->processes[0] : nullptr;
}

// Truncated to nothing, or to its header page only: every later access of the mapping would
// raise SIGBUS, and did kill the process.
void SurvivesTruncationTo(off_t size) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 256 * kMiB, Tenant("a", 64, 128), &error);
  auto b = LedgerSession::Open(tmp.path(), kUuid, 256 * kMiB, Tenant("b", 32, 32), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_NE(b, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(100 * kMiB));
  Truncate(a->path(), size);
  // Not re-joined yet: it keeps what it holds, frees go on, and it gets back only what it freed.
  EXPECT_FALSE(a->TryCharge(kMiB)) << "nothing past what it held";
  EXPECT_NE(a->lost_reason(), 0u);
  EXPECT_EQ(a->process_used_bytes(), 100 * kMiB);
  a->Uncharge(10 * kMiB);
  EXPECT_TRUE(a->TryCharge(10 * kMiB));
  EXPECT_FALSE(a->TryCharge(1));
  // The watcher's tick: the damaged file is replaced, and both re-join it with what they hold.
  a->CheckFile();
  b->CheckFile();
  ASSERT_NE(a->successor(), nullptr);
  ASSERT_NE(b->successor(), nullptr);
  const LedgerSnapshot snap = Snapshot(a->path());
  ASSERT_EQ(snap.tenants.size(), 2u);
  EXPECT_EQ(Find(snap, "a")->used_bytes, 100 * kMiB);
  EXPECT_EQ(Find(snap, "a")->request_bytes, 64 * kMiB);
  ASSERT_NE(OnlyProcess(Find(snap, "a")), nullptr);
  EXPECT_EQ(OnlyProcess(Find(snap, "a"))->rejoined, static_cast<uint32_t>(GS_REJOIN_TRUNCATED));
  EXPECT_EQ(snap.rejoined_processes, 2u);
  // Through the new ledger now: its limit again.
  EXPECT_TRUE(a->TryCharge(28 * kMiB));
  EXPECT_FALSE(a->TryCharge(1));
  EXPECT_EQ(a->tenant_used_bytes(), 128 * kMiB);
  a->Uncharge(128 * kMiB);
  EXPECT_EQ(Find(Snapshot(a->path()), "a")->used_bytes, 0u);
  a.reset();
  EXPECT_EQ(Find(Snapshot(b->path()), "a"), nullptr) << "leaving leaves the new ledger";
}

TEST(LedgerLoss, ASessionSurvivesItsFileTruncatedToNothing) { SurvivesTruncationTo(0); }
TEST(LedgerLoss, ASessionSurvivesItsFileTruncatedToItsHeader) { SurvivesTruncationTo(4096); }

TEST(LedgerLoss, AZeroedFileGrantsNothingPastWhatTheTenantHolds) {
  TempDir tmp;
  std::string error;
  // Request = limit: every charge takes the lock-free fast path.
  auto a = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("a", 40, 40), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(30 * kMiB));
  Zero(a->path());
  // The zeroed slot says 0 used: before, 40 MiB more were granted (70 on a 40 limit).
  EXPECT_FALSE(a->TryCharge(20 * kMiB));
  EXPECT_EQ(a->lost_reason(), static_cast<uint32_t>(GS_REJOIN_OVERWRITTEN));
  a->CheckFile();
  ASSERT_NE(a->successor(), nullptr);
  EXPECT_EQ(Find(Snapshot(a->path()), "a")->used_bytes, 30 * kMiB);
  EXPECT_FALSE(a->TryCharge(20 * kMiB));
  EXPECT_TRUE(a->TryCharge(10 * kMiB));
  EXPECT_EQ(a->tenant_used_bytes(), 40 * kMiB);
}

TEST(LedgerLoss, ATenantWordOverwrittenInPlaceIsRejoinedWithoutCountingTwice) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("a", 40, 120), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(50 * kMiB));
  // Only a's used_bytes is rewritten; the header and every slot's state stay valid.
  const int fd = open(a->path().c_str(), O_WRONLY);
  const uint64_t zero = 0;
  ASSERT_EQ(pwrite(fd, &zero, sizeof zero,
                   GS_LEDGER_HEADER_BYTES + a->tenant_index() * GS_LEDGER_TENANT_SLOT_BYTES + offsetof(GsLedgerTenant, used_bytes)),
            8);
  close(fd);
  a->CheckFile();
  EXPECT_EQ(a->lost_reason(), static_cast<uint32_t>(GS_REJOIN_OVERWRITTEN));
  ASSERT_NE(a->successor(), nullptr);
  LedgerSnapshot snap = Snapshot(a->path());
  ASSERT_EQ(snap.tenants.size(), 1u);
  EXPECT_EQ(snap.tenants[0].used_bytes, 50 * kMiB) << "the same file, counted once";
  EXPECT_EQ(snap.rejoined_processes, 1u);
  EXPECT_TRUE(a->TryCharge(10 * kMiB));
  EXPECT_EQ(Find(Snapshot(a->path()), "a")->used_bytes, 60 * kMiB);
  a.reset();
  auto b = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("b", 160, 160), &error);
  EXPECT_NE(b, nullptr) << "a left entirely: " << error;
}

TEST(LedgerLoss, ARemovedFileIsRejoinedSoNewcomersSeeTheMemoryHeld) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("a", 40, 120), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(120 * kMiB));
  ASSERT_EQ(unlink(a->path().c_str()), 0);
  a->CheckFile();
  EXPECT_EQ(a->lost_reason(), static_cast<uint32_t>(GS_REJOIN_REMOVED));
  ASSERT_NE(a->successor(), nullptr);
  // 160 - a's request 40 - a's burst 80 = 40: a newcomer's 80 cannot be guaranteed.
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("b", 80, 80), &error), nullptr);
  EXPECT_NE(error.find("can guarantee only " + std::to_string(40 * kMiB)), std::string::npos) << error;
  const LedgerSnapshot snap = Snapshot(a->path());
  EXPECT_EQ(OnlyProcess(Find(snap, "a"))->rejoined, static_cast<uint32_t>(GS_REJOIN_REMOVED));
  EXPECT_EQ(snap.sum_used_bytes, 120 * kMiB);
}

TEST(LedgerLoss, AFileReplacedByACopyIsRejoinedWithoutCountingTwice) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("a", 40, 120), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(100 * kMiB));
  const std::string copy = tmp.path() + "/copy";
  std::filesystem::copy_file(a->path(), copy);
  ASSERT_EQ(rename(copy.c_str(), a->path().c_str()), 0);
  a->CheckFile();
  EXPECT_EQ(a->lost_reason(), static_cast<uint32_t>(GS_REJOIN_REPLACED));
  ASSERT_NE(a->successor(), nullptr);
  // The copy's record of a (a slot nobody holds) was reaped at the join: a counts once.
  const LedgerSnapshot snap = Snapshot(a->path());
  ASSERT_EQ(snap.tenants.size(), 1u);
  EXPECT_EQ(snap.tenants[0].used_bytes, 100 * kMiB);
  ASSERT_NE(OnlyProcess(&snap.tenants[0]), nullptr);
  EXPECT_TRUE(OnlyProcess(&snap.tenants[0])->alive);
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("b", 80, 80), &error), nullptr) << "b sees a's memory";
}

TEST(LedgerLoss, ALinkInPlaceOfTheFileIsNotJoinedAndTheSessionFailsClosed) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("a", 40, 120), &error);
  ASSERT_NE(a, nullptr) << error;
  ASSERT_TRUE(a->TryCharge(100 * kMiB));
  const std::string copy = tmp.path() + "/copy";
  std::filesystem::copy_file(a->path(), copy);
  ASSERT_EQ(unlink(a->path().c_str()), 0);
  ASSERT_EQ(symlink(copy.c_str(), a->path().c_str()), 0);
  a->CheckFile();
  EXPECT_EQ(a->lost_reason(), static_cast<uint32_t>(GS_REJOIN_REPLACED));
  EXPECT_EQ(a->successor(), nullptr) << "a link is never followed";
  EXPECT_FALSE(a->TryCharge(kMiB));
  EXPECT_EQ(a->available_bytes(), 0u);
  // Newcomers are refused too: nobody's accounting splits.
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 160 * kMiB, Tenant("b", 8, 8), &error), nullptr);
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  // Once the link is gone, the next tick re-joins.
  ASSERT_EQ(unlink(a->path().c_str()), 0);
  sleep(1);  // re-joining is retried every second
  a->CheckFile();
  ASSERT_NE(a->successor(), nullptr);
  EXPECT_EQ(Find(Snapshot(a->path()), "a")->used_bytes, 100 * kMiB);
}

TEST(LedgerLoss, ADamagedFileNobodyUsesIsReplacedAtOpen) {
  for (const off_t size : {off_t{0}, off_t{100}, off_t{5000}, off_t{GS_LEDGER_FILE_BYTES + 4096}}) {
    TempDir tmp;
    std::string error;
    { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("a", 1, 2), &error), nullptr) << error; }
    Truncate(tmp.ledger(), size);
    LedgerSnapshot snap;
    EXPECT_FALSE(ReadLedger(tmp.ledger(), &snap, &error)) << "readers still say it is damaged";
    auto b = LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("b", 1, 2), &error);
    ASSERT_NE(b, nullptr) << size << ": " << error;  // refused until someone deleted the file
    EXPECT_EQ(Snapshot(tmp.ledger()).tenants.size(), 1u);
  }
  TempDir tmp;
  std::string error;
  { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("a", 1, 2), &error), nullptr) << error; }
  Zero(tmp.ledger());
  EXPECT_NE(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("b", 1, 2), &error), nullptr) << error;
}

TEST(LedgerLoss, ADamagedFileALiveProcessStillUsesIsNotReplacedByANewcomer) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("a", 1, 2), &error);
  ASSERT_NE(a, nullptr) << error;
  Truncate(a->path(), 0);
  // a (no watcher here) does not replace it: the newcomer waits for it, then refuses.
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("b", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("truncated to 0 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find("live processes still use it"), std::string::npos) << error;
  a->CheckFile();  // a's watcher replaces it
  EXPECT_NE(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("b", 1, 2), &error), nullptr) << error;
}

TEST(LedgerLoss, ForeignContentIsRefusedNeverReplaced) {
  TempDir tmp;
  std::string error;
  std::vector<char> noise(GS_LEDGER_FILE_BYTES);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>(i * 7919 + 13);
  for (const size_t size : {noise.size(), size_t{5000}, size_t{3}}) {
    {
      const int fd = open(tmp.ledger().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ASSERT_EQ(write(fd, noise.data(), size), static_cast<ssize_t>(size));
      close(fd);
    }
    EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("a", 1, 2), &error), nullptr) << size;
    EXPECT_NE(error.find(tmp.ledger()), std::string::npos) << error;
    struct stat st {};
    ASSERT_EQ(stat(tmp.ledger().c_str(), &st), 0);
    EXPECT_EQ(static_cast<size_t>(st.st_size), size) << "left as it was";
  }
}

}  // namespace
}  // namespace gpushare::quota
