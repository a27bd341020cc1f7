// SPDX-License-Identifier: Apache-2.0
// Every scheduler's variable as a table: value -> limit, no limit, or refused, each row with the
// source of the expected answer. HAMi's answers are HAMi-core's (Project-HAMi/HAMi-core):
//   [parser]   get_limit_from_env, src/multiprocess/multiprocess_memory_limit.c, whose cases are
//              pinned by test/test_env_limit_parsing.c (A) and test/test_limit_env_parsing.c (B);
//   [per-dev]  do_init_device_memory_limits / do_init_device_sm_limits (same file): a device's
//              value above 0 wins, else the global one;
//   [limiter]  rate_limiter, src/multiprocess/multiprocess_utilization_watcher.c: nothing is
//              throttled at 0 or at 100 and above;
//   [policy]   set_env_utilization_switch / get_utilization_switch (multiprocess_memory_limit.c);
//   [meminfo]  cuMemGetInfo_v2, src/cuda/memory.c: the limit is capped at the device's memory;
//   [atoi]     try_create_shrreg reads CUDA_TASK_PRIORITY with atoi.
// HAMi-core reads a value it refuses as 0, "no limit"; gpushare refuses it, naming the variable.
// aliyun: pkg/gpu/nvidia/allocate.go of AliyunContainerService/gpushare-device-plugin writes
// fmt.Sprintf("%d"). KAI: pkg/scheduler/cache (createBindRequest) writes fmt.Sprintf("%.2f").
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/options.h"

