// SPDX-License-Identifier: Apache-2.0
#include "src/options.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace gpushare {
namespace {

Options Parse(const std::map<std::string, std::string>& env) {
  return ParseOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Options, DefaultsWhenNothingIsSet) {
  const Options o = Parse({});
  EXPECT_TRUE(o.errors.empty());
  EXPECT_EQ(o.mem_limit.For(0), nullptr);
  EXPECT_FALSE(o.context_overhead.has_value()) << "auto";
  EXPECT_EQ(o.log_level, LogLevel::kWarn);
}

constexpr uint64_t kDevice = 16ull << 30;

uint64_t LimitOn(const Options& o, int index, uint64_t total = kDevice) {
  const Options::Quota q = o.ResolveQuota(index, total);
  EXPECT_TRUE(q.limited && q.error.empty()) << q.error;
  return q.limit_bytes;
}

TEST(Options, PerDeviceLimitOverridesTheGlobalOne) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT", "8Gi"}, {"GPUSHARE_MEM_LIMIT_1", "2Gi"}});
  EXPECT_EQ(LimitOn(o, 0), 8ull << 30);
  EXPECT_EQ(LimitOn(o, 1), 2ull << 30);
  EXPECT_EQ(LimitOn(o, 63), 8ull << 30);
  EXPECT_EQ(LimitOn(o, 64), 8ull << 30);
  EXPECT_EQ(o.mem_limit.For(1)->variable, "GPUSHARE_MEM_LIMIT_1");
}

TEST(Options, PerDeviceLimitAloneLimitsOnlyThatDevice) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT_2", "1Gi"}});
  EXPECT_FALSE(o.HasQuota(0));
  EXPECT_FALSE(o.ResolveQuota(0, kDevice).limited);
  EXPECT_TRUE(o.HasQuota(2));
  EXPECT_EQ(LimitOn(o, 2), 1ull << 30);
}

TEST(Options, EveryMalformedValueIsReportedWithItsName) {
  const Options o = Parse({{"GPUSHARE_MEM_LIMIT", "8GB?"},
                           {"GPUSHARE_MEM_LIMIT_3", ""},
                           {"GPUSHARE_CONTEXT_OVERHEAD", "lots"},
                           {"GPUSHARE_LOG_LEVEL", "chatty"}});
  ASSERT_EQ(o.errors.size(), 4u);
  EXPECT_NE(o.errors[0].find("GPUSHARE_MEM_LIMIT=\"8GB?\""), std::string::npos) << o.errors[0];
  EXPECT_NE(o.errors[0].find("8Gi"), std::string::npos) << "says what is accepted";
  EXPECT_NE(o.errors[1].find("GPUSHARE_MEM_LIMIT_3=\"\""), std::string::npos) << o.errors[1];
  EXPECT_NE(o.errors[2].find("GPUSHARE_CONTEXT_OVERHEAD=\"lots\""), std::string::npos);
  EXPECT_NE(o.errors[3].find("GPUSHARE_LOG_LEVEL=\"chatty\""), std::string::npos);
}

TEST(Options, RequestAndLimitStandForEachOtherAsInKubernetes) {
  const Options::Quota both = Parse({{"GPUSHARE_MEM_REQUEST", "2Gi"}, {"GPUSHARE_MEM_LIMIT", "8Gi"}}).ResolveQuota(0, kDevice);
  EXPECT_EQ(both.request_bytes, 2ull << 30);
  EXPECT_EQ(both.limit_bytes, 8ull << 30);
  const Options::Quota request = Parse({{"GPUSHARE_MEM_REQUEST", "2Gi"}}).ResolveQuota(0, kDevice);
  EXPECT_EQ(request.limit_bytes, 2ull << 30);
  const Options::Quota limit = Parse({{"GPUSHARE_MEM_LIMIT", "8Gi"}}).ResolveQuota(0, kDevice);
  EXPECT_EQ(limit.request_bytes, 8ull << 30);
  EXPECT_FALSE(Parse({}).ResolveQuota(0, kDevice).limited);
  EXPECT_FALSE(Parse({}).HasQuota(0));
}

