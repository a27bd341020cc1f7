// SPDX-License-Identifier: Apache-2.0
// Prometheus text exposition (format 0.0.4) of the ledgers, for gpushare-exporter. Names and
// labels follow Prometheus' conventions and stay close to HAMi's: per tenant
// gpushare_memory_{used,request,limit,burst}_bytes, gpushare_oom_denials_total, ...; per GPU
// gpushare_device_*. Labels: device_uuid, tenant, and namespace/pod/container when the tenant
// name is "<namespace>/<pod>/<container>" (what deploy/'s manifests give it, see src/contracts.inc).
//
// With --names hami (or both) the exporter also serves HAMi's vGPUmonitor names and labels
// (tools/metrics_hami.cpp), so dashboards and alerts built for HAMi read gpushare's ledgers.
//
// How to add a metric: one row in kTenantMetrics or kDeviceMetrics (tools/metrics.cpp), or in
// kHamiContainerMetrics / kHamiDeviceMetrics (tools/metrics_hami.cpp) for a HAMi name.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "quota/ledger.h"

namespace gpushare::metrics {

// Which names the exposition carries: gpushare's own, HAMi's, or both.
enum class NameSet { kGpushare, kHami, kBoth };
// "gpushare", "hami" or "both"; false for anything else.
bool ParseNameSet(std::string_view text, NameSet* out);

struct RenderOptions {
  NameSet names = NameSet::kGpushare;
  std::string node;  // HAMi's `node` label (the exporter's $NODE_NAME); empty: no such label
};

// Every metric of every ledger; `unreadable` ledger files are counted in gpushare_ledger_errors.
std::string Render(const std::vector<quota::LedgerSnapshot>& ledgers, size_t unreadable,
                   const RenderOptions& options = {});

// HAMi's names over the ledgers (tools/metrics_hami.cpp), appended to `out`.
void RenderHami(std::string& out, const std::vector<quota::LedgerSnapshot>& ledgers, const std::string& node);

// One family's "# HELP" and "# TYPE" lines.
void AppendFamily(std::string& out, const char* name, const char* type, const char* help);

// A sample's value: integers exactly (up to 2^53), anything else in shortest form.
std::string FormatValue(double v);

// A label value for the exposition format: made printable ASCII first (Printable,
// src/printable.h: a ledger may hold any bytes in a name, and the format wants valid UTF-8 without
// raw control bytes), then \ and " escaped.
std::string EscapeLabelValue(std::string_view value);

}  // namespace gpushare::metrics
