// SPDX-License-Identifier: Apache-2.0
// gpushare-run end to end on the fake driver: it sets the variables its flags name, preloads the
// library and execs the command, which is then limited; --help names every option; every bad
// value, flag or command is refused with a clear line and exit status 2 (127: no such command).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/contracts.h"
#include "src/options.h"
#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"
#include "tools/run_plan.h"

namespace {

constexpr long long kMiB = 1ll << 20;
constexpr long long kGiB = 1ll << 30;

// The fake driver's environment, without LD_PRELOAD: gpushare-run puts the library there.
std::vector<std::string> Env(std::vector<std::string> extra = {}) {
  std::vector<std::string> env = e2e::PreloadEnv({"unset:LD_PRELOAD"});
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

e2e::ClientResult RunTool(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), GS_RUN_PATH);
  return e2e::RunProgram(args, Env(env));
}

TEST(GpushareRun, RunsTheCommandLimited) {
  const auto r = RunTool({"--library", GS_PRELOAD_PATH, "--mem-request", "512Mi", "--mem-limit", "1Gi", "--sm", "25%",
                      "--priority", "10", "--resolver", "wait", "--tenant", "run-test", "--", GS_CLIENT_PATH, "link", "fill"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("init_rc"), CUDA_SUCCESS) << r.err;
  EXPECT_EQ(r.Int("start_total"), kGiB);
  EXPECT_EQ(r.Int("filled_bytes"), kGiB);
  EXPECT_EQ(r.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
}

TEST(GpushareRun, FindsTheLibraryBesideItselfAndSetsEveryVariable) {
  const auto r = RunTool({"--mem-request=512Mi", "--mem-limit", "1Gi", "--mem-limit-1", "2Gi", "--sm", "25%", "--priority",
                      "-3", "--resolver", "priority", "--best-effort", "--print-env", "--", "true"},
                     {"LD_PRELOAD=/other/lib.so"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"GPUSHARE_MEM_REQUEST=512Mi\n", "GPUSHARE_MEM_LIMIT=1Gi\n", "GPUSHARE_MEM_LIMIT_1=2Gi\n",
                           "GPUSHARE_SM=25%\n", "GPUSHARE_PRIORITY=-3\n", "GPUSHARE_RESOLVER=priority\n",
                           "GPUSHARE_BEST_EFFORT=true\n", "LD_PRELOAD=" GS_PRELOAD_PATH " /other/lib.so\n"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
}

TEST(GpushareRun, EachBadInputIsRefusedClearly) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--mem-limit", "8GB?", "--", "true"}, {}, "--mem-limit \"8GB?\" is not valid (examples: 8Gi"},
      {{"--sm", "150%", "--", "true"}, {}, "--sm \"150%\" is not valid"},
      {{"--resolver", "swapp", "--", "true"}, {}, "--resolver \"swapp\" is not valid"},
      {{"--priority", "high", "--", "true"}, {}, "--priority \"high\" is not valid"},
      {{"--frobnicate", "1", "--", "true"}, {}, "unknown option --frobnicate"},
      {{"--mem-limit-64", "1Gi", "--", "true"}, {}, "unknown option --mem-limit-64"},
      {{"--mem-limit"}, {}, "--mem-limit needs a value"},
      {{"--mem-limit", "1Gi"}, {}, "no command to run"},
      {{"--mem-request", "2Gi", "--mem-limit", "1Gi", "--", "true"}, {},
       "GPUSHARE_MEM_REQUEST=2147483648 is above GPUSHARE_MEM_LIMIT=1073741824"},
      {{"--mem-limit", "1Gi", "--", "true"}, {"CUDA_DEVICE_MEMORY_LIMIT=4GQ"}, "CUDA_DEVICE_MEMORY_LIMIT=\"4GQ\" is not valid"},
      {{"--library", "/nonexistent/libgpushare.so", "--", "true"}, {}, "cannot find libgpushare.so (looked at /nonexistent/libgpushare.so)"},
      {{"--tenant", "a\x1b]0;owned\x07", "--", "true"}, {}, "--tenant \"a\\x1b]0;owned\\x07\" is not valid (byte 2 is 0x1b; a tenant name is"},
      {{"--mem-limit", "1Gi", "--", "true"}, {"GPUSHARE_TENANT=caf\xc3\xa9"}, "GPUSHARE_TENANT=\"caf\\xc3\\xa9\" is not valid (byte 4 is 0xc3"},
  };
  for (const Case& c : cases) {
    const auto r = RunTool(c.args, c.env);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_NE(r.err.find("gpushare-run: " + c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << "nothing ran: " << r.out;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "no raw escape on stderr";
  }
  const auto missing = RunTool({"--mem-limit", "1Gi", "--", "/no/such/program"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.err.find("cannot run '/no/such/program'"), std::string::npos) << missing.err;
}

TEST(GpushareRun, HelpIsComplete) {
  const auto r = RunTool({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const gpushare::OptionRow& row : gpushare::OptionRows()) {
    EXPECT_NE(r.out.find(gpushare::run::FlagOf(row.variable)), std::string::npos) << row.variable;
    EXPECT_NE(r.out.find(row.variable), std::string::npos) << row.variable;
  }
  for (const gpushare::ContractRow& row : gpushare::ContractRows())
    EXPECT_NE(r.out.find(row.variables), std::string::npos) << row.variables;
  for (const char* own : {"--library", "--print-env", "--help"})
    EXPECT_NE(r.out.find(own), std::string::npos) << own;
}

TEST(GpushareRun, FlagsWinOverTheEnvironmentAndTheSchedulersVariables) {
  const auto r = RunTool({"--library", GS_PRELOAD_PATH, "--mem-limit", "256Mi", "--", GS_CLIENT_PATH, "link", "fill"},
                     {"GPUSHARE_MEM_LIMIT=4Gi", "CUDA_DEVICE_MEMORY_LIMIT=2g"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("start_total"), 256 * kMiB);
  EXPECT_EQ(r.Int("filled_bytes"), 256 * kMiB);
}

}  // namespace