namespace gpushare {
namespace {

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kDevice = 80 * kGiB;  // the devices these rows resolve on, unless a row says

using Env = std::map<std::string, std::string>;

Options Parse(const Env& env) {
  return ParseOptions([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// What a configuration comes to: refused (an error naming `variable`), no limit, or a number.
struct Outcome {
  enum Kind { kRefused, kNone, kValue } kind;
  uint64_t value = 0;
};
Outcome Refused() { return {Outcome::kRefused}; }
Outcome None() { return {Outcome::kNone}; }
Outcome Is(uint64_t v) { return {Outcome::kValue, v}; }

std::string Show(const Outcome& o) {
  return o.kind == Outcome::kRefused ? "refused" : o.kind == Outcome::kNone ? "no limit" : std::to_string(o.value);
}

struct Row {
  Env env;
  int device;        // the device index the outcome is read on
  Outcome expected;
  const char* source;
  const char* names = nullptr;  // the variable a refusal names, when not the row's first scheduler one
};

std::string Describe(const Row& row) {
  std::string out;
  for (const auto& [name, value] : row.env) out += name + "=\"" + value + "\" ";
  return out + "on device " + std::to_string(row.device) + " (" + row.source + ")";
}

// The variable a refusal must name: the first of the row's that is not ours.
std::string Named(const Row& row) {
  if (row.names != nullptr) return row.names;
  for (const auto& [name, value] : row.env)
    if (name.rfind("GPUSHARE_", 0) != 0) return name;
  return row.env.begin()->first;
}

// Memory: the limit in bytes on the row's device, kNone when the device passes through.
Outcome MemoryOutcome(const Options& o, int device, uint64_t device_bytes) {
  if (!o.errors.empty()) return Refused();
  if (!o.HasQuota(device)) return None();
  const Options::Quota q = o.ResolveQuota(device, device_bytes);
  if (!q.error.empty()) return Refused();
  return Is(q.limit_bytes);
}

// Compute: the share in basis points on the row's device, kNone when it has none.
Outcome ComputeOutcome(const Options& o, int device) {
  if (!o.errors.empty()) return Refused();
  const uint32_t share = o.compute.For(device);
  return share == 0 ? None() : Is(share);
}

void ExpectRefusalNames(const Options& o, const Row& row) {
  ASSERT_EQ(o.errors.size(), 1u) << Describe(row) << ::testing::PrintToString(o.errors);
  EXPECT_NE(o.errors[0].find(Named(row) + "=\""), std::string::npos) << o.errors[0];
}

void CheckMemory(const std::vector<Row>& rows, uint64_t device_bytes = kDevice) {
  for (const Row& row : rows) {
    const Options o = Parse(row.env);
    const Outcome got = MemoryOutcome(o, row.device, device_bytes);
    EXPECT_EQ(Show(got), Show(row.expected)) << Describe(row);
    if (row.expected.kind == Outcome::kRefused) ExpectRefusalNames(o, row);
  }
}

TEST(SchedulerGrammar, HamiMemoryLimit) {
  const char* v = "CUDA_DEVICE_MEMORY_LIMIT";
  CheckMemory({
      // A: values that already worked keep working.
      {{{v, "4G"}}, 0, Is(4 * kGiB), "[parser] A"},
      {{{v, "4g"}}, 0, Is(4 * kGiB), "[parser] A"},
      {{{v, "4096M"}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "1024K"}}, 0, Is(kMiB), "[parser] A"},
      {{{v, "4K"}}, 0, Is(4 * kKiB), "[parser] B"},
      {{{v, "4194304"}}, 0, Is(4 * kMiB), "[parser] A: no unit is bytes"},
      {{{v, "3000m"}}, 0, Is(3000 * kMiB), "[parser] A: what HAMi's device plugin writes, fmt.Sprintf(\"%vm\")"},
      // A, B: the Kubernetes and long-form units.
      {{{v, "4Gi"}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "4GB"}}, 0, Is(4 * kGiB), "[parser] A, B: binary, as HAMi-core reads it"},
      {{{v, "4GiB"}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "4gb"}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "4KB"}}, 0, Is(4 * kKiB), "[parser] A"},
      {{{v, "4Mi"}}, 0, Is(4 * kMiB), "[parser] A, B"},
      {{{v, "4Ki"}}, 0, Is(4 * kKiB), "[parser] A, B"},
      {{{v, "50KiB"}}, 0, Is(50 * kKiB), "[parser] B"},
      // A, B: blanks at either end and between number and unit.
      {{{v, "  4G  "}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "4 G"}}, 0, Is(4 * kGiB), "[parser] A, B"},
      {{{v, "4G\n"}}, 0, Is(4 * kGiB), "[parser] A: a value read from a file"},
      // A: fractions need a unit and round down to a byte.
      {{{v, "1.5G"}}, 0, Is(kGiB + kGiB / 2), "[parser] A, B"},
      {{{v, "0.5G"}}, 0, Is(kGiB / 2), "[parser] A"},
      {{{v, "1.25M"}}, 0, Is(kMiB + kMiB / 4), "[parser] A"},
      {{{v, "1.0000000005G"}}, 0, Is(kGiB), "[parser] A: below byte precision"},
      // A, B: base 10, so a leading zero is not octal.
      {{{v, "08G"}}, 0, Is(8 * kGiB), "[parser] A, B"},
      {{{v, "07G"}}, 0, Is(7 * kGiB), "[parser] B"},
      // 0 is no limit: the device passes through untouched.
      {{{v, "0"}}, 0, None(), "[parser] A, B: 0 means no limit"},
      {{{v, "0m"}}, 0, None(), "[parser] HAMi-core PR #190: 0m, which Olares writes, is no limit"},
      // Refused (HAMi-core: treated as unset, i.e. no limit; gpushare: an error naming it).
      {{{v, "4.5"}}, 0, Refused(), "[parser] A: a fraction of a byte"},
      {{{v, "1.5"}}, 0, Refused(), "[parser] B: a fraction needs a unit"},
      {{{v, "4.G"}}, 0, Refused(), "[parser] A"},
      {{{v, "4.5%"}}, 0, Refused(), "[parser] A"},
      {{{v, "0x10G"}}, 0, Refused(), "[parser] A, B: hex is not accepted"},
      {{{v, "-1"}}, 0, Refused(), "[parser] A, B: used to wrap to SIZE_MAX"},
      {{{v, "4GQ"}}, 0, Refused(), "[parser] A"},
      {{{v, "4G4"}}, 0, Refused(), "[parser] A"},
      {{{v, "abc"}}, 0, Refused(), "[parser] A, B"},
      {{{v, ""}}, 0, Refused(), "[parser] A, B read empty as unset; gpushare refuses it like every empty value"},
      {{{v, "   "}}, 0, Refused(), "[parser] A"},
      {{{v, "4Gbi"}}, 0, Refused(), "[parser] A"},
      {{{v, "50%"}}, 0, Refused(), "[parser] A, B: percent is for SM limits only"},
      {{{v, "4T"}}, 0, Refused(), "[parser] B: no T"},
      {{{v, "4Gib extra"}}, 0, Refused(), "[parser] B"},
      {{{v, "18446744073709551615G"}}, 0, Refused(), "[parser] A: overflow"},
      {{{v, "18446744073709551616"}}, 0, Refused(), "[parser] A: overflow"},
  });
}

