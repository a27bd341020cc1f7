// SPDX-License-Identifier: Apache-2.0
// Real tenants (the library in real programs on the fake driver, with their watcher threads)
// while what the ledger directory holds is truncated, zeroed, removed or replaced under them:
// they live on, keep what they hold, grant nothing they cannot account for, say so once, and
// re-join the ledger at the path so that newcomers and gpushare-smi see the whole GPU.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "quota/ledger.h"
#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kGiB = 1ll << 30;

std::vector<std::string> Tenant(const std::string& name, const std::string& request, const std::string& limit) {
  return e2e::PreloadEnv({"GPUSHARE_TENANT=" + name, "GPUSHARE_MEM_REQUEST=" + request, "GPUSHARE_MEM_LIMIT=" + limit,
                          "GPUSHARE_FAKE_DEVICES=16Gi"});
}

std::string LedgerDir() { return e2e::ScratchDir() + "/ledger"; }

// The one ledger of the one fake GPU.
std::string TheLedger() {
  const std::vector<std::string> all = gpushare::quota::ListLedgers(LedgerDir());
  return all.size() == 1 ? all[0] : "";
}

// Holds `hold` bytes; Grow() asks it for up to `grow` more.
e2e::Spawned Holder(const std::vector<std::string>& env, long long hold, long long grow = 0) {
  return e2e::SpawnProgram({GS_CLIENT_PATH, "link", "grow", std::to_string(hold), std::to_string(grow)}, env);
}

// Only ever the program itself: once reaped its pid is -1, and kill(-1) signals every process.
void Command(const e2e::Spawned& s) {
  if (s.pid > 0) kill(s.pid, SIGUSR1);
}

long long Grow(const e2e::Spawned& s, int round) {
  if (s.pid <= 0) return -1;
  Command(s);
  return e2e::WaitForValue(s, "grown" + std::to_string(round), 10);
}

