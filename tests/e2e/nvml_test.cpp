// SPDX-License-Identifier: Apache-2.0
// NVML under the library, against the fake libnvidia-ml.so.1 (tests/fake_nvml) and, for the
// tenants' own figures, the fake driver: a device with a quota shows it as its total, the
// tenant's use as used, and only the tenant's processes; reached by link, dlsym and dlopen.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kMiB = 1ll << 20;
constexpr long long kGiB = 1ll << 30;
constexpr int kNvmlNoPermission = 4;

std::vector<std::string> NvmlEnv(std::vector<std::string> env) {
  env.insert(env.begin(), {"LD_LIBRARY_PATH=" GS_FAKE_DIR ":" GS_FAKE_NVML_DIR, "GPUSHARE_FAKE_DEVICES=16Gi,8Gi"});
  return e2e::PreloadEnv(env);
}

e2e::ClientResult Nvml(const std::string& mode, const std::vector<std::string>& env) {
  return e2e::RunProgram({GS_NVML_CLIENT_PATH, mode}, NvmlEnv(env));
}

std::string Str(const e2e::ClientResult& r, const std::string& key) {
  auto it = r.values.find(key);
  if (it == r.values.end()) return "absent";
  std::string v = it->second;
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  return v;
}

bool InInitialPidNamespace() {
  char target[64] = {};
  return readlink("/proc/self/ns/pid", target, sizeof target - 1) > 0 && std::string(target) == "pid:[4026531836]";
}

class NvmlEveryWay : public ::testing::TestWithParam<std::string> {};

