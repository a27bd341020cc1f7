// SPDX-License-Identifier: Apache-2.0
// The schedulers' variables: each contract's forms, its bad values (named, never "unlimited"),
// and the precedence of GPUSHARE_ over every scheduler and of the schedulers among themselves.
#include "gpushare/ledger_abi.h"
#include "src/contracts.h"
#include "src/hami_grammar.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace gpushare {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

Options Parse(const std::map<std::string, std::string>& env) {
  return ParseOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

Options::Quota On(const Options& o, int index, uint64_t device_total) {
  EXPECT_TRUE(o.errors.empty()) << o.errors.front();
  return o.ResolveQuota(index, device_total);
}

bool Noted(const Options& o, const std::string& text) {
  for (const std::string& note : o.notes)
    if (note.find(text) != std::string::npos) return true;
  return false;
}

TEST(Contracts, HamiBytesAreBinaryAndPlainNumbersAreBytes) {
  // The full table, with HAMi-core's sources, is tests/compat/scheduler_grammar_test.cpp.
  EXPECT_EQ(ParseHamiBytes("4096m"), 4096 * kMiB);
  EXPECT_EQ(ParseHamiBytes("4g"), 4 * kGiB);
  EXPECT_EQ(ParseHamiBytes("4G"), 4 * kGiB);
  EXPECT_EQ(ParseHamiBytes("4Gi"), 4 * kGiB);
  EXPECT_EQ(ParseHamiBytes("1048576k"), kGiB);
  EXPECT_EQ(ParseHamiBytes("1073741824"), kGiB);
  EXPECT_EQ(ParseHamiBytes("0"), 0u);
  for (const char* bad : {"", "m", "-1g", "17179869184g", "0x10", "4.5", "4T"})
    EXPECT_FALSE(ParseHamiBytes(bad).has_value()) << bad;
}

TEST(Contracts, HamiLimitGlobalAndPerDevice) {
  const Options o = Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "4g"}, {"CUDA_DEVICE_MEMORY_LIMIT_1", "3000m"}});
  EXPECT_EQ(On(o, 0, 16 * kGiB).limit_bytes, 4 * kGiB);
  EXPECT_EQ(On(o, 0, 16 * kGiB).request_bytes, 4 * kGiB) << "a limit alone is the request too";
  EXPECT_EQ(On(o, 1, 16 * kGiB).limit_bytes, 3000 * kMiB);
  EXPECT_EQ(o.mem_limit.For(1)->variable, "CUDA_DEVICE_MEMORY_LIMIT_1");
  const Options only_one = Parse({{"CUDA_DEVICE_MEMORY_LIMIT_0", "1024m"}});
  EXPECT_TRUE(only_one.HasQuota(0));
  EXPECT_FALSE(only_one.HasQuota(1));
}

TEST(Contracts, GpushareVariablesTakePrecedenceOverEveryScheduler) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT", "2Gi"},
                           {"CUDA_DEVICE_MEMORY_LIMIT", "4g"},
                           {"CUDA_DEVICE_MEMORY_LIMIT_0", "5g"},
                           {"ALIYUN_COM_GPU_MEM_CONTAINER", "6"},
                           {"ALIYUN_COM_GPU_MEM_DEV", "16"},
                           {"GPU_PORTION", "0.5"}});
  EXPECT_EQ(On(o, 0, 16 * kGiB).limit_bytes, 2 * kGiB) << "even over a scheduler's per-device value";
  EXPECT_EQ(On(o, 1, 16 * kGiB).limit_bytes, 2 * kGiB);
  EXPECT_TRUE(Noted(o, "CUDA_DEVICE_MEMORY_LIMIT (HAMi) is set, but GPUSHARE_MEM_LIMIT takes precedence"));
  EXPECT_TRUE(Noted(o, "GPU_PORTION (KAI) is set, but GPUSHARE_MEM_LIMIT takes precedence"));
}

TEST(Contracts, PerDeviceGpushareBeatsSchedulerOnlyOnItsDevice) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT_1", "1Gi"}, {"CUDA_DEVICE_MEMORY_LIMIT", "4g"}});
  EXPECT_EQ(On(o, 0, 16 * kGiB).limit_bytes, 4 * kGiB);
  EXPECT_EQ(On(o, 1, 16 * kGiB).limit_bytes, 1 * kGiB);
}

