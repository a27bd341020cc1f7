// SPDX-License-Identifier: Apache-2.0
// Collision resolvers through the whole library: processes of different tenants on one fake
// GPU whose bursts collide, under wait and priority.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kGiB = 1ll << 30;
using Clock = std::chrono::steady_clock;

// 16 GiB GPU; each tenant 4Gi request, 12Gi limit: 8 GiB of burst pool between them.
std::vector<std::string> Tenant(const std::string& name, std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + name, "GPUSHARE_MEM_REQUEST=4Gi",
                               "GPUSHARE_MEM_LIMIT=12Gi", "GPUSHARE_FAKE_DEVICES=16Gi"});
  return e2e::PreloadEnv(extra);
}

e2e::Spawned Hold(const std::vector<std::string>& env, long long bytes) {
  return e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(bytes)}, env);
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST(Resolvers, WaitResumesWhenTheCoTenantFrees) {
  auto a = Hold(Tenant("a", {"GPUSHARE_RESOLVER=wait"}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  auto b = Hold(Tenant("b", {"GPUSHARE_RESOLVER=wait", "GPUSHARE_WAIT_MODE=always",
                             "GPUSHARE_WAIT_TIMEOUT=20s"}), 8 * kGiB);
  EXPECT_EQ(e2e::WaitForValue(b, "held", 1), -1) << "b waits: its burst does not fit";
  e2e::KillProgram(a);
  EXPECT_EQ(e2e::WaitForValue(b, "held", 10), 8 * kGiB) << "b resumed once a's memory was released";
  e2e::KillProgram(b);
}

TEST(Resolvers, WaitGivesUpAfterTheTimeout) {
  auto a = Hold(Tenant("a", {}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  const auto start = Clock::now();
  const auto b = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 Tenant("b", {"GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=500ms"}));
  const double elapsed = SecondsSince(start);
  EXPECT_EQ(b.Int("filled_bytes"), 4 * kGiB) << b.err;
  EXPECT_EQ(b.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_GE(elapsed, 0.5);
  EXPECT_LT(elapsed, 5.0);
  e2e::KillProgram(a);
}

TEST(Resolvers, RetryModeRefusesAtOnceThenWaitsOnTheRetry) {
  auto a = Hold(Tenant("a", {}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  auto b = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "retry"}, Tenant("b", {"GPUSHARE_WAIT_TIMEOUT=20s"}));
  EXPECT_EQ(e2e::WaitForValue(b, "first_refusal_after", 10), 4 * kGiB) << "the first refusal is immediate";
  EXPECT_EQ(e2e::WaitForValue(b, "retry_rc", 1), -1) << "the retry waits";
  e2e::KillProgram(a);
  EXPECT_EQ(e2e::WaitForValue(b, "retry_rc", 10), CUDA_SUCCESS);
  e2e::KillProgram(b);
}

TEST(Resolvers, NoneRefusesAtOnce) {
  auto a = Hold(Tenant("a", {}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  const auto start = Clock::now();
  const auto b = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 Tenant("b", {"GPUSHARE_RESOLVER=none", "GPUSHARE_WAIT_MODE=always"}));
  EXPECT_EQ(b.Int("filled_bytes"), 4 * kGiB);
  EXPECT_LT(SecondsSince(start), 3.0);
  e2e::KillProgram(a);
}

TEST(Resolvers, PriorityTerminatesTheLowerPriorityTenant) {
  auto low = Hold(Tenant("low", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_PRIORITY=0"}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(low, "held"), 12 * kGiB);
  auto high = Hold(Tenant("high", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_PRIORITY=10",
                                   "GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s"}),
                   10 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(low, 10), 128 + SIGTERM) << "the victim's own library sent SIGTERM";
  EXPECT_EQ(e2e::WaitForValue(high, "held", 10), 10 * kGiB) << "then the winner's allocation proceeded";
  e2e::KillProgram(high);
  e2e::KillProgram(low);
}

TEST(Resolvers, PriorityTakesOnlyBurstsNeverAGuarantee) {
  // low (priority 0) stays within its request; mid (priority 5) bursts. high (priority 10)
  // collides: only mid's burst may be taken, though low has the lower priority.
  auto low = Hold(Tenant("low", {"GPUSHARE_PRIORITY=0"}), 4 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(low, "held"), 4 * kGiB);
  auto mid = Hold(Tenant("mid", {"GPUSHARE_PRIORITY=5"}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(mid, "held"), 12 * kGiB);
  auto high = Hold(Tenant("high", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_PRIORITY=10",
                                   "GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s",
                                   "GPUSHARE_MEM_REQUEST=0", "GPUSHARE_BEST_EFFORT=true"}),
                   4 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(mid, 10), 128 + SIGTERM) << "the bursting tenant is the victim";
  EXPECT_EQ(e2e::WaitForValue(high, "held", 10), 4 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(low, 1), -1) << "a tenant within its request is never terminated";
  e2e::KillProgram(high);
  e2e::KillProgram(mid);
  e2e::KillProgram(low);
}

// The ledger as gpushare-smi --json shows it.
nlohmann::json Ledger() {
  const auto smi = e2e::RunProgram({GS_SMI_PATH, "--json", "--ledger-dir", e2e::ScratchDir() + "/ledger"}, {});
  const nlohmann::json all = nlohmann::json::parse(smi.out);
  return all["ledgers"].at(0);
}

TEST(Resolvers, AVictimIgnoringSigtermIsKilledAfterItsGraceAndTheTerminationIsRecorded) {
  auto low = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(12 * kGiB)},
                               Tenant("stubborn", {"GPUSHARE_KILL_GRACE=400ms", "GS_CLIENT_IGNORE_SIGTERM=1"}));
  ASSERT_EQ(e2e::WaitForValue(low, "held"), 12 * kGiB);
  const auto start = Clock::now();
  auto high = Hold(Tenant("high", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_PRIORITY=10",
                                   "GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s"}),
                   10 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(low, 10), 128 + SIGKILL) << "SIGTERM was ignored: SIGKILL after the grace";
  EXPECT_GE(SecondsSince(start), 0.4);
  EXPECT_EQ(e2e::WaitForValue(high, "held", 10), 10 * kGiB);
  const nlohmann::json ledger = Ledger();
  ASSERT_EQ(ledger["recent_terminations"].size(), 1u) << ledger.dump();
  const auto& record = ledger["recent_terminations"][0];
  EXPECT_EQ(record["victim"], "stubborn");
  EXPECT_EQ(record["requester"], "high");
  EXPECT_EQ(record["reason"], "lower priority");
  EXPECT_EQ(record["victim_used_bytes"], 12 * kGiB);
  EXPECT_EQ(record["victim_burst_bytes"], 8 * kGiB);
  e2e::KillProgram(high);
}

TEST(Resolvers, PriorityTakesFromAnIdleTenantOfEqualPriority) {
  auto idle = Hold(Tenant("idle", {}), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(idle, "held"), 12 * kGiB);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // no launch, copy or allocation since
  auto busy = Hold(Tenant("busy", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_IDLE_TIMEOUT=300ms",
                                   "GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s"}),
                   10 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(idle, 10), 128 + SIGTERM);
  EXPECT_EQ(e2e::WaitForValue(busy, "held", 10), 10 * kGiB);
  const nlohmann::json ledger = Ledger();
  ASSERT_EQ(ledger["recent_terminations"].size(), 1u);
  EXPECT_EQ(ledger["recent_terminations"][0]["reason"], "idle");
  EXPECT_GE(ledger["recent_terminations"][0]["victim_idle_ns"].get<uint64_t>(), 300'000'000u);
  e2e::KillProgram(busy);
}

// A process without gpushare holds memory the ledger cannot see; the driver, not the ledger,
// runs out. The gap is published to the ledger and the resolvers handle it like any collision.
e2e::Spawned Outsider(long long bytes) {
  return e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(bytes)},
                           e2e::PreloadEnv({"unset:LD_PRELOAD", "GPUSHARE_FAKE_DEVICES=16Gi"}));
}