TEST_P(NvmlEveryWay, WithoutAQuotaEverythingPassesThrough) {
  const auto r = Nvml(GetParam(), {"GPUSHARE_FAKE_NVML_USED=3Gi", "GPUSHARE_FAKE_NVML_PROCESSES=0:4242:1Gi,0:4343:2Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("missing"), std::string::npos) << r.out;
  EXPECT_EQ(r.Int("dev0_v1_total"), 16 * kGiB);
  EXPECT_EQ(r.Int("dev0_v1_used"), 3 * kGiB);
  EXPECT_EQ(r.Int("dev0_v2_total"), 16 * kGiB);
  for (const char* key : {"dev0_procs_v1", "dev0_procs_v2", "dev0_procs_v3", "dev0_mps_v3", "dev0_detail"})
    EXPECT_EQ(Str(r, key), "4242,4343") << key;
}

TEST_P(NvmlEveryWay, TheLimitIsTheTotalAndFreeIsCappedByThePhysicalFree) {
  const auto r = Nvml(GetParam(), {"GPUSHARE_MEM_LIMIT=4Gi", "GPUSHARE_FAKE_NVML_USED=10Gi,7Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* v : {"v1", "v2"}) {
    const std::string d0 = std::string("dev0_") + v, d1 = std::string("dev1_") + v;
    EXPECT_EQ(r.Int(d0 + "_rc"), 0) << r.err;
    EXPECT_EQ(r.Int(d0 + "_total"), 4 * kGiB) << v;
    EXPECT_EQ(r.Int(d0 + "_used"), 0) << "the tenant holds nothing yet; other tenants' use is not its";
    EXPECT_EQ(r.Int(d0 + "_free"), 4 * kGiB);
    EXPECT_EQ(r.Int(d1 + "_total"), 4 * kGiB);
    EXPECT_EQ(r.Int(d1 + "_free"), 1 * kGiB) << "only 1 GiB is physically free on device 1";
  }
}

TEST_P(NvmlEveryWay, OtherTenantsProcessesAreHidden) {
  const auto r = Nvml(GetParam(), {"GPUSHARE_MEM_LIMIT=4Gi", "GPUSHARE_FAKE_NVML_PROCESSES=0:4242:1Gi,0:4343:2Gi"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* key : {"dev0_procs_v1", "dev0_procs_v2", "dev0_procs_v3", "dev0_mps_v3", "dev0_detail"}) {
    EXPECT_EQ(Str(r, key), "none") << key;
    EXPECT_EQ(Str(r, std::string(key) + "_probe_count"), "0") << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Preload, NvmlEveryWay, ::testing::Values("link", "dlsym", "dlopen"));

TEST(Nvml, SchedulerContractsAreShownPerDevice) {
  const auto hami = Nvml("dlopen", {"CUDA_DEVICE_MEMORY_LIMIT_0=3000m"});
  EXPECT_EQ(hami.Int("dev0_v2_total"), 3000 * kMiB) << hami.err;
  EXPECT_EQ(hami.Int("dev1_v2_total"), 8 * kGiB) << "no limit on device 1: passed through";
  const auto kai = Nvml("dlopen", {"GPU_PORTION=0.25"});
  EXPECT_EQ(kai.Int("dev0_v2_total"), 4 * kGiB) << kai.err;
  EXPECT_EQ(kai.Int("dev1_v2_total"), 2 * kGiB);
  const auto aliyun = Nvml("dlopen", {"GPUSHARE_FAKE_DEVICES=16Gi", "ALIYUN_COM_GPU_MEM_CONTAINER=5", "ALIYUN_COM_GPU_MEM_DEV=16"});
  EXPECT_EQ(aliyun.Int("dev0_v2_total"), 5 * kGiB) << aliyun.err;
  const auto visible = Nvml("dlopen", {"GPUSHARE_MEM_LIMIT_0=1Gi", "CUDA_VISIBLE_DEVICES=1"});
  EXPECT_EQ(visible.Int("dev1_v2_total"), kGiB) << "CUDA's device 0 is NVML's device 1";
  EXPECT_EQ(visible.Int("dev0_v2_total"), 16 * kGiB) << "invisible to CUDA: passed through";
}

TEST(Nvml, ABadValueOrAnUnresolvableOneFailsClosed) {
  const auto bad = Nvml("link", {"GPUSHARE_MEM_LIMIT=8GB?"});
  EXPECT_EQ(bad.Int("dev0_v1_rc"), kNvmlNoPermission) << bad.out;
  EXPECT_EQ(bad.Int("dev0_procs_v3_rc"), kNvmlNoPermission);
  EXPECT_NE(bad.err.find("GPUSHARE_MEM_LIMIT=\"8GB?\""), std::string::npos) << bad.err;
  const auto aliyun = Nvml("link", {"ALIYUN_COM_GPU_MEM_CONTAINER=5", "ALIYUN_COM_GPU_MEM_DEV=16"});
  EXPECT_EQ(aliyun.Int("dev0_v1_total"), 5 * kGiB) << aliyun.err;
  EXPECT_EQ(aliyun.Int("dev1_v1_rc"), kNvmlNoPermission) << "16 is neither GiB nor MiB of the 8 GiB device";
  EXPECT_NE(aliyun.err.find("ALIYUN_COM_GPU_MEM_DEV=16"), std::string::npos) << aliyun.err;
}

// Two tenants hold memory through CUDA; each one's nvidia-smi sees its own use and processes.
TEST(Nvml, EachTenantSeesItsOwnUseAndProcesses) {
  const std::string dir = e2e::ScratchDir() + "/nvml-tenants";
  auto tenant_env = [&](const std::string& name, std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + name, "GPUSHARE_LEDGER_DIR=" + dir, "GPUSHARE_FAKE_DEVICES=16Gi"});
    return extra;
  };
  auto alpha = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(kGiB)},
                                 e2e::PreloadEnv(tenant_env("alpha", {"GPUSHARE_MEM_REQUEST=2Gi", "GPUSHARE_MEM_LIMIT=6Gi"})));
  auto beta = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(512 * kMiB)},
                                e2e::PreloadEnv(tenant_env("beta", {"GPUSHARE_MEM_LIMIT=3Gi"})));
  ASSERT_EQ(e2e::WaitForValue(alpha, "held"), kGiB);
  ASSERT_EQ(e2e::WaitForValue(beta, "held"), 512 * kMiB);
  const std::string processes = "GPUSHARE_FAKE_NVML_PROCESSES=0:" + std::to_string(alpha.pid) + ":1Gi,0:" +
                                std::to_string(beta.pid) + ":512Mi,0:1:9Gi";

  // No GPUSHARE_MEM_LIMIT here: the tenant's quota and use come from the ledger.
  const auto a = Nvml("dlopen", tenant_env("alpha", {processes, "GPUSHARE_FAKE_NVML_USED=2Gi"}));
  EXPECT_EQ(a.Int("dev0_v1_total"), 6 * kGiB) << a.err;
  EXPECT_EQ(a.Int("dev0_v1_used"), kGiB);
  EXPECT_EQ(a.Int("dev0_v1_free"), 5 * kGiB);
  const auto a_request = Nvml("link", tenant_env("alpha", {processes, "GPUSHARE_MEMINFO_TOTAL=request"}));
  EXPECT_EQ(a_request.Int("dev0_v2_total"), 2 * kGiB);
  const auto b = Nvml("link", tenant_env("beta", {processes}));
  EXPECT_EQ(b.Int("dev0_v2_total"), 3 * kGiB) << b.err;
  EXPECT_EQ(b.Int("dev0_v2_used"), 512 * kMiB);
  const auto admin = Nvml("link", {"GPUSHARE_LEDGER_DIR=" + dir, "GPUSHARE_FAKE_DEVICES=16Gi", processes});
  EXPECT_EQ(Str(admin, "dev0_procs_v3"), std::to_string(alpha.pid) + "," + std::to_string(beta.pid) + ",1")
      << "no quota here: everything";
  if (InInitialPidNamespace()) {
    EXPECT_EQ(Str(a, "dev0_procs_v3"), std::to_string(alpha.pid));
    EXPECT_EQ(Str(a, "dev0_detail"), std::to_string(alpha.pid));
    EXPECT_EQ(Str(a, "dev0_procs_v1_used"), std::to_string(kGiB));
    EXPECT_EQ(Str(b, "dev0_procs_v2"), std::to_string(beta.pid));
    EXPECT_EQ(Str(b, "dev0_procs_v3_probe_rc"), "7") << "a count probe is told how many of its own there are";
    EXPECT_EQ(Str(b, "dev0_procs_v3_probe_count"), "1");
  } else {
    EXPECT_EQ(Str(a, "dev0_procs_v3"), "none") << "NVML's pids cannot be attributed from a nested PID namespace";
  }
  e2e::KillProgram(alpha);
  const auto after = Nvml("link", tenant_env("alpha", {processes}));
  EXPECT_EQ(Str(after, "dev0_procs_v3"), "none") << "a dead process is no longer the tenant's";
  e2e::KillProgram(beta);
}

TEST(Nvml, ACorruptLedgerFailsClosedByName) {
  const std::string dir = e2e::ScratchDir() + "/nvml-corrupt";
  const auto first = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                     e2e::PreloadEnv({"GPUSHARE_MEM_LIMIT=1Gi", "GPUSHARE_LEDGER_DIR=" + dir, "GPUSHARE_FAKE_DEVICES=16Gi"}));
  ASSERT_EQ(first.Int("init_rc"), 0) << first.err;
  const std::string path = dir + "/gpushare-6773666b000000000000000000000000.ledger";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << path;
    f.write("NOTALEDGER", 10);
  }
  const auto r = Nvml("link", {"GPUSHARE_MEM_LIMIT=1Gi", "GPUSHARE_LEDGER_DIR=" + dir, "GPUSHARE_FAKE_DEVICES=16Gi"});
  EXPECT_EQ(r.Int("dev0_v1_rc"), kNvmlNoPermission) << r.out;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

}  // namespace
