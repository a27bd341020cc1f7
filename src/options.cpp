#include "src/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

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

std::optional<uint64_t> PerDeviceBytes::Value::For(int index) const {
  if (index >= 0 && index < kMaxDevices && device[index]) return device[index];
  return all;
}

bool Text::Parse(std::string_view text, Value& out) {
  out = std::string(text);
  return !text.empty();
}

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
      {"ms", 1'000'000ull}, {"s", 1'000'000'000ull}, {"m", 60'000'000'000ull}, {"h", 3'600'000'000'000ull}, {"", 1'000'000'000ull}};
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

std::string BadValue(std::string_view name, std::string_view value, std::string_view accepted) {
  return fmt::format("{}=\"{}\" is not valid ({})", name, value, accepted);
}

// A set variable is parsed as given (empty included: empty is malformed); an unset one takes
// the row's default.
template <typename Kind>
void Read(const EnvLookup& env, const char* name, std::string_view def, typename Kind::Value& out,
          std::vector<std::string>& errors) {
  const char* set = env(name);
  const std::string_view text = set != nullptr ? std::string_view(set) : def;
  if (set == nullptr && def.empty()) return;
  if (!Kind::Parse(text, out)) errors.push_back(BadValue(name, text, Kind::kAccepted));
}

template <>
void Read<option_kind::PerDeviceBytes>(const EnvLookup& env, const char* name, std::string_view,
                                       option_kind::PerDeviceBytes::Value& out,
                                       std::vector<std::string>& errors) {
  Read<option_kind::Bytes>(env, name, "", out.all, errors);
  for (int i = 0; i < kMaxDevices; ++i) {
    const std::string indexed = fmt::format("{}_{}", name, i);
    Read<option_kind::Bytes>(env, indexed.c_str(), "", out.device[i], errors);
  }
}

// A request above its limit can never be honoured: refuse it rather than pick one. Checked per
// device, naming the variables that apply to it (reported once when only the global ones do).
void CheckRequestsWithinLimits(Options& options) {
  std::vector<std::string> found;
  for (int i = 0; i < kMaxDevices; ++i) {
    const std::optional<uint64_t> request = options.mem_request.For(i);
    const std::optional<uint64_t> limit = options.mem_limit.For(i);
    if (!request || !limit || *request <= *limit) continue;
    const std::string request_name = options.mem_request.device[i] ? fmt::format("GPUSHARE_MEM_REQUEST_{}", i) : "GPUSHARE_MEM_REQUEST";
    const std::string limit_name = options.mem_limit.device[i] ? fmt::format("GPUSHARE_MEM_LIMIT_{}", i) : "GPUSHARE_MEM_LIMIT";
    std::string error = fmt::format("{}={} is above {}={} (a request must fit in its limit)",
                                    request_name, *request, limit_name, *limit);
    if (std::find(found.begin(), found.end(), error) == found.end()) found.push_back(std::move(error));
  }
  options.errors.insert(options.errors.end(), found.begin(), found.end());
}

}  // namespace

Options ParseOptions(const EnvLookup& env) {
  Options options;
#define GS_OPTION(field, kind, env_name, def, help) \
  Read<option_kind::kind>(env, env_name, def, options.field, options.errors);
#include "src/options.inc"
#undef GS_OPTION
  CheckRequestsWithinLimits(options);
  return options;
}

std::optional<uint64_t> Options::RequestFor(int index) const {
  const std::optional<uint64_t> request = mem_request.For(index);
  return request ? request : mem_limit.For(index);
}

std::optional<uint64_t> Options::LimitFor(int index) const {
  const std::optional<uint64_t> limit = mem_limit.For(index);
  return limit ? limit : mem_request.For(index);
}

std::string DescribeOptions() {
  std::string out;
#define GS_OPTION(field, kind, env_name, def, help) \
  out += fmt::format("  {:<28} {} (default: {})\n", env_name, help, *def ? def : "unset");
#include "src/options.inc"
#undef GS_OPTION
  return out;
}

}  // namespace gpushare
