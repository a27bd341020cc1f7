// SPDX-License-Identifier: Apache-2.0
// HAMi's names (tools/metrics_hami.cpp): HAMi's vGPUmonitor names, labels and units over the
// ledgers, only where the ledger has the number, and the exporter's --names flag.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "quota/ledger.h"
#include "tests/tools/command_output.h"
#include "tests/tools/exposition.h"
#include "tools/metrics.h"

namespace gpushare::metrics {
namespace {

using exposition::FindWith;
using exposition::ParseExposition;
using exposition::Sample;
using quota::LedgerSnapshot;
using quota::ProcessSnapshot;
using quota::TenantSnapshot;

constexpr uint64_t kMiB = 1ull << 20;
constexpr const char* kUuidA = "GPU-12345678-9abc-def0-0123-456789abcdef";
constexpr const char* kUuidB = "GPU-fedcba98-7654-3210-fedc-ba9876543210";

TenantSnapshot PodTenant(const std::string& name, uint64_t used_mib, uint64_t limit_mib) {
  TenantSnapshot t;
  t.name = name;
  t.used_bytes = used_mib * kMiB;
  t.request_bytes = used_mib * kMiB / 2;
  t.limit_bytes = limit_mib * kMiB;
  t.processes = {ProcessSnapshot{}};
  t.processes[0].alive = true;
  return t;
}

TEST(MetricsHami, APodTenantGetsHamisNamesLabelsAndUnits) {
  LedgerSnapshot l;
  l.uuid = kUuidA;
  l.total_bytes = 1000 * kMiB;
  l.sum_used_bytes = 300 * kMiB;
  l.hidden_bytes = 7 * kMiB;
  TenantSnapshot pod = PodTenant("team-a/serve-7f9c/vllm", 300, 600);
  pod.compute_share_bp = 3000;
  pod.compute_recent_window_ns = 8'000'000'000;
  pod.compute_recent_gpu_ns = 2'000'000'000;
  pod.idle_ns = 1'500'000'000;
  TenantSnapshot plain = PodTenant("batch-job", 10, 20);  // not a Kubernetes container
  l.tenants = {pod, plain};

  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(Render({l}, 0, {NameSet::kHami, "node-a"}), &types);
  for (const char* name : {"hami_vgpu_memory_used_bytes", "hami_vgpu_memory_limit_bytes", "hami_container_device_memory_bytes",
                           "hami_container_device_utilization_ratio", "hami_container_last_kernel_elapsed_seconds",
                           "hami_host_gpu_memory_used_bytes"})
    EXPECT_EQ(types[name], "gauge") << name;
  for (const auto& [name, type] : types) EXPECT_EQ(name.rfind("hami_", 0), 0u) << "--names hami serves only HAMi's: " << name;

  const std::map<std::string, std::string> labels = {{"namespace", "team-a"}, {"pod", "serve-7f9c"}, {"container", "vllm"},
                                                     {"vdevice_index", "0"}, {"device_uuid", kUuidA}, {"zone", "vGPU"}};
  const Sample* used = FindWith(samples, "hami_vgpu_memory_used_bytes", labels);
  ASSERT_NE(used, nullptr);
  EXPECT_EQ(used->value, 300.0 * kMiB);
  EXPECT_EQ(used->labels.size(), labels.size()) << "HAMi's label set, no other";
  EXPECT_EQ(FindWith(samples, "hami_vgpu_memory_limit_bytes", labels)->value, 600.0 * kMiB);
  EXPECT_EQ(FindWith(samples, "hami_container_device_memory_bytes", labels)->value, 300.0 * kMiB);
  EXPECT_DOUBLE_EQ(FindWith(samples, "hami_container_device_utilization_ratio", labels)->value, 25.0)
      << "a percent, as HAMi's: 2 s of GPU time in 8 s";
  EXPECT_DOUBLE_EQ(FindWith(samples, "hami_container_last_kernel_elapsed_seconds", labels)->value, 1.5);

  const Sample* host = FindWith(samples, "hami_host_gpu_memory_used_bytes", {{"device_uuid", kUuidA}});
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->value, 307.0 * kMiB) << "tenants' use plus memory held outside gpushare";
  EXPECT_EQ(host->labels.at("node"), "node-a");
  EXPECT_EQ(host->labels.at("zone"), "vGPU");