TEST(Resolvers, MemoryHiddenFromTheLedgerIsWaitedFor) {
  auto outsider = Outsider(8 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(outsider, "held"), 8 * kGiB);
  auto b = Hold(Tenant("b", {"GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s"}), 12 * kGiB);
  EXPECT_EQ(e2e::WaitForValue(b, "held", 1), -1) << "the ledger would grant; the driver has 8 GiB";
  e2e::KillProgram(outsider);
  EXPECT_EQ(e2e::WaitForValue(b, "held", 10), 12 * kGiB);
  e2e::KillProgram(b);
}

TEST(Resolvers, RetryModeWaitsOutHiddenMemoryOnTheRetry) {
  // As PyTorch meets it: the driver's refusal comes back at once, the allocator frees its cache
  // and retries, and the retry waits (re-measuring the hidden memory) until it fits.
  auto outsider = Outsider(8 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(outsider, "held"), 8 * kGiB);
  auto b = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "retry"}, Tenant("b", {"GPUSHARE_WAIT_TIMEOUT=20s"}));
  EXPECT_EQ(e2e::WaitForValue(b, "first_refusal_after", 10), 8 * kGiB);
  EXPECT_EQ(e2e::WaitForValue(b, "retry_rc", 2), -1) << "the retry waits across several hidden-memory periods";
  e2e::KillProgram(outsider);
  EXPECT_EQ(e2e::WaitForValue(b, "retry_rc", 10), CUDA_SUCCESS);
  e2e::KillProgram(b);
}

TEST(Resolvers, PriorityTakesFromVictimsWhenHiddenMemoryFillsTheGpu) {
  auto outsider = Outsider(4 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(outsider, "held"), 4 * kGiB);
  auto low = Hold(Tenant("low", {}), 8 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(low, "held"), 8 * kGiB);
  // The ledger has 4 GiB of burst for high; the GPU has 4 GiB in all.
  auto high = Hold(Tenant("high", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_PRIORITY=10",
                                   "GPUSHARE_WAIT_MODE=always", "GPUSHARE_WAIT_TIMEOUT=20s"}),
                   8 * kGiB);
  EXPECT_EQ(e2e::WaitForExit(low, 10), 128 + SIGTERM);
  EXPECT_EQ(e2e::WaitForValue(high, "held", 10), 8 * kGiB);
  e2e::KillProgram(high);
  e2e::KillProgram(outsider);
}

}  // namespace
