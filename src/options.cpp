// SPDX-License-Identifier: Apache-2.0
#include "src/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <type_traits>
#include <utility>

#include "src/contracts.h"
#include "src/printable.h"
#include "src/quantity.h"

namespace gpushare {
namespace option_kind {

bool Bytes::Parse(std::string_view text, Value& out) {
  out = ParseQuantity(text);
  return out.has_value();
}

bool BytesOrAuto::Parse(std::string_view text, Value& out) {
  if (text == "auto") {
    out.reset();
    return true;
  }
  out = ParseQuantity(text);
  return out.has_value();
}

bool PerDeviceBytes::Layer::empty() const {
  if (all) return false;
  for (const auto& d : device)
    if (d) return false;
  return true;
}

const DeviceMemory* PerDeviceBytes::Value::For(int index) const {
  for (const Layer& layer : layers) {
    if (index >= 0 && index < kMaxDevices && layer.device[index]) return &*layer.device[index];
    if (layer.all) return &*layer.all;
  }
  return nullptr;
}

bool Text::Parse(std::string_view text, Value& out) {
  out = std::string(text);
  return !text.empty();
}

bool AbsolutePath::Parse(std::string_view text, Value& out) {
  if (text.empty() || text.front() != '/') return false;
  for (size_t at = 0; (at = text.find("..", at)) != std::string_view::npos; at += 2) {
    const bool starts = text[at - 1] == '/';  // text[0] is '/', so at >= 1
    const bool ends = at + 2 == text.size() || text[at + 2] == '/';
    if (starts && ends) return false;
  }
  out = std::string(text);
  return true;
}

bool TenantName::Parse(std::string_view text, Value& out) {
  out = std::string(text);
  return TenantNameProblem(text).empty();
}

std::string TenantName::Problem(std::string_view text) { return TenantNameProblem(text); }

bool Flag::Parse(std::string_view text, Value& out) {
  if (text == "true" || text == "1") {
    out = true;
  } else if (text == "false" || text == "0") {
    out = false;
  } else {
    return false;
  }
  return true;
}

bool MeminfoTotal::Parse(std::string_view text, Value& out) {
  if (text == "limit") {
    out = MeminfoTotalValue::kLimit;
  } else if (text == "request") {
    out = MeminfoTotalValue::kRequest;
  } else {
    return false;
  }
  return true;
}

bool Duration::Parse(std::string_view text, Value& out) {
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"us", 1'000ull}, {"ms", 1'000'000ull}, {"s", 1'000'000'000ull}, {"m", 60'000'000'000ull}, {"h", 3'600'000'000'000ull}, {"", 1'000'000'000ull}};
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return false;
  uint64_t count = 0;
  for (size_t i = 0; i < digits; ++i) count = count * 10 + static_cast<uint64_t>(text[i] - '0');
  for (const auto& [unit, ns] : kUnits) {
    if (text.substr(digits) == unit) {
      if (count > UINT64_MAX / ns) return false;
      out = count * ns;
      return true;
    }
  }
  return false;
}

bool Integer::Parse(std::string_view text, Value& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

bool Resolver::Parse(std::string_view text, Value& out) {
  if (text == "wait") {
    out = ResolverValue::kWait;
  } else if (text == "priority") {
    out = ResolverValue::kPriority;
  } else if (text == "swap") {
    out = ResolverValue::kSwap;
  } else if (text == "none") {
    out = ResolverValue::kNone;
  } else {
    return false;
  }
  return true;
}

bool WaitMode::Parse(std::string_view text, Value& out) {
  if (text == "retry") {
    out = WaitModeValue::kRetry;
  } else if (text == "always") {
    out = WaitModeValue::kAlways;
  } else {
    return false;
  }
  return true;
}

bool SmShare::Parse(std::string_view text, Value& out) {
  const bool percent = !text.empty() && text.back() == '%';
  if (percent) text.remove_suffix(1);
  uint32_t n = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || ptr != end || n == 0) return false;
  if (percent && n > 100) return false;
  if (!percent && n > 4096) return false;  // no GPU has more SMs; a typo, not a request
  out = {percent ? 2u : 1u, n};
  return true;
}

uint32_t ComputeShareValue::For(int index) const {
  if (index >= 0 && index < kMaxDevices && device[static_cast<size_t>(index)]) return *device[static_cast<size_t>(index)];
  return all;
}

bool ComputeShare::Parse(std::string_view text, Value& out) {
  if (text.empty() || text.back() != '%') return false;
  text.remove_suffix(1);
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 3 || (dot != std::string_view::npos && (frac.empty() || frac.size() > 2)))
    return false;
  uint32_t bp = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return false;
    bp = bp * 10 + static_cast<uint32_t>(c - '0');
  }
  bp *= 100;
  uint32_t scale = 10;
  for (const char c : frac) {
    if (c < '0' || c > '9') return false;
    bp += static_cast<uint32_t>(c - '0') * scale;
    scale /= 10;
  }
  if (bp == 0 || bp > 10000) return false;
  out.all = bp;
  return true;
}

