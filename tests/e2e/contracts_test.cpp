// SPDX-License-Identifier: Apache-2.0
// The schedulers' variables through the whole library, against the fake driver: each one limits
// what the program sees and gets, GPUSHARE_ wins over them, and what cannot be resolved on the
// device refuses CUDA, naming the variable.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kMiB = 1ll << 20;
constexpr long long kGiB = 1ll << 30;

e2e::ClientResult Devices(std::vector<std::string> env) {
  env.insert(env.begin(), "GPUSHARE_FAKE_DEVICES=16Gi,8Gi");
  return e2e::RunProgram({GS_CLIENT_PATH, "gpa", "devices"}, e2e::PreloadEnv(env));
}

TEST(Contracts, HamiPerDeviceLimits) {
  const auto r = Devices({"CUDA_DEVICE_MEMORY_LIMIT_0=1024m", "CUDA_DEVICE_MEMORY_LIMIT_1=2g"});
  EXPECT_EQ(r.Int("dev0_total"), kGiB) << r.err;
  EXPECT_EQ(r.Int("dev0_filled"), kGiB);
  EXPECT_EQ(r.Int("dev1_total"), 2 * kGiB);
  EXPECT_EQ(r.Int("dev1_filled"), 2 * kGiB);
}

TEST(Contracts, KaiPortionOfEachDevice) {
  const auto r = Devices({"GPU_PORTION=0.25"});
  EXPECT_EQ(r.Int("dev0_total"), 4 * kGiB) << r.err;
  EXPECT_EQ(r.Int("dev0_filled"), 4 * kGiB);
  EXPECT_EQ(r.Int("dev1_total"), 2 * kGiB) << "a quarter of the 8 GiB device";
  EXPECT_EQ(r.Int("dev1_filled"), 2 * kGiB);
}

TEST(Contracts, AliyunUnitInferredFromTheDevice) {
  const auto gib = Devices({"GPUSHARE_FAKE_DEVICES=16Gi", "ALIYUN_COM_GPU_MEM_CONTAINER=3", "ALIYUN_COM_GPU_MEM_DEV=16"});
  EXPECT_EQ(gib.Int("dev0_total"), 3 * kGiB) << gib.err;
  const auto mib = Devices({"GPUSHARE_FAKE_DEVICES=16Gi", "ALIYUN_COM_GPU_MEM_CONTAINER=3072", "ALIYUN_COM_GPU_MEM_DEV=16384"});
  EXPECT_EQ(mib.Int("dev0_total"), 3072 * kMiB) << mib.err;
}

TEST(Contracts, AliyunUnitThatFitsNoDeviceRefusesCudaByName) {
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 e2e::PreloadEnv({"ALIYUN_COM_GPU_MEM_CONTAINER=3", "ALIYUN_COM_GPU_MEM_DEV=100"}));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << r.out;
  EXPECT_NE(r.err.find("ALIYUN_COM_GPU_MEM_DEV=100"), std::string::npos) << r.err;
  EXPECT_EQ(r.Int("filled_bytes"), -1);
}

TEST(Contracts, GpushareWinsOverTheScheduler) {
  const auto r = Devices({"GPUSHARE_MEM_LIMIT=512Mi", "CUDA_DEVICE_MEMORY_LIMIT_0=4g", "GPU_PORTION=0.5"});
  EXPECT_EQ(r.Int("dev0_total"), 512 * kMiB) << r.err;
  EXPECT_EQ(r.Int("dev1_total"), 512 * kMiB);
}

TEST(Contracts, ABadSchedulerValueRefusesCudaByName) {
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 e2e::PreloadEnv({"CUDA_DEVICE_MEMORY_LIMIT=4GQ"}));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << r.out;
  EXPECT_NE(r.err.find("CUDA_DEVICE_MEMORY_LIMIT=\"4GQ\" is not valid"), std::string::npos) << r.err;
  EXPECT_EQ(r.Int("filled_bytes"), -1) << "never unlimited";
}

TEST(Contracts, HamiSmLimitGivesTheTenantItsComputeShare) {
  const auto r = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                 e2e::PreloadEnv({"GPUSHARE_MEM_LIMIT=1Gi", "CUDA_DEVICE_SM_LIMIT=25", "GPUSHARE_LOG_LEVEL=info"}));
  EXPECT_EQ(r.Int("init_rc"), CUDA_SUCCESS) << r.err;
  EXPECT_NE(r.err.find("CUDA_DEVICE_SM_LIMIT (HAMi) gives the compute"), std::string::npos) << r.err;
}

}  // namespace
