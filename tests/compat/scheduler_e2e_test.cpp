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