bool ComputeQuantum::Parse(std::string_view text, Value& out) {
  uint64_t ns = 0;
  if (!Duration::Parse(text, ns) || ns < 1'000'000ull || ns > 1'000'000'000ull) return false;
  out = ns;
  return true;
}

bool ComputeIdle::Parse(std::string_view text, Value& out) {
  uint64_t ns = 0;
  if (!Duration::Parse(text, ns) || ns < 50'000ull || ns > 100'000'000ull) return false;
  out = ns;
  return true;
}

bool ComputeExpress::Parse(std::string_view text, Value& out) {
  if (text.size() < 2 || text.size() > 4 || text.back() != '%') return false;
  uint32_t pct = 0;
  for (const char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return false;
    pct = pct * 10 + static_cast<uint32_t>(c - '0');
  }
  if (pct > 100) return false;
  out = pct;
  return true;
}

bool SmConflict::Parse(std::string_view text, Value& out) {
  if (text == "refuse") {
    out = SmConflictValue::kRefuse;
  } else if (text == "overlap") {
    out = SmConflictValue::kOverlap;
  } else {
    return false;
  }
  return true;
}

bool SmPlacement::Parse(std::string_view text, Value& out) {
  if (text == "gpc") {
    out = SmPlacementValue::kGpc;
  } else if (text == "spread") {
    out = SmPlacementValue::kSpread;
  } else {
    return false;
  }
  return true;
}

bool SmFallback::Parse(std::string_view text, Value& out) {
  if (text == "refuse") {
    out = SmFallbackValue::kRefuse;
  } else if (text == "unconfined") {
    out = SmFallbackValue::kUnconfined;
  } else {
    return false;
  }
  return true;
}

bool AliyunUnitKind::Parse(std::string_view text, Value& out) {
  if (text == "GiB") {
    out = AliyunUnit::kGiB;
  } else if (text == "MiB") {
    out = AliyunUnit::kMiB;
  } else if (text == "infer") {
    out = AliyunUnit::kInfer;
  } else {
    return false;
  }
  return true;
}

bool LogLevel::Parse(std::string_view text, Value& out) {
  static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (text == kNames[i]) {
      out = static_cast<Value>(i);
      return true;
    }
  }
  return false;
}

}  // namespace option_kind
namespace {

// What an error says after the value: the kind's Problem with it, if it has one, then kAccepted.
template <typename Kind>
std::string Why(std::string_view text) {
  if constexpr (requires { Kind::Problem(text); }) {
    const std::string problem = Kind::Problem(text);
    if (!problem.empty()) return problem + "; " + std::string(Kind::kAccepted);
  }
  return std::string(Kind::kAccepted);
}

// A set variable is parsed as given (empty included: empty is malformed); an unset one takes
// the row's default.
template <typename Kind>
void Read(const EnvLookup& env, const char* name, std::string_view def, typename Kind::Value& out,
          std::vector<std::string>& errors) {
  const char* set = env(name);
  const std::string_view text = set != nullptr ? std::string_view(set) : def;
  if (set == nullptr && def.empty()) return;
  if (!Kind::Parse(text, out)) errors.push_back(InvalidValue(name, text, Why<Kind>(text)));
}

// The GPUSHARE_ layer: <NAME> for every device, <NAME>_<i> for device index i.
template <>
void Read<option_kind::PerDeviceBytes>(const EnvLookup& env, const char* name, std::string_view,
                                       option_kind::PerDeviceBytes::Value& out,
                                       std::vector<std::string>& errors) {
  option_kind::PerDeviceBytes::Layer layer;
  auto read_one = [&](const std::string& variable, std::optional<DeviceMemory>& slot) {
    const char* set = env(variable.c_str());
    if (set == nullptr) return;
    if (const std::optional<uint64_t> bytes = ParseQuantity(set)) {
      slot = DeviceMemory::Bytes(*bytes, variable, set);
    } else {
      errors.push_back(InvalidValue(variable, set, option_kind::PerDeviceBytes::kAccepted));
    }
  };
  read_one(name, layer.all);
  for (int i = 0; i < kMaxDevices; ++i) read_one(fmt::format("{}_{}", name, i), layer.device[i]);
  out.layers.insert(out.layers.begin(), std::move(layer));
}

std::string AboveLimit(const DeviceMemory& request, uint64_t request_bytes, const DeviceMemory& limit,
                       uint64_t limit_bytes) {
  return fmt::format("{}={} is above {}={} (a request must fit in its limit)", request.variable,
                     request_bytes, limit.variable, limit_bytes);
}

// A request above its limit can never be honoured: refuse it rather than pick one. Checked per
// device, naming the variables that apply to it (reported once when only the global ones do).
// Amounts relative to the device are checked when resolved (Options::ResolveQuota).
void CheckRequestsWithinLimits(Options& options) {
  std::vector<std::string> found;
  for (int i = 0; i < kMaxDevices; ++i) {
    const DeviceMemory* request = options.mem_request.For(i);
    const DeviceMemory* limit = options.mem_limit.For(i);
    if (request == nullptr || limit == nullptr || request->relative() || limit->relative() ||
        request->amount <= limit->amount)
      continue;
    std::string error = AboveLimit(*request, request->amount, *limit, limit->amount);
    if (std::find(found.begin(), found.end(), error) == found.end()) found.push_back(std::move(error));
  }
  options.errors.insert(options.errors.end(), found.begin(), found.end());
}

// The row's parser as a validator (PerDeviceBytes: one quantity).
template <typename Kind>
bool Validate(std::string_view text) {
  typename Kind::Value value{};
  return Kind::Parse(text, value);
}
template <>
bool Validate<option_kind::PerDeviceBytes>(std::string_view text) {
  return Validate<option_kind::Bytes>(text);
}

constexpr OptionRow kRows[] = {
#define GS_OPTION(field, kind, env_name, def, help)                                          \
  {#field, env_name, def, help, option_kind::kind::kAccepted,                                  \
   std::is_same_v<option_kind::kind, option_kind::PerDeviceBytes>, &Validate<option_kind::kind>,      \
   &Why<option_kind::kind>},
#include "src/options.inc"
#undef GS_OPTION
};

}  // namespace