TEST(Contracts, SchedulersInTableOrderHamiThenAliyunThenKai) {
  EXPECT_EQ(On(Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "4g"}, {"GPU_PORTION", "0.5"}}), 0, 16 * kGiB).limit_bytes, 4 * kGiB);
  EXPECT_EQ(On(Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "3"}, {"GPUSHARE_ALIYUN_UNIT", "GiB"}, {"GPU_PORTION", "0.5"}}), 0, 16 * kGiB).limit_bytes,
            3 * kGiB);
  EXPECT_EQ(On(Parse({{"GPU_PORTION", "0.5"}}), 0, 16 * kGiB).limit_bytes, 8 * kGiB);
}

TEST(Contracts, AGpushareRequestCombinesWithASchedulersLimit) {
  const Options o = Parse({{"GPUSHARE_MEM_REQUEST", "1Gi"}, {"CUDA_DEVICE_MEMORY_LIMIT", "4g"}});
  const Options::Quota q = On(o, 0, 16 * kGiB);
  EXPECT_EQ(q.request_bytes, 1 * kGiB);
  EXPECT_EQ(q.limit_bytes, 4 * kGiB);
  const Options above = Parse({{"GPUSHARE_MEM_REQUEST", "8Gi"}, {"CUDA_DEVICE_MEMORY_LIMIT", "4g"}});
  ASSERT_EQ(above.errors.size(), 1u);
  EXPECT_NE(above.errors[0].find("GPUSHARE_MEM_REQUEST=8589934592 is above CUDA_DEVICE_MEMORY_LIMIT=4294967296"),
            std::string::npos) << above.errors[0];
  // Relative to the device: found only once it is resolved, and named then.
  const Options::Quota relative = Parse({{"GPUSHARE_MEM_REQUEST", "8Gi"}, {"GPU_PORTION", "0.25"}}).ResolveQuota(0, 16 * kGiB);
  EXPECT_NE(relative.error.find("GPUSHARE_MEM_REQUEST=8589934592 is above GPU_PORTION=4294967296"), std::string::npos)
      << relative.error;
}

TEST(Contracts, KaiPortionIsAFractionOfThisDevice) {
  const Options o = Parse({{"GPU_PORTION", "0.25"}});
  EXPECT_EQ(On(o, 0, 16 * kGiB).limit_bytes, 4 * kGiB);
  EXPECT_EQ(On(o, 1, 80 * kGiB).limit_bytes, 20 * kGiB);
  EXPECT_EQ(On(Parse({{"GPU_PORTION", "1"}}), 0, 16 * kGiB).limit_bytes, 16 * kGiB);
  EXPECT_EQ(On(Parse({{"GPU_PORTION", ".5"}}), 0, 16 * kGiB).limit_bytes, 8 * kGiB);
  EXPECT_EQ(On(Parse({{"GPU_PORTION", "0.3333333333333333"}}), 0, 3 * kGiB).limit_bytes, kGiB - 1)
      << "a long decimal is truncated, never rounded up past the portion";
  for (const char* bad : {"0", "0.0", "1.5", "2", "50%", "-0.5", "", ".", "half", "0.5.1", "10"})
    EXPECT_EQ(Parse({{"GPU_PORTION", bad}}).errors.size(), 1u) << bad;
  EXPECT_NE(Parse({{"GPU_PORTION", "1.5"}}).errors[0].find("GPU_PORTION=\"1.5\" is not valid"), std::string::npos);
}

TEST(Contracts, AliyunUnitIsInferredFromTheDevicesTotal) {
  // aliyun floors the device to whole GiB: 15 of a 15.9 GiB card, or counts MiB.
  const Options gib = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4"}, {"ALIYUN_COM_GPU_MEM_DEV", "15"}});
  EXPECT_EQ(On(gib, 0, 16 * kGiB - 300 * kMiB).limit_bytes, 4 * kGiB);
  const Options mib = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4096"}, {"ALIYUN_COM_GPU_MEM_DEV", "16160"}});
  EXPECT_EQ(On(mib, 0, 16160 * kMiB).limit_bytes, 4096 * kMiB);
  EXPECT_EQ(On(Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "40"}, {"ALIYUN_COM_GPU_MEM_DEV", "79"}}), 0, 81559 * kMiB).limit_bytes,
            40 * kGiB) << "an 80 GB H100";
  EXPECT_EQ(InferAliyunUnit(16, 16 * kGiB), AliyunUnit::kGiB);
  EXPECT_EQ(InferAliyunUnit(16384, 16 * kGiB), AliyunUnit::kMiB);
  EXPECT_EQ(InferAliyunUnit(100, 16 * kGiB), AliyunUnit::kInfer);
  EXPECT_EQ(InferAliyunUnit(0, 16 * kGiB), AliyunUnit::kInfer);
}