TEST(SchedulerGrammar, HamiMemoryLimitPerDevice) {
  const char* all = "CUDA_DEVICE_MEMORY_LIMIT";
  const char* dev0 = "CUDA_DEVICE_MEMORY_LIMIT_0";
  const char* dev1 = "CUDA_DEVICE_MEMORY_LIMIT_1";
  CheckMemory({
      {{{dev0, "3000m"}}, 0, Is(3000 * kMiB), "[parser] A; [per-dev]"},
      {{{dev0, "3000m"}}, 1, None(), "[per-dev]: no value for device 1"},
      {{{dev1, "4Gi"}, {all, "2g"}}, 1, Is(4 * kGiB), "[per-dev]: the device's value wins"},
      {{{dev1, "4Gi"}, {all, "2g"}}, 0, Is(2 * kGiB), "[per-dev]: else the global one"},
      {{{dev1, "0"}, {all, "2g"}}, 1, Is(2 * kGiB), "[per-dev]: a device's 0 falls back to the global one"},
      {{{dev1, "0"}, {all, "0"}}, 1, None(), "[per-dev]: both 0 is no limit"},
      {{{dev0, "50%"}}, 0, Refused(), "[parser] A"},
      {{{dev1, "4GQ"}, {all, "2g"}}, 0, Refused(), "[parser] A: refused even where it does not apply", dev1},
  });
}

// A scheduler's limit above the device is the device; ours are taken as written.
TEST(SchedulerGrammar, ASchedulersLimitAboveTheDeviceIsTheDevice) {
  constexpr uint64_t k16GiB = 16 * kGiB;
  CheckMemory(
      {
          {{{"CUDA_DEVICE_MEMORY_LIMIT", "200g"}}, 0, Is(k16GiB), "[meminfo]"},
          {{{"CUDA_DEVICE_MEMORY_LIMIT_0", "16g"}}, 0, Is(k16GiB), "[meminfo]: equal is not capped"},
          {{{"ALIYUN_COM_GPU_MEM_CONTAINER", "200"}, {"GPUSHARE_ALIYUN_UNIT", "GiB"}}, 0, Is(k16GiB), "[meminfo], as HAMi's"},
          {{{"GPUSHARE_MEM_LIMIT", "200Gi"}}, 0, Is(200 * kGiB), "ours: as written (the ledger then refuses it)"},
      },
      k16GiB);
  const Options::Quota q = Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "200g"}}).ResolveQuota(0, k16GiB);
  EXPECT_EQ(q.request_bytes, k16GiB) << "a limit alone is the request too, capped with it";
  EXPECT_NE(q.note.find("CUDA_DEVICE_MEMORY_LIMIT=\"200g\" (214748364800 bytes) is above this device's 17179869184 bytes"),
            std::string::npos)
      << q.note;
  EXPECT_TRUE(Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "8g"}}).ResolveQuota(0, k16GiB).note.empty());
  const Options::Quota above =
      Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "200g"}, {"GPUSHARE_MEM_REQUEST", "20Gi"}}).ResolveQuota(0, k16GiB);
  EXPECT_NE(above.error.find("GPUSHARE_MEM_REQUEST=21474836480 is above CUDA_DEVICE_MEMORY_LIMIT=17179869184"),
            std::string::npos)
      << above.error;
  EXPECT_NE(above.error.find("is above this device's"), std::string::npos) << "says why the limit is smaller";
}