TEST(Options, ARequestAboveItsLimitIsRefused) {
  const Options o = Parse({{"GPUSHARE_MEM_REQUEST", "8Gi"}, {"GPUSHARE_MEM_LIMIT", "4Gi"}});
  ASSERT_EQ(o.errors.size(), 1u) << "reported once, not per device";
  EXPECT_NE(o.errors[0].find("GPUSHARE_MEM_REQUEST=8589934592 is above GPUSHARE_MEM_LIMIT=4294967296"),
            std::string::npos) << o.errors[0];
  const Options per_device = Parse({{"GPUSHARE_MEM_REQUEST_1", "8Gi"}, {"GPUSHARE_MEM_LIMIT", "4Gi"}});
  ASSERT_EQ(per_device.errors.size(), 1u);
  EXPECT_NE(per_device.errors[0].find("GPUSHARE_MEM_REQUEST_1="), std::string::npos);
}

TEST(Options, TheLedgerDirectoryMustBeAbsolute) {
  // A relative directory would be resolved against each process's own working directory: the
  // tenants of a node would not share one ledger.
  for (const char* bad : {"ledgers", "./ledgers", "var/run/gpushare", "/var/run/../tmp/x", "/x/.."}) {
    const Options o = Parse({{"GPUSHARE_LEDGER_DIR", bad}});
    ASSERT_EQ(o.errors.size(), 1u) << bad;
    EXPECT_NE(o.errors[0].find(std::string("GPUSHARE_LEDGER_DIR=\"") + bad + "\" is not valid"), std::string::npos)
        << o.errors[0];
    EXPECT_NE(o.errors[0].find("absolute path"), std::string::npos) << o.errors[0];
  }
  for (const char* good : {"/var/run/gpushare", "/tmp/a..b/", "/x/..y"})
    EXPECT_TRUE(Parse({{"GPUSHARE_LEDGER_DIR", good}}).errors.empty()) << good;
}

TEST(Options, TenantSettings) {
  const Options o = Parse({{"GPUSHARE_TENANT", "team-a"},
                           {"GPUSHARE_LEDGER_DIR", "/tmp/x"},
                           {"GPUSHARE_MEMINFO_TOTAL", "request"},
                           {"GPUSHARE_BEST_EFFORT", "true"}});
  EXPECT_TRUE(o.errors.empty());
  EXPECT_EQ(o.tenant, "team-a");
  EXPECT_EQ(o.ledger_dir, "/tmp/x");
  EXPECT_EQ(o.meminfo_total, option_kind::MeminfoTotalValue::kRequest);
  EXPECT_TRUE(o.best_effort);
  EXPECT_EQ(Parse({}).ledger_dir, "/var/run/gpushare");
  const Options bad = Parse({{"GPUSHARE_TENANT", ""}, {"GPUSHARE_MEMINFO_TOTAL", "all"},
                             {"GPUSHARE_BEST_EFFORT", "yes please"}});
  EXPECT_EQ(bad.errors.size(), 3u);
}

