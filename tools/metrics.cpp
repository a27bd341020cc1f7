// SPDX-License-Identifier: Apache-2.0
#include "tools/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "src/contracts.h"
#include "src/printable.h"

namespace gpushare::metrics {
namespace {

using quota::LedgerSnapshot;
using quota::TenantSnapshot;

struct TenantMetric {
  const char* name;
  const char* type;
  const char* help;
  double (*value)(const TenantSnapshot&);
};

// One row per metric; never a made-up number.
constexpr TenantMetric kTenantMetrics[] = {
    {"gpushare_memory_used_bytes", "gauge", "Device memory the tenant holds, all its processes together.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.used_bytes); }},
    {"gpushare_memory_request_bytes", "gauge", "Device memory guaranteed to the tenant (0 when admitted best-effort).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.request_bytes); }},
    {"gpushare_memory_limit_bytes", "gauge", "The most device memory the tenant may hold.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.limit_bytes); }},
    {"gpushare_memory_burst_bytes", "gauge", "Device memory the tenant holds past its request.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.burst_bytes); }},
    {"gpushare_oom_denials_total", "counter", "Allocations refused to the tenant.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.oom_denials); }},
    {"gpushare_wait_seconds_total", "counter", "Time the tenant's allocations spent waiting for memory (wait and priority resolvers).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.wait_ns_total) / 1e9; }},
    {"gpushare_waits_total", "counter", "Waits for memory that ended, granted or timed out.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.waits); }},
    {"gpushare_terminations_total", "counter", "Times the priority resolver marked the tenant for termination.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.terminations_total); }},
    {"gpushare_compute_share_ratio", "gauge", "The tenant's compute share (GPUSHARE_COMPUTE) as a fraction of the GPU's time; 0 without one.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.compute_share_bp) / 10000.0; }},
    {"gpushare_compute_gpu_seconds_total", "counter", "GPU time the tenant received, in exclusive turns and express bursts (first launch to drained).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.compute_gpu_ns) / 1e9; }},
    {"gpushare_compute_throttled_seconds_total", "counter", "Time the tenant's launching threads waited at the compute gate.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.compute_throttled_ns) / 1e9; }},
    {"gpushare_compute_turns_total", "counter", "Turns the tenant was granted.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.compute_turns); }},
    {"gpushare_compute_express_seconds_total", "counter", "Of the GPU time, what the tenant got launching without the turn while below GPUSHARE_COMPUTE_EXPRESS of its share.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.compute_express_ns) / 1e9; }},
    {"gpushare_swaps_total", "counter", "Times the tenant's processes swapped memory out to host memory (swap resolver).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swaps_out); }},
    {"gpushare_swap_out_bytes_total", "counter", "Bytes the tenant swapped out to host memory.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swap_out_bytes); }},
    {"gpushare_swap_out_seconds_total", "counter", "Time the tenant spent swapping out (gate, drain, copy, release).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swap_out_ns) / 1e9; }},
    {"gpushare_swap_ins_total", "counter", "Times the tenant's processes swapped memory back in.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swaps_in); }},
    {"gpushare_swap_in_bytes_total", "counter", "Bytes the tenant swapped back in.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swap_in_bytes); }},
    {"gpushare_swap_in_seconds_total", "counter", "Time the tenant spent swapping in (mapping and copying; waiting excluded).",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swap_in_ns) / 1e9; }},
    {"gpushare_swapped_out_bytes", "gauge", "The tenant's bytes in host memory now.",
     [](const TenantSnapshot& t) { return static_cast<double>(t.swapped_out_bytes); }},
    {"gpushare_processes", "gauge", "Live processes of the tenant on the device.",
     [](const TenantSnapshot& t) {
       return static_cast<double>(std::count_if(t.processes.begin(), t.processes.end(), [](const auto& p) { return p.alive; }));
     }},
};

struct DeviceMetric {
  const char* name;
  const char* type;
  const char* help;
  double (*value)(const LedgerSnapshot&);
};

constexpr DeviceMetric kDeviceMetrics[] = {
    {"gpushare_device_memory_total_bytes", "gauge", "The device's physical memory.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.total_bytes); }},
    {"gpushare_device_memory_usable_bytes", "gauge", "Device memory the tenants share.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.usable_bytes); }},
    {"gpushare_device_memory_requested_bytes", "gauge", "Sum of the tenants' requests.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.sum_request_bytes); }},
    {"gpushare_device_memory_used_bytes", "gauge", "Sum of the tenants' use.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.sum_used_bytes); }},
    {"gpushare_device_burst_pool_free_bytes", "gauge", "Memory no tenant is guaranteed and none is bursting into.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.burst_pool_free_bytes); }},
    {"gpushare_device_tenants", "gauge", "Tenants in the device's ledger.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.tenants.size()); }},
    {"gpushare_ledger_repairs_total", "counter", "Recoveries of the ledger's lock from a process that died holding it.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.repairs); }},
    {"gpushare_reaped_processes_total", "counter", "Dead processes whose memory the ledger released.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.reaped_processes); }},
    {"gpushare_device_rejoined_processes", "gauge", "Live processes that carried their memory into this ledger from a ledger file truncated, overwritten, removed or replaced under them.",
     [](const LedgerSnapshot& l) { return static_cast<double>(l.rejoined_processes); }},
};

std::string TenantLabels(const LedgerSnapshot& l, const TenantSnapshot& t) {
  std::string labels = fmt::format("device_uuid=\"{}\",tenant=\"{}\"", EscapeLabelValue(l.uuid), EscapeLabelValue(t.name));
  if (const std::optional<PodIdentity> pod = SplitPodTenantName(t.name))
    labels += fmt::format(",namespace=\"{}\",pod=\"{}\",container=\"{}\"", EscapeLabelValue(pod->ns),
                          EscapeLabelValue(pod->pod), EscapeLabelValue(pod->container));
  return labels;
}

}  // namespace

// Integers exactly (up to 2^53, every byte count of a GPU), anything else in shortest form.
std::string FormatValue(double v) {
  if (std::isfinite(v) && v >= 0 && v < 9007199254740992.0 && v == std::floor(v))
    return fmt::format("{}", static_cast<uint64_t>(v));
  return fmt::format("{}", v);
}

void AppendFamily(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

bool ParseNameSet(std::string_view text, NameSet* out) {
  if (text == "gpushare") *out = NameSet::kGpushare;
  else if (text == "hami") *out = NameSet::kHami;
  else if (text == "both") *out = NameSet::kBoth;
  else return false;
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : Printable(value)) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

namespace {

void RenderGpushare(std::string& out, const std::vector<LedgerSnapshot>& ledgers, size_t unreadable) {
  for (const TenantMetric& m : kTenantMetrics) {
    AppendFamily(out, m.name, m.type, m.help);
    for (const LedgerSnapshot& l : ledgers)
      for (const TenantSnapshot& t : l.tenants)
        fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", m.name, TenantLabels(l, t), FormatValue(m.value(t)));
  }
  for (const DeviceMetric& m : kDeviceMetrics) {
    AppendFamily(out, m.name, m.type, m.help);
    for (const LedgerSnapshot& l : ledgers)
      fmt::format_to(std::back_inserter(out), "{}{{device_uuid=\"{}\"}} {}\n", m.name, EscapeLabelValue(l.uuid),
                     FormatValue(m.value(l)));
  }
  AppendFamily(out, "gpushare_ledger_errors", "gauge", "Ledger files that could not be read (corrupt, foreign, another version).");
  fmt::format_to(std::back_inserter(out), "gpushare_ledger_errors {}\n", unreadable);
}

}  // namespace

std::string Render(const std::vector<LedgerSnapshot>& ledgers, size_t unreadable, const RenderOptions& options) {
  std::string out;
  if (options.names != NameSet::kHami) RenderGpushare(out, ledgers, unreadable);
  if (options.names != NameSet::kGpushare) RenderHami(out, ledgers, options.node);
  return out;
}

}  // namespace gpushare::metrics