// With the only limit 0, the rest of the configuration is as if there were none.
TEST(SchedulerGrammar, ZeroIsAsIfUnset) {
  const Options zero = Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "0"}, {"GPUSHARE_MEM_REQUEST", "1Gi"}});
  ASSERT_TRUE(zero.errors.empty()) << zero.errors.front();
  const Options::Quota q = zero.ResolveQuota(0, kDevice);
  EXPECT_EQ(q.request_bytes, kGiB);
  EXPECT_EQ(q.limit_bytes, kGiB) << "the request alone is the limit, as with no scheduler limit";
  const Options only = Parse({{"CUDA_DEVICE_MEMORY_LIMIT", "0"}, {"CUDA_DEVICE_MEMORY_LIMIT_3", "0"}});
  for (int device : {0, 3}) EXPECT_FALSE(only.HasQuota(device)) << device;
  bool noted = false;
  for (const std::string& note : only.notes) noted |= note.find("CUDA_DEVICE_MEMORY_LIMIT=\"0\" (HAMi) is no limit") != std::string::npos;
  EXPECT_TRUE(noted) << ::testing::PrintToString(only.notes);
}

TEST(SchedulerGrammar, HamiSmLimit) {
  const char* v = "CUDA_DEVICE_SM_LIMIT";
  const std::vector<Row> rows = {
      {{{v, "50"}}, 0, Is(5000), "[parser] A, B"},
      {{{v, "50%"}}, 0, Is(5000), "[parser] A, B: percent accepted and ignored"},
      {{{v, "50 %"}}, 0, Is(5000), "[parser] A"},
      {{{v, "50.5"}}, 0, Is(5000), "[parser] B: HAMi-core keeps the whole percent"},
      {{{v, " 25\n"}}, 0, Is(2500), "[parser] A: blanks"},
      {{{v, "0"}}, 0, None(), "[parser] A, B; [limiter]: 0 is no limit"},
      {{{v, "100"}}, 0, None(), "[limiter]: 100 or more throttles nothing"},
      {{{v, "150"}}, 0, None(), "[limiter]"},
      {{{v, "-1"}}, 0, Refused(), "[parser] B"},
      {{{v, "50KiB"}}, 0, Refused(), "[parser] B: no unit"},
      {{{v, "50G"}}, 0, Refused(), "[parser] B"},
      {{{v, "50%%"}}, 0, Refused(), "[parser] A"},
      {{{v, ""}}, 0, Refused(), "gpushare refuses every empty value"},
      {{{v, "50"}, {"CUDA_DEVICE_SM_LIMIT_1", "30"}}, 1, Is(3000), "[per-dev]"},
      {{{v, "50"}, {"CUDA_DEVICE_SM_LIMIT_1", "30"}}, 0, Is(5000), "[per-dev]"},
      {{{v, "50"}, {"CUDA_DEVICE_SM_LIMIT_1", "0"}}, 1, Is(5000), "[per-dev]: 0 falls back to the global one"},
      {{{v, "50"}, {"CUDA_DEVICE_SM_LIMIT_1", "100"}}, 1, None(), "[per-dev]; [limiter]"},
      {{{"CUDA_DEVICE_SM_LIMIT_2", "25%"}}, 2, Is(2500), "[per-dev]: HAMi's DRA driver writes only these"},
      {{{"CUDA_DEVICE_SM_LIMIT_2", "25%"}}, 0, None(), "[per-dev]"},
      {{{"CUDA_DEVICE_SM_LIMIT_2", "x"}}, 0, Refused(), "[parser]"},
      {{{v, "50"}, {"GPUSHARE_COMPUTE", "20%"}}, 0, Is(2000), "ours win"},
      {{{v, "50"}, {"CUDA_DEVICE_SM_LIMIT_1", "30"}, {"GPUSHARE_COMPUTE", "20%"}}, 1, Is(2000), "ours win on every device"},
  };
  for (const Row& row : rows) {
    const Options o = Parse(row.env);
    EXPECT_EQ(Show(ComputeOutcome(o, row.device)), Show(row.expected)) << Describe(row);
    if (row.expected.kind == Outcome::kRefused) ExpectRefusalNames(o, row);
  }
}

