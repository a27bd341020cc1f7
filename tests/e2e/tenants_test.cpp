// SPDX-License-Identifier: Apache-2.0
// Co-tenants through the whole library: several processes of different tenants on one (fake)
// GPU, sharing one ledger and one physical memory, with request/limit semantics.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kGiB = 1ll << 30;

std::vector<std::string> Tenant(const std::string& name, const std::string& request,
                                const std::string& limit, std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + name, "GPUSHARE_MEM_REQUEST=" + request,
                               "GPUSHARE_MEM_LIMIT=" + limit, "GPUSHARE_FAKE_DEVICES=16Gi"});
  return e2e::PreloadEnv(extra);
}

e2e::ClientResult Fill(const std::vector<std::string>& env) {
  return e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, env);
}

e2e::Spawned Hold(const std::vector<std::string>& env, long long bytes) {
  return e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(bytes)}, env);
}

TEST(Tenants, EachSeesItsOwnQuota) {
  auto a = Hold(Tenant("a", "2Gi", "6Gi"), kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), kGiB);
  const auto b = Fill(Tenant("b", "4Gi", "8Gi"));
  EXPECT_EQ(b.Int("start_total"), 8 * kGiB) << b.err;
  EXPECT_EQ(e2e::WaitForValue(a, "start_total"), 6 * kGiB);
  e2e::KillProgram(a);
}

TEST(Tenants, BurstsShareThePoolAndAKilledTenantGivesItsShareBack) {
  // 16 GiB: requests 4 + 4, so 8 GiB of burst pool. A takes all of it (12 GiB).
  auto a = Hold(Tenant("a", "4Gi", "12Gi"), 12 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), 12 * kGiB);
  const auto b = Fill(Tenant("b", "4Gi", "12Gi"));
  EXPECT_EQ(b.Int("filled_bytes"), 4 * kGiB) << "B's request is guaranteed, but no burst is left\n" << b.err;
  EXPECT_EQ(b.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  e2e::KillProgram(a);
  const auto after = Fill(Tenant("b", "4Gi", "12Gi"));
  EXPECT_EQ(after.Int("filled_bytes"), 12 * kGiB) << "A's memory came back to the pool\n" << after.err;
}

TEST(Tenants, ProcessesOfOneTenantShareItsQuota) {
  auto first = Hold(Tenant("shared", "4Gi", "4Gi"), 3 * kGiB);
  ASSERT_EQ(e2e::WaitForValue(first, "held"), 3 * kGiB);
  const auto second = Fill(Tenant("shared", "4Gi", "4Gi"));
  EXPECT_EQ(second.Int("filled_bytes"), kGiB) << second.err;
  EXPECT_EQ(second.Int("start_free"), kGiB);
  e2e::KillProgram(first);
}

TEST(Tenants, ARequestThatCannotBeGuaranteedIsRefusedAtStart) {
  auto a = Hold(Tenant("a", "12Gi", "12Gi"), kGiB);
  ASSERT_EQ(e2e::WaitForValue(a, "held"), kGiB);
  const auto b = Fill(Tenant("b", "8Gi", "8Gi"));
  EXPECT_EQ(b.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << b.out;
  EXPECT_NE(b.err.find("gpushare: device 0"), std::string::npos) << b.err;
  const auto best_effort = Fill(Tenant("c", "8Gi", "8Gi", {"GPUSHARE_BEST_EFFORT=true"}));
  EXPECT_EQ(best_effort.Int("init_rc"), CUDA_SUCCESS) << best_effort.err;
  EXPECT_EQ(best_effort.Int("filled_bytes"), 4 * kGiB) << "request 0: only the free burst pool";
  e2e::KillProgram(a);
}

TEST(Tenants, EachDeviceHasItsOwnLedgerAndQuota) {
  const std::string dir = e2e::ScratchDir() + "/multi";
  const auto r = e2e::RunProgram(
      {GS_CLIENT_PATH, "link", "devices"},
      e2e::PreloadEnv({"GPUSHARE_FAKE_DEVICES=16Gi,8Gi", "GPUSHARE_MEM_LIMIT=1Gi",
                       "GPUSHARE_MEM_LIMIT_1=2Gi", "GPUSHARE_LEDGER_DIR=" + dir}));
  EXPECT_EQ(r.Int("dev0_total"), kGiB) << r.err;
  EXPECT_EQ(r.Int("dev0_filled"), kGiB);
  EXPECT_EQ(r.Int("dev1_total"), 2 * kGiB);
  EXPECT_EQ(r.Int("dev1_filled"), 2 * kGiB);
  std::ifstream dev0(dir + "/gpushare-6773666b000000000000000000000000.ledger");
  std::ifstream dev1(dir + "/gpushare-6773666b000000000000000000000001.ledger");
  EXPECT_TRUE(dev0.good() && dev1.good()) << "one ledger per GPU, keyed by UUID";
}

TEST(Tenants, AnUnusableLedgerDirectoryIsRefusedByName) {
  const auto r = Fill(Tenant("a", "1Gi", "1Gi", {"GPUSHARE_LEDGER_DIR=/proc/gpushare-cannot-be-here"}));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << r.out;
  EXPECT_NE(r.err.find("/proc/gpushare-cannot-be-here"), std::string::npos) << r.err;
  EXPECT_EQ(r.Int("filled_bytes"), -1);
}

TEST(Tenants, ACorruptedLedgerIsRefusedByName) {
  const std::string dir = e2e::ScratchDir() + "/corrupt";
  // Learn the ledger's path from a first run, then overwrite it with garbage.
  const auto first = Fill(Tenant("a", "1Gi", "1Gi", {"GPUSHARE_LEDGER_DIR=" + dir}));
  ASSERT_EQ(first.Int("init_rc"), CUDA_SUCCESS) << first.err;
  const std::string path = dir + "/gpushare-6773666b000000000000000000000000.ledger";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << path;
    f.write("NOTALEDGER", 10);
  }
  const auto r = Fill(Tenant("a", "1Gi", "1Gi", {"GPUSHARE_LEDGER_DIR=" + dir}));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << r.out;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

}  // namespace