// A name with a newline, an escape sequence or invalid UTF-8 once broke gpushare-smi --json for
// the whole node: refused, naming the variable and the byte, and the message itself escaped.
TEST(Options, TenantNamesOutsideTheAlphabetAreRefusedByByte) {
  for (const char* good : {"team-a", "Team_A.1", "ns/pod-7f9c/main", "pid-12@host.example", "pod0b1c2d3e-1111/cccc"})
    EXPECT_TRUE(Parse({{"GPUSHARE_TENANT", good}}).errors.empty()) << good;
  const Options esc = Parse({{"GPUSHARE_TENANT", "a\x1b[31mred"}});
  ASSERT_EQ(esc.errors.size(), 1u);
  EXPECT_EQ(esc.errors[0], "GPUSHARE_TENANT=\"a\\x1b[31mred\" is not valid (byte 2 is 0x1b; a tenant name is 1 to 127 bytes "
                           "of letters, digits and - . _ / @)");
  struct Bad {
    std::string value;
    std::string why;
  };
  for (const Bad& bad : {Bad{"line\nbreak", "byte 5 is 0x0a"}, Bad{"caf\xc3\xa9", "byte 4 is 0xc3"}, Bad{"bad\xff", "byte 4 is 0xff"},
                         Bad{"a b", "byte 2 is 0x20"}, Bad{std::string(128, 't'), "128 bytes"}, Bad{"", "empty"}}) {
    const Options o = Parse({{"GPUSHARE_TENANT", bad.value}});
    ASSERT_EQ(o.errors.size(), 1u) << bad.value;
    EXPECT_NE(o.errors[0].find("GPUSHARE_TENANT=\""), std::string::npos) << o.errors[0];
    EXPECT_NE(o.errors[0].find(bad.why), std::string::npos) << o.errors[0];
    for (const char c : o.errors[0]) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "printable: " << o.errors[0];
  }
  const OptionRow* row = FindOptionRow("tenant");
  ASSERT_NE(row, nullptr);
  EXPECT_FALSE(row->valid("a\x1b"));
  EXPECT_EQ(row->why("a\x1b").rfind("byte 2 is 0x1b; ", 0), 0u) << row->why("a\x1b");
}