TEST(Contracts, AliyunUnitThatCannotBeInferredFailsClosedNamingTheVariables) {
  const Options::Quota q = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4"}, {"ALIYUN_COM_GPU_MEM_DEV", "100"}}).ResolveQuota(0, 16 * kGiB);
  EXPECT_TRUE(q.limited);
  EXPECT_NE(q.error.find("ALIYUN_COM_GPU_MEM_DEV=100"), std::string::npos) << q.error;
  EXPECT_NE(q.error.find("GPUSHARE_ALIYUN_UNIT"), std::string::npos) << q.error;
  const Options no_dev = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4"}});
  ASSERT_EQ(no_dev.errors.size(), 1u);
  EXPECT_NE(no_dev.errors[0].find("ALIYUN_COM_GPU_MEM_CONTAINER=\"4\" has no unit"), std::string::npos) << no_dev.errors[0];
}

TEST(Contracts, AliyunExplicitUnitWins) {
  const Options o = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4"}, {"ALIYUN_COM_GPU_MEM_DEV", "100"}, {"GPUSHARE_ALIYUN_UNIT", "MiB"}});
  EXPECT_EQ(On(o, 0, 16 * kGiB).limit_bytes, 4 * kMiB);
  EXPECT_EQ(On(Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4"}, {"GPUSHARE_ALIYUN_UNIT", "GiB"}}), 0, 16 * kGiB).limit_bytes, 4 * kGiB);
  EXPECT_EQ(Parse({{"GPUSHARE_ALIYUN_UNIT", "GB"}}).errors.size(), 1u);
  EXPECT_EQ(Parse({{"GPUSHARE_ALIYUN_UNIT", "gib"}}).errors.size(), 1u);
}

TEST(Contracts, EveryBadSchedulerValueIsNamedEvenWhenOverridden) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT", "1Gi"},
                           {"CUDA_DEVICE_MEMORY_LIMIT", "4GQ"},
                           {"CUDA_DEVICE_MEMORY_LIMIT_2", ""},
                           {"ALIYUN_COM_GPU_MEM_CONTAINER", "4.5"},
                           {"ALIYUN_COM_GPU_MEM_DEV", "0"},
                           {"GPU_PORTION", "1.5"},
                           {"CUDA_DEVICE_SM_LIMIT", "50KiB"},
                           {"CUDA_TASK_PRIORITY", "-1"}});
  const char* expected[] = {"CUDA_DEVICE_MEMORY_LIMIT=\"4GQ\"", "CUDA_DEVICE_MEMORY_LIMIT_2=\"\"",
                            "ALIYUN_COM_GPU_MEM_DEV=\"0\"", "GPU_PORTION=\"1.5\"",
                            "CUDA_DEVICE_SM_LIMIT=\"50KiB\"", "CUDA_TASK_PRIORITY=\"-1\""};
  ASSERT_EQ(o.errors.size(), std::size(expected)) << ::testing::PrintToString(o.errors);
  for (size_t i = 0; i < std::size(expected); ++i)
    EXPECT_NE(o.errors[i].find(expected[i]), std::string::npos) << o.errors[i];
  const Options container = Parse({{"ALIYUN_COM_GPU_MEM_CONTAINER", "4.5"}, {"ALIYUN_COM_GPU_MEM_DEV", "16"}});
  ASSERT_EQ(container.errors.size(), 1u);
  EXPECT_NE(container.errors[0].find("ALIYUN_COM_GPU_MEM_CONTAINER=\"4.5\""), std::string::npos);
}