  size_t container_series = 0;
  for (const Sample& s : samples) container_series += s.labels.count("pod");
  EXPECT_EQ(container_series, 5u) << "one series per metric for the pod, none for 'batch-job'";
}

TEST(MetricsHami, NoSampleWhereTheLedgerHasNoNumber) {
  LedgerSnapshot l;
  l.uuid = kUuidA;
  TenantSnapshot unshared = PodTenant("ns/p/c", 10, 20);  // no compute share: its GPU time is not measured
  unshared.compute_recent_window_ns = 8'000'000'000;
  TenantSnapshot gone = PodTenant("ns/p/d", 10, 20);
  gone.processes.clear();  // no process left: no activity clock
  gone.compute_share_bp = 5000;
  l.tenants = {unshared, gone};
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(Render({l}, 0, {NameSet::kHami, ""}), &types);
  EXPECT_EQ(FindWith(samples, "hami_container_device_utilization_ratio", {{"container", "c"}}), nullptr);
  EXPECT_EQ(FindWith(samples, "hami_container_device_utilization_ratio", {{"container", "d"}}), nullptr)
      << "a share but no window yet";
  EXPECT_NE(FindWith(samples, "hami_container_last_kernel_elapsed_seconds", {{"container", "c"}}), nullptr);
  EXPECT_EQ(FindWith(samples, "hami_container_last_kernel_elapsed_seconds", {{"container", "d"}}), nullptr);
  EXPECT_EQ(FindWith(samples, "hami_host_gpu_memory_used_bytes", {})->labels.count("node"), 0u)
      << "no $NODE_NAME, no node label";
}

TEST(MetricsHami, ATenantsDevicesAreNumberedInUuidOrder) {
  LedgerSnapshot a, b;
  a.uuid = kUuidA;
  b.uuid = kUuidB;
  a.tenants = {PodTenant("ns/two-gpus/main", 10, 20)};
  b.tenants = {PodTenant("ns/one-gpu/main", 10, 20), PodTenant("ns/two-gpus/main", 30, 40)};
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(Render({b, a}, 0, {NameSet::kHami, ""}), &types);
  EXPECT_EQ(FindWith(samples, "hami_vgpu_memory_used_bytes", {{"pod", "two-gpus"}, {"device_uuid", kUuidA}})->labels.at("vdevice_index"), "0");
  EXPECT_EQ(FindWith(samples, "hami_vgpu_memory_used_bytes", {{"pod", "two-gpus"}, {"device_uuid", kUuidB}})->labels.at("vdevice_index"), "1");
  EXPECT_EQ(FindWith(samples, "hami_vgpu_memory_used_bytes", {{"pod", "one-gpu"}})->labels.at("vdevice_index"), "0");
}

TEST(MetricsHami, EachNameSetServesItsOwnFamiliesOnce) {
  LedgerSnapshot l;
  l.uuid = kUuidA;
  l.tenants = {PodTenant("ns/pod/main", 10, 20)};
  for (const NameSet names : {NameSet::kGpushare, NameSet::kHami, NameSet::kBoth}) {
    std::map<std::string, std::string> types;  // ParseExposition fails a family typed twice
    const std::vector<Sample> samples = ParseExposition(Render({l}, 0, {names, ""}), &types);
    EXPECT_EQ(types.count("gpushare_memory_used_bytes"), names == NameSet::kHami ? 0u : 1u);
    EXPECT_EQ(types.count("gpushare_ledger_errors"), names == NameSet::kHami ? 0u : 1u);
    EXPECT_EQ(types.count("hami_vgpu_memory_used_bytes"), names == NameSet::kGpushare ? 0u : 1u);
  }
  EXPECT_EQ(Render({l}, 0), Render({l}, 0, {NameSet::kGpushare, "node-a"})) << "gpushare's names by default";
}

TEST(MetricsHami, NameSetsParse) {
  NameSet names = NameSet::kGpushare;
  EXPECT_TRUE(ParseNameSet("hami", &names));
  EXPECT_EQ(names, NameSet::kHami);
  EXPECT_TRUE(ParseNameSet("both", &names));
  EXPECT_EQ(names, NameSet::kBoth);
  EXPECT_TRUE(ParseNameSet("gpushare", &names));
  EXPECT_EQ(names, NameSet::kGpushare);
  for (const char* bad : {"", "HAMI", "hami,gpushare", "all"}) EXPECT_FALSE(ParseNameSet(bad, &names)) << bad;
}

TEST(GpushareExporter, RefusesAnUnknownNameSet) {
  const auto run = ::gpushare::testing::RunCommand(std::string(GS_EXPORTER_PATH) + " --names hami2 2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.out.find("--names \"hami2\" is not valid (gpushare, hami or both)"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace gpushare::metrics
