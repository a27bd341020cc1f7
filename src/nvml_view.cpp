// SPDX-License-Identifier: Apache-2.0
#include "src/nvml_view.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "quota/ledger.h"
#include "quota/tenant_identity.h"
#include "src/nvml_real.h"
#include "src/options.h"
#include "src/runtime.h"

namespace gpushare {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Said once per process: every NVML memory query fails closed until the ledger is fixed.
void ReportLedgerError(const std::string& error) {
  static std::once_flag once;
  std::call_once(once, [&] {
    fmt::print(stderr, "gpushare: {}; NVML memory queries will fail until it is fixed\n", error);
    std::fflush(stderr);
  });
}

const std::string& TenantName(const Options& options) {
  static const std::string fallback = quota::DefaultTenantName();
  return options.tenant.empty() ? fallback : options.tenant;
}

// The tenant's entry in this GPU's ledger. False with view.status set when the ledger is unusable.
bool ReadTenantFromLedger(const Options& options, const std::string& uuid_bytes, NvmlDeviceView& view) {
  const std::string path = quota::LedgerPath(options.ledger_dir, reinterpret_cast<const unsigned char*>(uuid_bytes.data()));
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return true;  // no ledger yet: nobody joined
  quota::LedgerSnapshot snapshot;
  std::string error;
  if (!quota::ReadLedger(path, &snapshot, &error)) {
    ReportLedgerError(error);
    view.status = kNvmlErrorNoPermission;
    return false;
  }
  const std::string& name = TenantName(options);
  for (const quota::TenantSnapshot& t : snapshot.tenants) {
    if (t.name != name) continue;
    view.limited = true;
    const bool show_request = options.meminfo_total == option_kind::MeminfoTotalValue::kRequest;
    view.quota_bytes = show_request ? t.request_bytes : t.limit_bytes;
    view.used_bytes = t.used_bytes;
    for (const quota::ProcessSnapshot& p : t.processes)
      if (p.alive) view.processes.push_back({p.pid, p.container_id});
  }
  return true;
}

}  // namespace

std::optional<std::string> UuidBytesOf(std::string_view nvml_uuid) {
  if (!nvml_uuid.starts_with("GPU-")) return std::nullopt;
  std::string bytes;
  int high = -1;
  for (char c : nvml_uuid.substr(4)) {
    if (c == '-') continue;
    const int v = HexValue(c);
    if (v < 0 || bytes.size() == 16) return std::nullopt;
    if (high < 0) {
      high = v;
    } else {
      bytes.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  if (bytes.size() != 16 || high >= 0) return std::nullopt;
  return bytes;
}

int CudaIndexOfNvmlDevice(unsigned int nvml_index, std::string_view uuid, const char* cuda_visible_devices) {
  if (cuda_visible_devices == nullptr) return static_cast<int>(nvml_index);
  std::string_view list = cuda_visible_devices;
  int position = 0;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.remove_prefix(1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.remove_suffix(1);
    const bool numeric = !entry.empty() && std::all_of(entry.begin(), entry.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      if (entry == std::to_string(nvml_index)) return position;
    } else if (entry.starts_with("GPU-") && entry.size() > 4) {
      if (uuid.starts_with(entry)) return position;
    } else {
      return -1;  // CUDA ignores everything from the first entry it cannot read
    }
    ++position;
  }
  return -1;
}

NvmlDeviceView ViewOfNvmlDevice(nvmlDevice_t device, uint64_t physical_total_bytes) {
  NvmlDeviceView view;
  const Options& options = ParsedOptions();
  if (!options.errors.empty()) {  // already printed, naming the variables
    view.status = kNvmlErrorNoPermission;
    return view;
  }
  const RealNvml* real = RealNvmlApi();
  if (real == nullptr || real->nvmlDeviceGetUUID == nullptr) {
    view.status = kNvmlErrorFunctionNotFound;
    return view;
  }
  char uuid[kNvmlUuidBytes] = {};
  if (const nvmlReturn_t rc = real->nvmlDeviceGetUUID(device, uuid, sizeof uuid); rc != kNvmlSuccess) {
    view.status = rc;
    return view;
  }
  if (const std::optional<std::string> bytes = UuidBytesOf(uuid)) {
    if (!ReadTenantFromLedger(options, *bytes, view) || view.limited) return view;
  }
  unsigned int nvml_index = 0;
  if (real->nvmlDeviceGetIndex == nullptr || real->nvmlDeviceGetIndex(device, &nvml_index) != kNvmlSuccess)
    return view;
  const int index = CudaIndexOfNvmlDevice(nvml_index, uuid, std::getenv("CUDA_VISIBLE_DEVICES"));
  if (index < 0 || !options.HasQuota(index)) return view;
  view.limited = true;
  if (physical_total_bytes == 0) return view;  // a process listing: only who is ours matters
  const Options::Quota quota = options.ResolveQuota(index, physical_total_bytes);
  if (!quota.error.empty()) {
    ReportLedgerError(quota.error);
    view.status = kNvmlErrorNoPermission;
    return view;
  }
  const bool show_request = options.meminfo_total == option_kind::MeminfoTotalValue::kRequest;
  view.quota_bytes = show_request ? quota.request_bytes : quota.limit_bytes;
  return view;
}

NvmlMemoryFigures ClampNvmlMemory(const NvmlDeviceView& view, const NvmlMemoryFigures& physical) {
  if (!view.limited) return physical;
  NvmlMemoryFigures shown;
  shown.total = std::min(view.quota_bytes, physical.total);
  shown.used = std::min(view.used_bytes, shown.total);
  shown.free = std::min(shown.total - shown.used, physical.free);
  return shown;
}

}  // namespace gpushare