// HAMi's default throttles a container only while another of its priority, or one of higher, is
// busy on the GPU (cmd/vGPUmonitor/feedback.go in Project-HAMi/HAMi turns the limiter off
// otherwise): a work-conserving share. force always throttles: strict. disable: no SM limit.
TEST(SchedulerGrammar, HamiCoreUtilizationPolicy) {
  struct PolicyRow {
    Env env;
    uint32_t share;
    bool strict;
    const char* source;
  };
  const char* p = "GPU_CORE_UTILIZATION_POLICY";
  const char* sm = "CUDA_DEVICE_SM_LIMIT";
  const std::vector<PolicyRow> rows = {
      {{{sm, "25"}}, 2500, false, "[policy]: unset is default"},
      {{{sm, "25"}, {p, "default"}}, 2500, false, "[policy]"},
      {{{sm, "25"}, {p, "force"}}, 2500, true, "[policy]: force"},
      {{{sm, "25"}, {p, "FORCE"}}, 2500, true, "[policy]: FORCE"},
      {{{sm, "25"}, {p, "Force"}}, 2500, false, "[policy]: strcmp, so Force is the default"},
      {{{sm, "25"}, {p, "disable"}}, 0, false, "[policy]: disable"},
      {{{sm, "25"}, {p, "DISABLE"}}, 0, false, "[policy]: DISABLE"},
      {{{sm, "25"}, {"CUDA_DEVICE_SM_LIMIT_0", "30"}, {p, "disable"}}, 0, false, "[policy]: per device too"},
      {{{sm, "25"}, {p, "force"}, {"GPUSHARE_COMPUTE_STRICT", "false"}}, 2500, false, "ours win"},
      {{{sm, "25"}, {p, "disable"}, {"GPUSHARE_COMPUTE", "40%"}}, 4000, false, "disable is HAMi's limit only"},
  };
  for (const PolicyRow& row : rows) {
    const Options o = Parse(row.env);
    ASSERT_TRUE(o.errors.empty()) << row.source << ": " << o.errors.front();
    EXPECT_EQ(o.compute.For(0), row.share) << row.source;
    EXPECT_EQ(o.compute_strict, row.strict) << row.source;
  }
  EXPECT_EQ(Parse({{sm, "x"}, {p, "disable"}}).errors.size(), 1u) << "checked even when disabled";
}

TEST(SchedulerGrammar, HamiTaskPriority) {
  const char* v = "CUDA_TASK_PRIORITY";
  struct PriorityRow {
    const char* value;
    std::optional<int32_t> priority;  // nullopt: refused
    const char* source;
  };
  const std::vector<PriorityRow> rows = {
      {"0", 0, "[atoi]: HAMi's high"},
      {"1", -1, "[atoi]: HAMi's low, its default"},
      {" 1\n", -1, "[atoi] skips leading blanks and stops at the newline"},
      {"-1", std::nullopt, "[atoi] gives -1, which HAMi's monitor cannot index: refused"},
      {"high", std::nullopt, "[atoi] gives 0 (high): refused rather than guessed"},
      {"1.0", std::nullopt, "[atoi] gives 1: refused"},
      {"", std::nullopt, "empty"},
  };
  for (const PriorityRow& row : rows) {
    const Options o = Parse({{v, row.value}});
    if (row.priority) {
      ASSERT_TRUE(o.errors.empty()) << row.value << ": " << o.errors.front();
      EXPECT_EQ(o.priority, *row.priority) << row.value << " (" << row.source << ")";
    } else {
      EXPECT_EQ(o.errors.size(), 1u) << row.value << " (" << row.source << ")";
    }
  }
}

