// SPDX-License-Identifier: Apache-2.0
// Prometheus text exposition (format 0.0.4) of the ledgers, for gpushare-exporter. Names and
// labels follow Prometheus' conventions and stay close to HAMi's: per tenant
// gpushare_memory_{used,request,limit,burst}_bytes, gpushare_oom_denials_total, ...; per GPU
// gpushare_device_*. Labels: device_uuid, tenant, and namespace/pod/container when the tenant
// name is "<namespace>/<pod>/<container>" (what deploy/'s manifests give it, see src/contracts.inc).
//
// How to add a metric: one row in kTenantMetrics or kDeviceMetrics (tools/metrics.cpp).
#pragma once
#include <string>
#include <vector>

#include "quota/ledger.h"

namespace gpushare::metrics {

// Every metric of every ledger; `unreadable` ledger files are counted in gpushare_ledger_errors.
std::string Render(const std::vector<quota::LedgerSnapshot>& ledgers, size_t unreadable);

// A label value for the exposition format: made printable ASCII first (Printable,
// src/printable.h: a ledger may hold any bytes in a name, and the format wants valid UTF-8 without
// raw control bytes), then \ and " escaped.
std::string EscapeLabelValue(std::string_view value);

}  // namespace gpushare::metrics