Options ParseOptions(const EnvLookup& env) {
  Options options;
#define GS_OPTION(field, kind, env_name, def, help) \
  Read<option_kind::kind>(env, env_name, def, options.field, options.errors);
#include "src/options.inc"
#undef GS_OPTION
  ApplyContracts(env, options);
  CheckRequestsWithinLimits(options);
  return options;
}

std::string InvalidValue(std::string_view variable, std::string_view value, std::string_view accepted) {
  return fmt::format("{}=\"{}\" is not valid ({})", variable, Printable(value), accepted);
}

bool Options::HasQuota(int index) const {
  return mem_request.For(index) != nullptr || mem_limit.For(index) != nullptr;
}

Options::Quota Options::ResolveQuota(int index, uint64_t device_total_bytes) const {
  Quota quota;
  const DeviceMemory* request = mem_request.For(index);
  const DeviceMemory* limit = mem_limit.For(index);
  if (request == nullptr && limit == nullptr) return quota;
  quota.limited = true;
  std::optional<uint64_t> request_bytes;
  std::optional<uint64_t> limit_bytes;
  if (request != nullptr) request_bytes = ResolveDeviceMemory(*request, device_total_bytes, aliyun_unit, &quota.error);
  if (limit != nullptr && quota.error.empty())
    limit_bytes = ResolveDeviceMemory(*limit, device_total_bytes, aliyun_unit, &quota.error);
  if (!quota.error.empty()) return quota;
  if (limit_bytes && limit->cap_at_device && device_total_bytes != 0 && *limit_bytes > device_total_bytes) {
    quota.note = fmt::format("{}=\"{}\" ({} bytes) is above this device's {} bytes: its limit is the device's memory",
                             limit->variable, limit->text, *limit_bytes, device_total_bytes);
    limit_bytes = device_total_bytes;
  }
  quota.request_bytes = request_bytes ? *request_bytes : *limit_bytes;
  quota.limit_bytes = limit_bytes ? *limit_bytes : *request_bytes;
  if (request != nullptr && limit != nullptr && quota.request_bytes > quota.limit_bytes) {
    quota.error = AboveLimit(*request, quota.request_bytes, *limit, quota.limit_bytes);
    if (!quota.note.empty()) quota.error += " (" + quota.note + ")";
  }
  return quota;
}

std::span<const OptionRow> OptionRows() { return kRows; }

const OptionRow* FindOptionRow(std::string_view field) {
  for (const OptionRow& row : kRows)
    if (row.field == field) return &row;
  return nullptr;
}

std::string DescribeOptions() {
  std::string out;
  for (const OptionRow& row : kRows)
    out += fmt::format("  {:<28} {} (default: {})\n", row.variable, row.help,
                       row.default_value.empty() ? "unset" : row.default_value);
  out += "Read from schedulers when the GPUSHARE_ variable is unset (first listed wins):\n";
  for (const ContractRow& row : ContractRows()) {
    const OptionRow* option = FindOptionRow(row.field);
    out += fmt::format("  {:<28} {}: {} (for {})\n", row.variables, row.scheduler, row.help,
                       option != nullptr ? option->variable : row.field);
  }
  return out;
}

}  // namespace gpushare