TEST(SchedulerGrammar, AliyunMemory) {
  const char* c = "ALIYUN_COM_GPU_MEM_CONTAINER";
  const char* d = "ALIYUN_COM_GPU_MEM_DEV";
  CheckMemory({
      {{{c, "4"}, {d, "80"}}, 0, Is(4 * kGiB), "allocate.go: %d GiB, inferred from the device"},
      {{{c, "4096"}, {d, "81920"}}, 0, Is(4096 * kMiB), "allocate.go: %d MiB, inferred from the device"},
      {{{c, "0"}, {d, "80"}}, 0, Refused(), "allocate.go writes it only for a container that asked for some"},
      {{{c, "4.5"}, {d, "80"}}, 0, Refused(), "allocate.go: %d"},
      {{{c, " 4"}, {d, "80"}}, 0, Refused(), "allocate.go: %d"},
      {{{c, "4"}, {d, "0"}}, 0, Refused(), "allocate.go: the device's memory, never 0", d},
  });
}

TEST(SchedulerGrammar, KaiPortion) {
  const char* v = "GPU_PORTION";
  CheckMemory({
      {{{v, "0.50"}}, 0, Is(40 * kGiB), "cache.go: %.2f"},
      {{{v, "1.00"}}, 0, Is(80 * kGiB), "cache.go: %.2f"},
      {{{v, "0.5"}}, 0, Is(40 * kGiB), "KAI's gpu-fraction annotation as written"},
      {{{v, "0.00"}}, 0, Refused(), "no fraction pod gets 0"},
      {{{v, "1.5"}}, 0, Refused(), "above the device"},
  });
}

}  // namespace
}  // namespace gpushare

namespace gpushare {
namespace {

// HAMi's device plugin gives each container a tracker file of its own (Allocate:
// <hook>/vgpu/<uuid>.cache); HAMi-core's processes sharing it share one limit.
TEST(SchedulerGrammar, HamiSharedCacheIsTheTenant) {
  const char* v = "CUDA_DEVICE_MEMORY_SHARED_CACHE";
  EXPECT_EQ(Parse({{v, "/usr/local/vgpu/vgpu/3f1c2b7a-5d4e.cache"}}).tenant, "hami-3f1c2b7a-5d4e");
  EXPECT_EQ(Parse({{v, "/tmp/cudevshr.cache"}}).tenant, "") << "HAMi-core's default names no container";
  EXPECT_EQ(Parse({{v, "/x/odd name\x1b.cache"}}).tenant, "hami-odd_name_") << "sanitised, never refused";
  EXPECT_EQ(Parse({{v, "/usr/local/vgpu/"}}).errors.size(), 1u);
  const Options pod = Parse({{v, "/v/a.cache"}, {"POD_NAMESPACE", "ns"}, {"POD_NAME", "p"}, {"CONTAINER_NAME", "c"}});
  EXPECT_EQ(pod.tenant, "ns/p/c") << "the downward API names the container better";
  EXPECT_EQ(Parse({{v, "/v/a.cache"}, {"GPUSHARE_TENANT", "mine"}}).tenant, "mine");
}

// HAMi-core's default priority is 1 (low): unset in a HAMi container, as if 1 was written.
TEST(SchedulerGrammar, HamiDefaultPriorityIsLow) {
  const char* cache = "CUDA_DEVICE_MEMORY_SHARED_CACHE";
  EXPECT_EQ(Parse({{cache, "/v/a.cache"}}).priority, -1);
  EXPECT_EQ(Parse({{cache, "/v/a.cache"}, {"CUDA_TASK_PRIORITY", "0"}}).priority, 0);
  EXPECT_EQ(Parse({}).priority, 0) << "not a HAMi container: gpushare's default";
  EXPECT_EQ(Parse({{cache, "/v/a.cache"}, {"GPUSHARE_PRIORITY", "5"}}).priority, 5);
}

TEST(SchedulerGrammar, HamiOversubscribeIsBestEffort) {
  const char* v = "CUDA_OVERSUBSCRIBE";
  EXPECT_TRUE(Parse({{v, "true"}}).best_effort);
  EXPECT_FALSE(Parse({{v, "false"}}).best_effort);
  EXPECT_FALSE(Parse({}).best_effort);
  EXPECT_EQ(Parse({{v, "yes"}}).errors.size(), 1u) << "HAMi writes true or false";
  EXPECT_FALSE(Parse({{v, "true"}, {"GPUSHARE_BEST_EFFORT", "false"}}).best_effort);
}

}  // namespace
}  // namespace gpushare
