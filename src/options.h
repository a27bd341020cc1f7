// gpushare's configuration: one immutable struct parsed from the environment (src/options.inc).
//
// How to add an option: add a row to options.inc with a kind below (or a new kind: a struct with
// `Value`, `Parse(text, value) -> bool`, and `kAccepted`, the examples quoted in errors).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/log.h"

namespace gpushare {

inline constexpr int kMaxDevices = 64;

namespace option_kind {

struct Bytes {
  using Value = std::optional<uint64_t>;
  static constexpr std::string_view kAccepted = "examples: 8Gi, 512Mi, 2G, 1073741824";
  static bool Parse(std::string_view text, Value& out);
};

struct BytesOrAuto {
  using Value = std::optional<uint64_t>;  // nullopt: auto
  static constexpr std::string_view kAccepted = "auto, or a quantity such as 512Mi";
  static bool Parse(std::string_view text, Value& out);
};

// A quantity for every device, overridden per device index by <NAME>_<i>.
struct PerDeviceBytes {
  struct Value {
    std::optional<uint64_t> all;
    std::array<std::optional<uint64_t>, kMaxDevices> device{};
    std::optional<uint64_t> For(int index) const;
  };
  static constexpr std::string_view kAccepted = Bytes::kAccepted;
};

struct Text {
  using Value = std::string;
  static constexpr std::string_view kAccepted = "a non-empty string";
  static bool Parse(std::string_view text, Value& out);
};

struct Flag {
  using Value = bool;
  static constexpr std::string_view kAccepted = "true, false, 1 or 0";
  static bool Parse(std::string_view text, Value& out);
};

enum class MeminfoTotalValue { kLimit, kRequest };
struct MeminfoTotal {
  using Value = MeminfoTotalValue;
  static constexpr std::string_view kAccepted = "limit or request";
  static bool Parse(std::string_view text, Value& out);
};

// Nanoseconds: "500ms", "30s", "2m", "1h", or plain seconds.
struct Duration {
  using Value = uint64_t;
  static constexpr std::string_view kAccepted = "a duration such as 500ms, 30s, 2m, or seconds";
  static bool Parse(std::string_view text, Value& out);
};

struct Integer {
  using Value = int32_t;
  static constexpr std::string_view kAccepted = "an integer";
  static bool Parse(std::string_view text, Value& out);
};

enum class ResolverValue { kNone, kWait, kPriority };
struct Resolver {
  using Value = ResolverValue;
  static constexpr std::string_view kAccepted = "wait, priority or none (swap is not available yet)";
  static bool Parse(std::string_view text, Value& out);
};

enum class WaitModeValue { kRetry, kAlways };
struct WaitMode {
  using Value = WaitModeValue;
  static constexpr std::string_view kAccepted = "retry or always";
  static bool Parse(std::string_view text, Value& out);
};

// GPUSHARE_SM: "32" (SMs) or "25%" (of the GPU's SMs).
struct SmShareValue {
  uint32_t kind = 0;   // GS_SM_ASK_* (gpushare/ledger_abi.h): 0 none, 1 count, 2 percent
  uint32_t value = 0;
};
struct SmShare {
  using Value = SmShareValue;
  static constexpr std::string_view kAccepted = "an SM count such as 32, or a share such as 25% (1% to 100%)";
  static bool Parse(std::string_view text, Value& out);
};

enum class SmConflictValue { kRefuse, kOverlap };
struct SmConflict {
  using Value = SmConflictValue;
  static constexpr std::string_view kAccepted = "refuse or overlap";
  static bool Parse(std::string_view text, Value& out);
};

enum class SmFallbackValue { kRefuse, kUnconfined };
struct SmFallback {
  using Value = SmFallbackValue;
  static constexpr std::string_view kAccepted = "refuse or unconfined";
  static bool Parse(std::string_view text, Value& out);
};

struct LogLevel {
  using Value = gpushare::LogLevel;
  static constexpr std::string_view kAccepted = "trace, debug, info, warn, error, off";
  static bool Parse(std::string_view text, Value& out);
};

}  // namespace option_kind

struct Options {
#define GS_OPTION(field, kind, env, def, help) option_kind::kind::Value field{};
#include "src/options.inc"
#undef GS_OPTION

  // One line per malformed variable, naming it and its value. Non-empty: fail closed.
  std::vector<std::string> errors;

  // The tenant's quota on device index i, Kubernetes-style: either alone stands for both.
  std::optional<uint64_t> RequestFor(int index) const;
  std::optional<uint64_t> LimitFor(int index) const;
};

using EnvLookup = std::function<const char*(const char*)>;

// Pure: reads variables through `env` (getenv in the library, a map in tests).
Options ParseOptions(const EnvLookup& env);

// "NAME  help" lines for every row, for --help texts.
std::string DescribeOptions();

}  // namespace gpushare