// -1 while it runs, else how it ended (128 + signal when killed).
int Ended(e2e::Spawned& s) {
  if (s.pid <= 0) return 0;
  int status = 0;
  if (waitpid(s.pid, &status, WNOHANG) != s.pid) return -1;
  s.pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Waits (up to 3 s) until the ledger at the path shows `tenant` holding `bytes` in a live process.
bool WaitForTenant(const std::string& tenant, long long bytes) {
  for (int i = 0; i < 300; ++i) {
    gpushare::quota::LedgerSnapshot snap;
    std::string error;
    const std::string ledger = TheLedger();
    if (!ledger.empty() && gpushare::quota::ReadLedger(ledger, &snap, &error)) {
      for (const auto& t : snap.tenants) {
        bool alive = false;
        for (const auto& p : t.processes) alive = alive || p.alive;
        if (t.name == tenant && static_cast<long long>(t.used_bytes) == bytes && alive) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

e2e::ClientResult Smi() { return e2e::RunProgram({GS_SMI_PATH, "--ledger-dir", LedgerDir()}, {}, 10); }

void TenantsLiveThroughTruncationTo(off_t size) {
  // a bursts to its limit; b is idle: it only joined (its watcher still touches the mapping).
  auto a = Holder(Tenant("a", "4Gi", "8Gi"), 8 * kGiB, 8 * kGiB);
  auto b = Holder(Tenant("b", "4Gi", "4Gi"), 0, 4 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 8 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(b, "held"), 0);
  const std::string ledger = TheLedger();
  ASSERT_FALSE(ledger.empty());
  ASSERT_EQ(truncate(ledger.c_str(), size), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Ended(a), -1) << "the bursting tenant died (SIGBUS is " << 128 + SIGBUS << ")";
  EXPECT_EQ(Ended(b), -1) << "the idle tenant died (SIGBUS is " << 128 + SIGBUS << ")";
  ASSERT_TRUE(WaitForTenant("a", 8 * kGiB)) << "the ledger at the path was not healed";
  EXPECT_EQ(Count(ReadFile(a.err_path), "was truncated"), 1) << ReadFile(a.err_path);
  EXPECT_EQ(Count(ReadFile(a.err_path), "re-joined"), 1) << ReadFile(a.err_path);
  EXPECT_EQ(Grow(a, 1), 0) << "a is at its limit";
  EXPECT_EQ(Grow(b, 1), 4 * kGiB) << "b's request is still held back for it";
  // 16 - requests 4 + 4 - a's burst 4: a newcomer's 6 GiB cannot be guaranteed.
  const auto c = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, Tenant("c", "6Gi", "6Gi"));
  EXPECT_EQ(c.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << c.err;
  const auto smi = Smi();
  EXPECT_EQ(smi.exit_code, 0) << smi.err;
  EXPECT_NE(smi.out.find("re-joined (truncated)"), std::string::npos) << smi.out;
  e2e::KillProgram(a);
  e2e::KillProgram(b);
}

TEST(LedgerDamage, TenantsLiveThroughTheirLedgerTruncatedToNothing) { TenantsLiveThroughTruncationTo(0); }
TEST(LedgerDamage, TenantsLiveThroughTheirLedgerTruncatedToItsHeader) { TenantsLiveThroughTruncationTo(4096); }

TEST(LedgerDamage, AZeroedLedgerGrantsATenantNothingPastItsLimit) {
  auto a = Holder(Tenant("a", "4Gi", "4Gi"), 3 * kGiB, 4 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 3 * kGiB);
  const std::string ledger = TheLedger();
  const std::vector<char> zeros(GS_LEDGER_FILE_BYTES, 0);
  const int fd = open(ledger.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, zeros.data(), zeros.size(), 0), static_cast<ssize_t>(zeros.size()));
  close(fd);
  // It held 3 GiB of 4; the zeroed ledger said 0, and 4 GiB more were granted. Now nothing until
  // it re-joined (within a watcher tick), its limit after.
  const long long first = Grow(a, 1);
  EXPECT_LE(first, kGiB);
  ASSERT_TRUE(WaitForTenant("a", 3 * kGiB + first));
  EXPECT_EQ(first + Grow(a, 2), kGiB);
  EXPECT_EQ(Ended(a), -1);
  ASSERT_TRUE(WaitForTenant("a", 4 * kGiB));
  EXPECT_EQ(Count(ReadFile(a.err_path), "was overwritten"), 1) << ReadFile(a.err_path);
  e2e::KillProgram(a);
}

TEST(LedgerDamage, ARemovedLedgerIsRejoinedSoANewcomerSeesTheMemoryHeld) {
  auto a = Holder(Tenant("a", "4Gi", "12Gi"), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  ASSERT_EQ(unlink(TheLedger().c_str()), 0);
  EXPECT_TRUE(WaitForTenant("a", 12 * kGiB)) << "a did not re-join";
  // 16 - a's request 4 - its burst 8 = 4 GiB: b's 8 GiB cannot be guaranteed (on an empty
  // ledger it was).
  const auto b = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, Tenant("b", "8Gi", "8Gi"));
  EXPECT_EQ(b.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << b.err;
  const auto smi = Smi();
  EXPECT_NE(smi.out.find("re-joined (removed)"), std::string::npos) << smi.out;
  EXPECT_NE(smi.out.find("1 process(es) re-joined this ledger"), std::string::npos) << smi.out;
  EXPECT_EQ(Count(ReadFile(a.err_path), "was removed"), 1) << ReadFile(a.err_path);
  e2e::KillProgram(a);
}

TEST(LedgerDamage, ALedgerReplacedByACopyIsRejoinedAndCountedOnce) {
  auto a = Holder(Tenant("a", "4Gi", "12Gi"), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  const std::string ledger = TheLedger();
  std::filesystem::copy_file(ledger, ledger + ".copy");
  ASSERT_EQ(rename((ledger + ".copy").c_str(), ledger.c_str()), 0);
  // In the copy, a's slot has no live owner: a newcomer reaped it and saw an empty GPU.
  EXPECT_TRUE(WaitForTenant("a", 12 * kGiB)) << "a did not re-join";
  const auto b = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, Tenant("b", "8Gi", "8Gi"));
  EXPECT_EQ(b.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << b.err;
  gpushare::quota::LedgerSnapshot snap;
  std::string error;
  ASSERT_TRUE(gpushare::quota::ReadLedger(ledger, &snap, &error)) << error;
  EXPECT_EQ(snap.sum_used_bytes, static_cast<uint64_t>(12 * kGiB)) << "counted once";
  e2e::KillProgram(a);
}

TEST(LedgerDamage, ALinkToACopyInPlaceOfTheLedgerSplitsNothing) {
  auto a = Holder(Tenant("a", "4Gi", "12Gi"), 8 * kGiB, 4 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 8 * kGiB);
  const std::string ledger = TheLedger();
  const std::string copy = e2e::ScratchDir() + "/copy.ledger";
  std::filesystem::copy_file(ledger, copy);
  ASSERT_EQ(unlink(ledger.c_str()), 0);
  ASSERT_EQ(symlink(copy.c_str(), ledger.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // a cannot re-join through a link: it keeps its 8 GiB and is granted nothing more.
  EXPECT_EQ(Grow(a, 1), 0);
  EXPECT_NE(ReadFile(a.err_path).find("was replaced"), std::string::npos) << ReadFile(a.err_path);
  // Nor can a newcomer, who saw the copy's empty GPU through the link.
  const auto b = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, Tenant("b", "8Gi", "8Gi"));
  EXPECT_EQ(b.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << b.err;
  EXPECT_NE(b.err.find("symbolic link"), std::string::npos) << b.err;
  const auto smi = Smi();
  EXPECT_EQ(smi.exit_code, 1);
  EXPECT_NE(smi.err.find(ledger), std::string::npos) << smi.err;
  EXPECT_NE(smi.err.find("symbolic link"), std::string::npos) << smi.err;
  // The operator removes the link: a re-joins within a second or so.
  ASSERT_EQ(unlink(ledger.c_str()), 0);
  EXPECT_TRUE(WaitForTenant("a", 8 * kGiB));
  e2e::KillProgram(a);
}

// SIGBUS handlers of the program itself, installed before the library's (chained behind it) or
// after (the watcher puts the library's back in front): the ledger's truncation kills nothing,
// and the program's own faults still reach its handler.
void OwnSigbusHandler(const char* when) {
  auto a = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "sigbus", when}, Tenant("a", "1Gi", "1Gi"));
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 64ll << 20);
  Command(a);
  EXPECT_EQ(e2e::WaitForValue(a, "own_fault1", 10), 1) << "its own handler, before anything happened";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few watcher ticks
  ASSERT_EQ(truncate(TheLedger().c_str(), 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Ended(a), -1) << ReadFile(a.err_path);
  Command(a);
  EXPECT_EQ(e2e::WaitForValue(a, "own_fault2", 10), 1) << "its own handler, after" << ReadFile(a.err_path);
  EXPECT_EQ(Ended(a), -1);
  EXPECT_TRUE(WaitForTenant("a", 64ll << 20));
  e2e::KillProgram(a);
}

TEST(LedgerDamage, AProgramsSigbusHandlerInstalledBeforeTheLibrarysStillGetsItsFaults) { OwnSigbusHandler("before"); }
TEST(LedgerDamage, AProgramsSigbusHandlerInstalledAfterTheLibrarysStillGetsItsFaults) { OwnSigbusHandler("after"); }

}  // namespace