TEST(Options, ResolverSettings) {
  const Options d = Parse({});
  EXPECT_EQ(d.resolver, option_kind::ResolverValue::kWait);
  EXPECT_EQ(d.wait_timeout, 60'000'000'000ull);
  EXPECT_EQ(d.wait_mode, option_kind::WaitModeValue::kRetry);
  EXPECT_EQ(d.priority, 0);
  EXPECT_EQ(d.idle_timeout, 0u);
  EXPECT_EQ(d.kill_grace, 10'000'000'000ull);
  const Options o = Parse({{"GPUSHARE_RESOLVER", "priority"}, {"GPUSHARE_WAIT_TIMEOUT", "500ms"},
                           {"GPUSHARE_PRIORITY", "-3"}, {"GPUSHARE_IDLE_TIMEOUT", "2m"},
                           {"GPUSHARE_KILL_GRACE", "5"}, {"GPUSHARE_WAIT_MODE", "always"}});
  EXPECT_TRUE(o.errors.empty());
  EXPECT_EQ(o.resolver, option_kind::ResolverValue::kPriority);
  EXPECT_EQ(o.wait_timeout, 500'000'000ull);
  EXPECT_EQ(o.priority, -3);
  EXPECT_EQ(o.idle_timeout, 120'000'000'000ull);
  EXPECT_EQ(o.kill_grace, 5'000'000'000ull);
  EXPECT_EQ(o.wait_mode, option_kind::WaitModeValue::kAlways);
  const Options swap = Parse({{"GPUSHARE_RESOLVER", "swap"}, {"GPUSHARE_SWAP_QUANTUM", "250ms"},
                              {"GPUSHARE_SWAP_STAGING", "3Gi"}});
  EXPECT_TRUE(swap.errors.empty());
  EXPECT_EQ(swap.resolver, option_kind::ResolverValue::kSwap);
  EXPECT_EQ(swap.swap_quantum, 250'000'000ull);
  EXPECT_EQ(swap.swap_staging, 3ull << 30);
  EXPECT_EQ(Parse({}).swap_quantum, 5'000'000'000ull);
  EXPECT_FALSE(Parse({}).swap_staging.has_value()) << "auto: the tenant's burst";
  const Options bad_swap = Parse({{"GPUSHARE_SWAP_QUANTUM", "soon"}, {"GPUSHARE_SWAP_STAGING", "4GB"}});
  ASSERT_EQ(bad_swap.errors.size(), 2u);
  EXPECT_NE(bad_swap.errors[0].find("GPUSHARE_SWAP_QUANTUM=\"soon\""), std::string::npos) << bad_swap.errors[0];
  EXPECT_NE(bad_swap.errors[1].find("GPUSHARE_SWAP_STAGING=\"4GB\""), std::string::npos) << bad_swap.errors[1];
  const Options bad = Parse({{"GPUSHARE_RESOLVER", "swapp"}, {"GPUSHARE_WAIT_TIMEOUT", "soon"},
                             {"GPUSHARE_PRIORITY", "1.5"}, {"GPUSHARE_IDLE_TIMEOUT", "-1s"},
                             {"GPUSHARE_KILL_GRACE", "10 s"}, {"GPUSHARE_WAIT_MODE", ""}});
  EXPECT_EQ(bad.errors.size(), 6u);
}

TEST(Options, LogLevelOffIsAcceptedOnlyAsOff) {
  EXPECT_TRUE(Parse({{"GPUSHARE_LOG_LEVEL", "off"}}).errors.empty());
  EXPECT_EQ(Parse({{"GPUSHARE_LOG_LEVEL", "debug"}}).log_level, LogLevel::kDebug);
}

TEST(Options, ContextOverheadTakesAQuantityOrAuto) {
  EXPECT_EQ(Parse({{"GPUSHARE_CONTEXT_OVERHEAD", "512Mi"}}).context_overhead, 512ull << 20);
  EXPECT_FALSE(Parse({{"GPUSHARE_CONTEXT_OVERHEAD", "auto"}}).context_overhead.has_value());
}

TEST(Options, SmSliceSettings) {
  const Options none = Parse({});
  EXPECT_EQ(none.sm.kind, 0u) << "no slice by default";
  EXPECT_EQ(none.sm_conflict, option_kind::SmConflictValue::kRefuse);
  EXPECT_EQ(none.sm_fallback, option_kind::SmFallbackValue::kRefuse);
  EXPECT_FALSE(none.sm_profiling);
  const Options count = Parse({{"GPUSHARE_SM", "32"}, {"GPUSHARE_SM_CONFLICT", "overlap"},
                               {"GPUSHARE_SM_FALLBACK", "unconfined"}, {"GPUSHARE_SM_PROFILING", "true"}});
  EXPECT_TRUE(count.errors.empty());
  EXPECT_EQ(count.sm.kind, 1u);
  EXPECT_EQ(count.sm.value, 32u);
  EXPECT_EQ(count.sm_conflict, option_kind::SmConflictValue::kOverlap);
  EXPECT_EQ(count.sm_fallback, option_kind::SmFallbackValue::kUnconfined);
  EXPECT_TRUE(count.sm_profiling);
  const Options share = Parse({{"GPUSHARE_SM", "25%"}});
  EXPECT_EQ(share.sm.kind, 2u);
  EXPECT_EQ(share.sm.value, 25u);
  for (const char* bad : {"0", "0%", "101%", "-1", "32.5", "25 %", "%", "", "x", "9999"}) {
    const Options o = Parse({{"GPUSHARE_SM", bad}});
    ASSERT_EQ(o.errors.size(), 1u) << bad;
    EXPECT_NE(o.errors[0].find("GPUSHARE_SM=\"" + std::string(bad) + "\" is not valid"), std::string::npos) << o.errors[0];
  }
  EXPECT_EQ(Parse({{"GPUSHARE_SM_CONFLICT", "share"}}).errors.size(), 1u);
  EXPECT_EQ(Parse({{"GPUSHARE_SM_FALLBACK", "green"}}).errors.size(), 1u);
}

TEST(Options, DescribeListsEveryVariable) {
  const std::string text = DescribeOptions();
  for (const OptionRow& row : OptionRows())
    EXPECT_NE(text.find(row.variable), std::string::npos) << row.variable;
  for (const char* name : {"GPUSHARE_MEM_LIMIT", "GPUSHARE_CONTEXT_OVERHEAD", "GPUSHARE_LOG_LEVEL",
                           "CUDA_DEVICE_MEMORY_LIMIT", "ALIYUN_COM_GPU_MEM_CONTAINER", "GPU_PORTION",
                           "CUDA_DEVICE_SM_LIMIT", "CUDA_TASK_PRIORITY", "POD_NAMESPACE"})
    EXPECT_NE(text.find(name), std::string::npos) << name;
}

TEST(Options, RowsValidateWithTheirOwnParser) {
  const OptionRow* limit = FindOptionRow("mem_limit");
  ASSERT_NE(limit, nullptr);
  EXPECT_TRUE(limit->per_device);
  EXPECT_TRUE(limit->valid("4Gi"));
  EXPECT_FALSE(limit->valid("4GB"));
  const OptionRow* resolver = FindOptionRow("resolver");
  ASSERT_NE(resolver, nullptr);
  EXPECT_FALSE(resolver->per_device);
  EXPECT_TRUE(resolver->valid("priority"));
  EXPECT_TRUE(resolver->valid("swap"));
  EXPECT_FALSE(resolver->valid("swapp"));
  EXPECT_EQ(FindOptionRow("no_such_option"), nullptr);
}

}  // namespace
}  // namespace gpushare

namespace gpushare {
namespace {

Options ParseCompute(const std::map<std::string, std::string>& env) {
  return ParseOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ComputeOptions, SharesAreBasisPointsAndDefaultsAreSane) {
  EXPECT_EQ(ParseCompute({}).compute.all, 0u);
  EXPECT_EQ(ParseCompute({}).compute_quantum, 2'000'000u);
  EXPECT_EQ(ParseCompute({}).compute_idle, 500'000u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE", "30%"}}).compute.all, 3000u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE", "12.5%"}}).compute.all, 1250u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE", "0.01%"}}).compute.all, 1u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_QUANTUM", "2ms"}}).compute_quantum, 2'000'000u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_IDLE", "250us"}}).compute_idle, 250'000u);
  EXPECT_EQ(ParseCompute({}).compute_express, 50u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_EXPRESS", "0%"}}).compute_express, 0u);
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_EXPRESS", "100%"}}).compute_express, 100u);
}

TEST(ComputeOptions, MalformedValuesFailClosedNamingTheVariable) {
  for (const char* bad : {"30", "0%", "101%", "30%%", "-5%", "1.234%", "abc", "", ".5%"}) {
    const Options o = ParseCompute({{"GPUSHARE_COMPUTE", bad}});
    ASSERT_EQ(o.errors.size(), 1u) << bad;
    EXPECT_NE(o.errors[0].find("GPUSHARE_COMPUTE"), std::string::npos) << o.errors[0];
  }
  for (const char* bad : {"0", "500us", "2s", "10"}) {
    const Options o = ParseCompute({{"GPUSHARE_COMPUTE_QUANTUM", bad}});
    ASSERT_EQ(o.errors.size(), 1u) << bad;
    EXPECT_NE(o.errors[0].find("GPUSHARE_COMPUTE_QUANTUM"), std::string::npos);
  }
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_IDLE", "10us"}}).errors.size(), 1u);
  for (const char* bad : {"50", "101%", "-1%", "%", "5.5%", "1000%", "abc%"}) {
    const Options o = ParseCompute({{"GPUSHARE_COMPUTE_EXPRESS", bad}});
    ASSERT_EQ(o.errors.size(), 1u) << bad;
    EXPECT_NE(o.errors[0].find("GPUSHARE_COMPUTE_EXPRESS"), std::string::npos) << o.errors[0];
  }
  EXPECT_EQ(ParseCompute({{"GPUSHARE_COMPUTE_STRICT", "maybe"}}).errors.size(), 1u);
}

TEST(ComputeOptions, HamiSmLimitGivesTheComputeShareUnlessOverridden) {
  EXPECT_EQ(ParseCompute({{"CUDA_DEVICE_SM_LIMIT", "30"}}).compute.all, 3000u);
  EXPECT_EQ(ParseCompute({{"CUDA_DEVICE_SM_LIMIT", "30"}, {"GPUSHARE_COMPUTE", "50%"}}).compute.all, 5000u);
  EXPECT_EQ(ParseCompute({{"CUDA_DEVICE_SM_LIMIT", "0"}}).compute.all, 0u);
  EXPECT_EQ(ParseCompute({{"CUDA_DEVICE_SM_LIMIT", "150"}}).compute.all, 0u) << "HAMi-core limits nothing at 100 or more";
  EXPECT_EQ(ParseCompute({{"CUDA_DEVICE_SM_LIMIT", "50G"}}).errors.size(), 1u);
}

}  // namespace
}  // namespace gpushare
