// SPDX-License-Identifier: Apache-2.0
// HAMi's values through the whole library and through gpushare-run, against the fake driver: a
// limit above the device runs with the device's memory (one info line says so), 0 leaves the
// device untouched, and the spellings HAMi-core takes are taken by both.
#include <dirent.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kGiB = 1ll << 30;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A ledger directory of the test's own, so what it holds is this test's doing.
std::string OwnLedgerDir(const std::string& name) { return e2e::ScratchDir() + "/" + name; }

size_t FilesIn(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  size_t n = 0;
  while (const dirent* e = readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  closedir(d);
  return n;
}

TEST(SchedulerLimits, AboveTheDeviceRunsWithTheDevicesMemoryAndSaysSoOnce) {
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 e2e::PreloadEnv({"GPUSHARE_FAKE_DEVICES=16Gi", "CUDA_DEVICE_MEMORY_LIMIT=200g",
                                                  "GPUSHARE_LOG_LEVEL=info"}));
  ASSERT_EQ(r.Int("init_rc"), CUDA_SUCCESS) << r.err;
  EXPECT_EQ(r.Int("start_total"), 16 * kGiB) << r.err;
  EXPECT_EQ(r.Int("filled_bytes"), 16 * kGiB);
  EXPECT_EQ(r.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(Count(r.err, "CUDA_DEVICE_MEMORY_LIMIT=\"200g\" (214748364800 bytes) is above this device's 17179869184 bytes"),
            1u)
      << r.err;
}

TEST(SchedulerLimits, ZeroLeavesTheDeviceUntouched) {
  const std::string ledger = OwnLedgerDir("zero-ledger");
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "gpa", "devices"},
                                 e2e::PreloadEnv({"CUDA_DEVICE_MEMORY_LIMIT=0", "CUDA_DEVICE_MEMORY_LIMIT_1=0",
                                                  "GPUSHARE_LEDGER_DIR=" + ledger}));
  EXPECT_EQ(r.Int("dev0_total"), 16 * kGiB) << r.err;
  EXPECT_EQ(r.Int("dev0_filled"), 16 * kGiB);
  EXPECT_EQ(r.Int("dev1_total"), 8 * kGiB);
  EXPECT_EQ(r.Int("dev1_filled"), 8 * kGiB);
  EXPECT_EQ(FilesIn(ledger), 0u) << "passed through: no ledger joined";
}

TEST(SchedulerLimits, ADevicesZeroFallsBackToTheGlobalLimit) {
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "gpa", "devices"},
                                 e2e::PreloadEnv({"CUDA_DEVICE_MEMORY_LIMIT=2Gi", "CUDA_DEVICE_MEMORY_LIMIT_0=0"}));
  EXPECT_EQ(r.Int("dev0_total"), 2 * kGiB) << r.err;
  EXPECT_EQ(r.Int("dev0_filled"), 2 * kGiB);
  EXPECT_EQ(r.Int("dev1_total"), 2 * kGiB);
}

TEST(SchedulerLimits, HamiSpellingsLimitTheProgram) {
  for (const char* value : {"1Gi", "1GiB", "1gb", " 1G\n", "0.5 G", "1048576KiB"}) {
    const auto r = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                   e2e::PreloadEnv({std::string("CUDA_DEVICE_MEMORY_LIMIT=") + value}));
    const long long want = std::string(value) == "0.5 G" ? kGiB / 2 : kGiB;
    EXPECT_EQ(r.Int("start_total"), want) << value << "\n" << r.err;
    EXPECT_EQ(r.Int("filled_bytes"), want) << value;
  }
}

// gpushare-run checks the whole environment with the library's own parser.
e2e::ClientResult RunTool(std::vector<std::string> env) {
  env.insert(env.begin(), "unset:LD_PRELOAD");
  return e2e::RunProgram({GS_RUN_PATH, "--library", GS_PRELOAD_PATH, "--print-env", "--", "true"}, e2e::PreloadEnv(env));
}

