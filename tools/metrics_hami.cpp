// SPDX-License-Identifier: Apache-2.0
// HAMi's names (gpushare-exporter --names hami|both): the gauges of HAMi's vGPUmonitor whose
// meaning the ledgers carry, with HAMi's labels, so that a dashboard or an alert written for HAMi
// returns the same kind of number over gpushare. Names, labels and units are those of HAMi's
// cmd/vGPUmonitor/metrics.go (Project-HAMi/HAMi); the README's Metrics section lists the names
// left out and why. Every HAMi series is a gauge and carries zone="vGPU" (HAMi registers its
// collector through prometheus.WrapRegistererWith with that zone).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "src/contracts.h"
#include "tools/metrics.h"

namespace gpushare::metrics {
namespace {

using quota::LedgerSnapshot;
using quota::TenantSnapshot;

constexpr const char* kHamiZone = "vGPU";

// Per container (a tenant named "<namespace>/<pod>/<container>") and device. nullopt: no sample,
// where the ledger has no such number (HAMi too sends none without it).
struct HamiContainerMetric {
  const char* name;
  const char* help;
  std::optional<double> (*value)(const TenantSnapshot&);
};

constexpr HamiContainerMetric kHamiContainerMetrics[] = {
    {"hami_vgpu_memory_used_bytes", "Device memory the container holds, all its processes together (gpushare's used bytes).",
     [](const TenantSnapshot& t) -> std::optional<double> { return static_cast<double>(t.used_bytes); }},
    {"hami_vgpu_memory_limit_bytes", "The most device memory the container may hold (gpushare's limit).",
     [](const TenantSnapshot& t) -> std::optional<double> { return static_cast<double>(t.limit_bytes); }},
    {"hami_container_device_memory_bytes", "Device memory the container holds (the same value as hami_vgpu_memory_used_bytes, as in HAMi).",
     [](const TenantSnapshot& t) -> std::optional<double> { return static_cast<double>(t.used_bytes); }},
    // HAMi's value is a percent (0-100) despite the name: NVML's SM utilization of the
    // container's processes. Ours: the share of wall time the tenant held the GPU (turns and
    // express bursts, first launch to drained) over the compute share's recent 5-10 s window.
    {"hami_container_device_utilization_ratio", "Percent (0-100) of the GPU's time the container held over the last 5-10 s; only for containers with a compute share (GPUSHARE_COMPUTE).",
     [](const TenantSnapshot& t) -> std::optional<double> {
       if (t.compute_share_bp == 0 || t.compute_recent_window_ns == 0) return std::nullopt;
       return 100.0 * static_cast<double>(t.compute_recent_gpu_ns) / static_cast<double>(t.compute_recent_window_ns);
     }},
    {"hami_container_last_kernel_elapsed_seconds", "Seconds since the container's last kernel launch, copy or allocation (gpushare's idle clock, 0.1 s resolution).",
     [](const TenantSnapshot& t) -> std::optional<double> {
       if (t.processes.empty()) return std::nullopt;  // no activity recorded
       return static_cast<double>(t.idle_ns) / 1e9;
     }},
};

struct HamiDeviceMetric {
  const char* name;
  const char* help;
  double (*value)(const LedgerSnapshot&);
};

// HAMi reads NVML's used memory; the exporter reads only the ledger (no driver, no GPU), whose
// figure is what gpushare's tenants hold plus memory last seen held outside gpushare.
constexpr HamiDeviceMetric kHamiDeviceMetrics[] = {
    {"hami_host_gpu_memory_used_bytes", "Device memory in use on the GPU as its ledger sees it: gpushare tenants' use plus memory seen held outside gpushare.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.sum_used_bytes + l.hidden_bytes); }},
};

struct ContainerRow {
  const LedgerSnapshot* ledger;
  const TenantSnapshot* tenant;
  PodIdentity pod;
  int vdevice_index;
};

// HAMi numbers a container's devices 0, 1, ... as the container sees them. The ledgers do not
// record CUDA ordinals, so a tenant's devices are numbered in the order of their UUIDs: 0 for
// the usual one-GPU pod, as in HAMi.
std::vector<ContainerRow> ContainerRows(const std::vector<LedgerSnapshot>& ledgers) {
  std::vector<const LedgerSnapshot*> by_uuid;
  by_uuid.reserve(ledgers.size());
  for (const LedgerSnapshot& l : ledgers) by_uuid.push_back(&l);
  std::stable_sort(by_uuid.begin(), by_uuid.end(), [](const auto* a, const auto* b) { return a->uuid < b->uuid; });
  std::map<std::string, int> devices_seen;  // tenant name -> its devices so far
  std::vector<ContainerRow> rows;
  for (const LedgerSnapshot* l : by_uuid) {
    for (const TenantSnapshot& t : l->tenants) {
      std::optional<PodIdentity> pod = SplitPodTenantName(t.name);
      if (!pod) continue;  // not a Kubernetes container: HAMi's labels cannot name it
      rows.push_back({l, &t, std::move(*pod), devices_seen[t.name]++});
    }
  }
  return rows;
}

}  // namespace

void RenderHami(std::string& out, const std::vector<LedgerSnapshot>& ledgers, const std::string& node) {
  const std::vector<ContainerRow> rows = ContainerRows(ledgers);
  for (const HamiContainerMetric& m : kHamiContainerMetrics) {
    AppendFamily(out, m.name, "gauge", m.help);
    for (const ContainerRow& r : rows) {
      const std::optional<double> v = m.value(*r.tenant);
      if (!v) continue;
      fmt::format_to(std::back_inserter(out),
                     "{}{{namespace=\"{}\",pod=\"{}\",container=\"{}\",vdevice_index=\"{}\",device_uuid=\"{}\",zone=\"{}\"}} {}\n",
                     m.name, EscapeLabelValue(r.pod.ns), EscapeLabelValue(r.pod.pod), EscapeLabelValue(r.pod.container),
                     r.vdevice_index, EscapeLabelValue(r.ledger->uuid), kHamiZone, FormatValue(*v));
    }
  }
  const std::string node_label = node.empty() ? "" : fmt::format("node=\"{}\",", EscapeLabelValue(node));
  for (const HamiDeviceMetric& m : kHamiDeviceMetrics) {
    AppendFamily(out, m.name, "gauge", m.help);
    for (const LedgerSnapshot& l : ledgers)
      fmt::format_to(std::back_inserter(out), "{}{{{}device_uuid=\"{}\",zone=\"{}\"}} {}\n", m.name, node_label,
                     EscapeLabelValue(l.uuid), kHamiZone, FormatValue(m.value(l)));
  }
}

}  // namespace gpushare::metrics
