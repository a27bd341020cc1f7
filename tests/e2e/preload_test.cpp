// SPDX-License-Identifier: Apache-2.0
// The whole library, preloaded into a real program that runs against the fake driver, reaching
// the driver each of the three ways programs do.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kMiB = 1ll << 20;
constexpr long long kGiB = 1ll << 30;

e2e::ClientResult RunClient(const std::string& mode, const std::string& scenario,
                      std::vector<std::string> env, const std::string& arg = "",
                      const char* client = GS_CLIENT_PATH) {
  std::vector<std::string> argv{client, mode, scenario};
  if (!arg.empty()) argv.push_back(arg);
  return e2e::RunProgram(argv, e2e::PreloadEnv(std::move(env)));
}

class EveryWay : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryWay, ProgramSeesTheLimitAndCannotPassIt) {
  const auto r = RunClient(GetParam(), "fill", {"GPUSHARE_MEM_LIMIT=1Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("init_rc"), CUDA_SUCCESS);
  EXPECT_EQ(r.Int("device_total"), kGiB);
  EXPECT_EQ(r.Int("start_total"), kGiB);
  EXPECT_EQ(r.Int("start_free"), kGiB);
  EXPECT_EQ(r.Int("filled_bytes"), kGiB);
  EXPECT_EQ(r.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(r.Int("full_free"), 0);
  EXPECT_EQ(r.Int("end_free"), kGiB) << "freed memory must come back";
}

TEST_P(EveryWay, NoLimitPassesEverythingThrough) {
  const auto r = RunClient(GetParam(), "fill", {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("start_total"), 16 * kGiB);
  EXPECT_EQ(r.Int("filled_bytes"), 16 * kGiB);
  EXPECT_EQ(r.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
}

TEST_P(EveryWay, EveryAllocationFamilyIsCountedUnderTheLimit) {
  const auto r = RunClient(GetParam(), "families", {"GPUSHARE_MEM_LIMIT=1Gi"}, std::to_string(64 * kMiB));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* family : {"pitch_rc", "managed_rc", "async_rc", "vmm_rc", "array_rc",
                             "array3d_rc", "mipmap_rc", "graph_node_rc", "graph_launch_rc"})
    EXPECT_EQ(r.Int(family), CUDA_SUCCESS) << family << "\n" << r.out << r.err;
  EXPECT_EQ(r.Int("graph_free"), kGiB - 64 * kMiB) << "graph memory is charged once launched";
  EXPECT_EQ(r.Int("end_free"), kGiB) << "every family gave its memory back";
}

TEST_P(EveryWay, EveryAllocationFamilyIsRefusedPastTheLimit) {
  const auto r = RunClient(GetParam(), "families", {"GPUSHARE_MEM_LIMIT=1Gi"}, std::to_string(2 * kGiB));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* family : {"pitch_rc", "managed_rc", "async_rc", "vmm_rc", "array_rc",
                             "array3d_rc", "mipmap_rc", "graph_node_rc"})
    EXPECT_EQ(r.Int(family), CUDA_ERROR_OUT_OF_MEMORY) << family << "\n" << r.out << r.err;
  EXPECT_EQ(r.Int("end_free"), kGiB) << "refusals leak nothing";
}

TEST_P(EveryWay, KernelsLaunchThroughTheWrapper) {
  const auto r = RunClient(GetParam(), "launch", {"GPUSHARE_MEM_LIMIT=1Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("kernel_runs"), 10);
}

INSTANTIATE_TEST_SUITE_P(Preload, EveryWay, ::testing::Values("link", "dlsym", "gpa"));

TEST(Preload, PerDeviceLimitOverridesTheGlobalOne) {
  const auto r = RunClient("gpa", "fill", {"GPUSHARE_MEM_LIMIT=4Gi", "GPUSHARE_MEM_LIMIT_0=512Mi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("start_total"), 512 * kMiB);
  EXPECT_EQ(r.Int("filled_bytes"), 512 * kMiB);
}

TEST(Preload, LimitAbovePhysicalShowsPhysical) {
  const auto r = RunClient("gpa", "fill", {"GPUSHARE_MEM_REQUEST=1Gi", "GPUSHARE_MEM_LIMIT=64Gi"});
  EXPECT_EQ(r.Int("start_total"), 16 * kGiB);
  EXPECT_EQ(r.Int("filled_bytes"), 16 * kGiB);
}

TEST(Preload, ContextOverheadCountsAgainstTheLimit) {
  const auto r = RunClient("gpa", "context",
                     {"GPUSHARE_MEM_LIMIT=1Gi", "GPUSHARE_CONTEXT_OVERHEAD=256Mi",
                      "GPUSHARE_FAKE_CTX_OVERHEAD=256Mi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("start_free"), kGiB - 256 * kMiB);
  EXPECT_EQ(r.Int("ctx_create_rc"), CUDA_SUCCESS);
  EXPECT_EQ(r.Int("with_ctx_free"), kGiB - 512 * kMiB);
  EXPECT_EQ(r.Int("ctx_gone_free"), kGiB - 256 * kMiB);
}

TEST(Preload, ContextThatDoesNotFitIsRefused) {
  const auto r = RunClient("gpa", "fill", {"GPUSHARE_MEM_LIMIT=128Mi", "GPUSHARE_CONTEXT_OVERHEAD=256Mi"});
  EXPECT_EQ(r.Int("retain_rc"), CUDA_ERROR_OUT_OF_MEMORY);
}

TEST(Preload, ConcurrentAllocationsNeverPassTheLimit) {
  const auto r = RunClient("link", "race", {"GPUSHARE_MEM_LIMIT=1Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("race_granted"), kGiB);
}

class BadValue : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(BadValue, FailsClosedAndNamesTheVariable) {
  const auto& [name, value] = GetParam();
  const std::string quoted = name + "=\"" + value + "\"";
  // Linked directly: every call fails, cuInit first.
  const auto linked = RunClient("link", "fill", {name + "=" + value});
  ASSERT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_EQ(linked.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << linked.out;
  EXPECT_EQ(linked.Int("filled_bytes"), -1) << "no allocation may run unconstrained";
  EXPECT_NE(linked.err.find(quoted), std::string::npos) << linked.err;
  // Through cuGetProcAddress (the CUDA runtime's way): no entry point is handed out at all.
  const auto runtime_way = RunClient("gpa", "fill", {name + "=" + value});
  EXPECT_EQ(runtime_way.exit_code, 3) << runtime_way.out;
  EXPECT_NE(runtime_way.err.find(quoted), std::string::npos) << runtime_way.err;
}

INSTANTIATE_TEST_SUITE_P(
    Preload, BadValue,
    ::testing::Values(std::pair<std::string, std::string>{"GPUSHARE_MEM_LIMIT", "8GB?"},
                      std::pair<std::string, std::string>{"GPUSHARE_MEM_LIMIT", "-1"},
                      std::pair<std::string, std::string>{"GPUSHARE_MEM_LIMIT", "1.5.0Gi"},
                      std::pair<std::string, std::string>{"GPUSHARE_MEM_LIMIT", ""},
                      std::pair<std::string, std::string>{"GPUSHARE_MEM_LIMIT_1", "lots"},
                      std::pair<std::string, std::string>{"GPUSHARE_CONTEXT_OVERHEAD", "some"},
                      std::pair<std::string, std::string>{"GPUSHARE_LOG_LEVEL", "loud"}));

// A tenant name outside the alphabet (src/tenant_name.h) fails closed like any malformed value,
// and the message names the byte without writing the escape sequence to the terminal.
TEST(Preload, ATenantNameWithAnEscapeSequenceFailsClosed) {
  const auto r = RunClient("link", "fill", {"GPUSHARE_MEM_LIMIT=1Gi", "GPUSHARE_TENANT=a\x1b[2Jb\nc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED) << r.out;
  EXPECT_EQ(r.Int("filled_bytes"), -1);
  EXPECT_NE(r.err.find("GPUSHARE_TENANT=\"a\\x1b[2Jb\\x0ac\" is not valid (byte 2 is 0x1b"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "no raw escape on stderr";
}

TEST(Preload, LoadsBesideTheProgramsOwnSpdlogAndFmt) {
  const auto r = RunClient("link", "fill", {"GPUSHARE_MEM_LIMIT=1Gi", "GPUSHARE_LOG_LEVEL=debug"}, "",
                     GS_CLIENT_SPDLOG_PATH);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("host spdlog"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host_fmt    7"), std::string::npos) << r.out;
  EXPECT_EQ(r.Int("filled_bytes"), kGiB);
  EXPECT_NE(r.err.find("gpushare["), std::string::npos) << "our own logger still logs: " << r.err;
}

}  // namespace