TEST(SchedulerLimits, GpushareRunAgrees) {
  for (const char* good : {"CUDA_DEVICE_MEMORY_LIMIT=4Gi", "CUDA_DEVICE_MEMORY_LIMIT=1.5g", "CUDA_DEVICE_SM_LIMIT=50%",
                           "CUDA_DEVICE_SM_LIMIT=50.5", "GPU_CORE_UTILIZATION_POLICY=force"}) {
    const auto r = RunTool({good});
    EXPECT_EQ(r.exit_code, 0) << good << "\n" << r.err;
  }
  const auto zero = RunTool({"CUDA_DEVICE_MEMORY_LIMIT=0"});
  EXPECT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_NE(zero.err.find("note: CUDA_DEVICE_MEMORY_LIMIT=\"0\" (HAMi) is no limit"), std::string::npos) << zero.err;
  for (const char* bad : {"CUDA_DEVICE_MEMORY_LIMIT=0x10G", "CUDA_DEVICE_MEMORY_LIMIT=-1", "CUDA_DEVICE_MEMORY_LIMIT=4GQ",
                          "CUDA_DEVICE_SM_LIMIT=50KiB"}) {
    const auto r = RunTool({bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    const std::string name(bad, std::string(bad).find('='));
    EXPECT_NE(r.err.find("gpushare-run: " + name + "=\""), std::string::npos) << r.err;
  }
}

}  // namespace

namespace {

constexpr long long kMiB = 1ll << 20;
const char* kCache = "CUDA_DEVICE_MEMORY_SHARED_CACHE=/usr/local/vgpu/vgpu/3f1c2b7a-5d4e-4c3b-9a8f-0e1d2c3b4a59.cache";

// HAMi-core's own race test: two processes of one container (one cache file) share one limit.
TEST(SchedulerTenants, ProcessesOfOneHamiContainerShareItsLimit) {
  const auto env = e2e::PreloadEnv({"CUDA_DEVICE_MEMORY_LIMIT_0=1024m", kCache});
  auto first = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(640 * kMiB)}, env);
  ASSERT_EQ(e2e::WaitForValue(first, "held"), 640 * kMiB);
  const auto second = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, env);
  EXPECT_EQ(second.Int("start_total"), 1024 * kMiB) << second.err;
  EXPECT_EQ(second.Int("filled_bytes"), 384 * kMiB) << "one tenant: what the first holds is not the second's";
  e2e::KillProgram(first);
}

// With HAMi's memory over-commit (CUDA_OVERSUBSCRIBE=true) the limits on a GPU add up to more
// than it has: a later pod runs on bursts rather than being refused at start.
TEST(SchedulerTenants, OversubscribedHamiPodsStartBestEffort) {
  auto pod = [](const char* uuid, bool oversubscribe) {
    std::vector<std::string> env = {"CUDA_DEVICE_MEMORY_LIMIT_0=10240m", "GPUSHARE_FAKE_DEVICES=16Gi",
                                    std::string("CUDA_DEVICE_MEMORY_SHARED_CACHE=/usr/local/vgpu/vgpu/") + uuid + ".cache"};
    if (oversubscribe) env.push_back("CUDA_OVERSUBSCRIBE=true");
    return e2e::PreloadEnv(env);
  };
  auto first = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(kGiB)}, pod("aaaa", true));
  ASSERT_EQ(e2e::WaitForValue(first, "held"), kGiB);
  const auto refused = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, pod("bbbb", false));
  EXPECT_EQ(refused.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << "without over-commit, a limit is a guarantee";
  const auto burst = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"}, pod("cccc", true));
  EXPECT_EQ(burst.Int("init_rc"), CUDA_SUCCESS) << burst.err;
  EXPECT_EQ(burst.Int("filled_bytes"), 6 * kGiB) << "the 6 GiB nobody is guaranteed\n" << burst.err;
  e2e::KillProgram(first);
}

}  // namespace