TEST(Contracts, HamiSmLimitIsAShareOfTheGpusTimeNotASlice) {
  const Options o = Parse({{"CUDA_DEVICE_SM_LIMIT", "30"}});
  ASSERT_TRUE(o.errors.empty());
  EXPECT_EQ(o.compute.For(0), 3000u);
  EXPECT_EQ(o.sm.kind, 0u) << "no SM slice: with both, a tenant would get 30% of the time on 30% of the SMs";
  EXPECT_TRUE(Noted(o, "CUDA_DEVICE_SM_LIMIT (HAMi) gives the compute"));
  EXPECT_EQ(Parse({{"CUDA_DEVICE_SM_LIMIT", "0"}}).compute.For(0), 0u) << "HAMi's 0 is no limit";
  const Options both = Parse({{"CUDA_DEVICE_SM_LIMIT", "30"}, {"GPUSHARE_COMPUTE", "50%"}});
  EXPECT_EQ(both.compute.For(0), 5000u);
  EXPECT_TRUE(Noted(both, "CUDA_DEVICE_SM_LIMIT (HAMi) is set, but GPUSHARE_COMPUTE takes precedence"));
  const Options slice = Parse({{"CUDA_DEVICE_SM_LIMIT", "30"}, {"GPUSHARE_SM", "50%"}});
  EXPECT_EQ(slice.sm.value, 50u);
  EXPECT_EQ(slice.compute.For(0), 3000u);
}

TEST(Contracts, HamiPriorityZeroIsHighest) {
  EXPECT_EQ(Parse({{"CUDA_TASK_PRIORITY", "0"}}).priority, 0);
  EXPECT_EQ(Parse({{"CUDA_TASK_PRIORITY", "1"}}).priority, -1);
  EXPECT_GT(Parse({{"CUDA_TASK_PRIORITY", "0"}}).priority, Parse({{"CUDA_TASK_PRIORITY", "1"}}).priority);
  EXPECT_EQ(Parse({{"CUDA_TASK_PRIORITY", "1"}, {"GPUSHARE_PRIORITY", "10"}}).priority, 10);
  for (const char* bad : {"", "high", "1.0", "99999999999"})
    EXPECT_EQ(Parse({{"CUDA_TASK_PRIORITY", bad}}).errors.size(), 1u) << bad;
}

TEST(Contracts, DownwardApiNamesTheTenant) {
  const Options o = Parse({{"POD_NAMESPACE", "team-a"}, {"POD_NAME", "serve-7f9c"}, {"CONTAINER_NAME", "vllm"}});
  ASSERT_TRUE(o.errors.empty());
  EXPECT_EQ(o.tenant, "team-a/serve-7f9c/vllm");
  const std::optional<PodIdentity> id = SplitPodTenantName(o.tenant);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->ns, "team-a");
  EXPECT_EQ(id->pod, "serve-7f9c");
  EXPECT_EQ(id->container, "vllm");
  EXPECT_EQ(Parse({{"POD_NAME", "serve"}}).tenant, "") << "partial: not ours, ignored";
  EXPECT_EQ(Parse({{"POD_NAMESPACE", "a"}, {"POD_NAME", "b"}, {"CONTAINER_NAME", "c"}, {"GPUSHARE_TENANT", "mine"}}).tenant, "mine");
  EXPECT_EQ(Parse({{"POD_NAMESPACE", ""}, {"POD_NAME", "b"}, {"CONTAINER_NAME", "c"}}).errors.size(), 1u);
  const Options odd = Parse({{"POD_NAMESPACE", "a"}, {"POD_NAME", "b\x1b[2J"}, {"CONTAINER_NAME", "c/d"}});
  ASSERT_EQ(odd.errors.size(), 2u);
  EXPECT_NE(odd.errors[0].find("POD_NAME=\"b\\x1b[2J\" is not valid (byte 2 is 0x1b"), std::string::npos) << odd.errors[0];
  EXPECT_NE(odd.errors[1].find("CONTAINER_NAME=\"c/d\" is not valid (byte 2 is '/'"), std::string::npos) << odd.errors[1];
  EXPECT_EQ(odd.tenant, "");
  EXPECT_EQ(Parse({{"POD_NAMESPACE", "a"}, {"POD_NAME", std::string(200, 'p')}, {"CONTAINER_NAME", "c"}}).errors.size(), 1u);
  EXPECT_FALSE(SplitPodTenantName("pod1234/abcdef").has_value());
  EXPECT_FALSE(SplitPodTenantName("a/b/c/d").has_value());
  EXPECT_FALSE(SplitPodTenantName("a//c").has_value());
}

TEST(Contracts, EveryRowIsListed) {
  size_t rows = 0;
  for (const ContractRow& row : ContractRows()) {
    ++rows;
    EXPECT_NE(FindOptionRow(row.field), nullptr) << row.field << " must be an options.inc field";
  }
  EXPECT_EQ(rows, 9u);
}

}  // namespace
}  // namespace gpushare
