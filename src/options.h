// SPDX-License-Identifier: Apache-2.0
// gpushare's configuration: one immutable struct parsed from the environment (src/options.inc).
//
// How to add an option: add a row to options.inc with a kind below (or a new kind: a struct with
// `Value`, `Parse(text, value) -> bool`, and `kAccepted`, the examples quoted in errors).
// How to read a scheduler's variable into an option: a row in src/contracts.inc.
//
// Precedence, per option: its GPUSHARE_ variable (for memory: GPUSHARE_MEM_LIMIT_<i>, then
// GPUSHARE_MEM_LIMIT), then the scheduler contracts in the order of src/contracts.inc, then the
// row's default. Every variable that is set is validated, overridden or not.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/device_memory.h"
#include "src/log.h"
#include "src/tenant_name.h"

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

// Device memory for every device, overridden per device index by <NAME>_<i>. Layers in
// precedence order: the GPUSHARE_ variables first, then one per scheduler contract that gave one.
struct PerDeviceBytes {
  struct Layer {
    std::optional<DeviceMemory> all;
    std::array<std::optional<DeviceMemory>, kMaxDevices> device{};
    bool empty() const;
  };
  struct Value {
    std::vector<Layer> layers;
    // The amount that applies to device `index`: per device, then global, layer by layer.
    const DeviceMemory* For(int index) const;
  };
  static constexpr std::string_view kAccepted = Bytes::kAccepted;
};

struct Text {
  using Value = std::string;
  static constexpr std::string_view kAccepted = "a non-empty string";
  static bool Parse(std::string_view text, Value& out);
};

// A directory every tenant of the node names alike: absolute, without "..".
struct AbsolutePath {
  using Value = std::string;
  static constexpr std::string_view kAccepted = "an absolute path such as /var/run/gpushare";
  static bool Parse(std::string_view text, Value& out);
};

// GPUSHARE_TENANT: the tenant alphabet (src/tenant_name.h). Problem() says which byte is wrong.
struct TenantName {
  using Value = std::string;
  static constexpr std::string_view kAccepted = kTenantNameAlphabet;
  static bool Parse(std::string_view text, Value& out);
  static std::string Problem(std::string_view text);
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

// Nanoseconds: "250us", "500ms", "30s", "2m", "1h", or plain seconds.
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

enum class ResolverValue { kNone, kWait, kPriority, kSwap };
struct Resolver {
  using Value = ResolverValue;
  static constexpr std::string_view kAccepted = "wait, priority, swap or none";
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

enum class SmPlacementValue { kGpc, kSpread };
struct SmPlacement {
  using Value = SmPlacementValue;
  static constexpr std::string_view kAccepted = "gpc or spread";
  static bool Parse(std::string_view text, Value& out);
};

enum class SmFallbackValue { kRefuse, kUnconfined };
struct SmFallback {
  using Value = SmFallbackValue;
  static constexpr std::string_view kAccepted = "refuse or unconfined";
  static bool Parse(std::string_view text, Value& out);
};

// GPUSHARE_COMPUTE: "30%" or "12.5%" (0.01% to 100%), in basis points; 0 = no share. A share
// per device comes only from a scheduler (HAMi's CUDA_DEVICE_SM_LIMIT_<i>).
struct ComputeShareValue {
  uint32_t all = 0;
  std::array<std::optional<uint32_t>, kMaxDevices> device{};  // engaged 0: no share on that device
  uint32_t For(int index) const;
};
struct ComputeShare {
  using Value = ComputeShareValue;
  static constexpr std::string_view kAccepted = "a share of the GPU's time such as 30% or 12.5% (0.01% to 100%)";
  static bool Parse(std::string_view text, Value& out);
};

// Durations with bounds (nanoseconds).
struct ComputeQuantum {
  using Value = uint64_t;
  static constexpr std::string_view kAccepted = "a duration from 1ms to 1s such as 10ms";
  static bool Parse(std::string_view text, Value& out);
};
struct ComputeIdle {
  using Value = uint64_t;
  static constexpr std::string_view kAccepted = "a duration from 50us to 100ms such as 500us or 2ms";
  static bool Parse(std::string_view text, Value& out);
};

// GPUSHARE_COMPUTE_EXPRESS: "50%", a whole percent from 0% to 100%.
struct ComputeExpress {
  using Value = uint32_t;
  static constexpr std::string_view kAccepted = "a whole percent of the tenant's share from 0% to 100% such as 50%";
  static bool Parse(std::string_view text, Value& out);
};

struct AliyunUnitKind {
  using Value = AliyunUnit;
  static constexpr std::string_view kAccepted = "GiB, MiB or infer";
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
  // Lines worth logging at info: which scheduler variable was used or overridden, what is not
  // enforced yet.
  std::vector<std::string> notes;

  // Whether a request or a limit applies to device index i (its size may depend on the device).
  bool HasQuota(int index) const;
  // The tenant's quota on device index i, whose memory is device_total_bytes, Kubernetes-style:
  // either alone stands for both. A request above its limit, or an amount that cannot be
  // resolved on this device, is an error naming the variables: fail closed on that device. A
  // scheduler's limit above the device is the device (its request too, when it stands for both).
  struct Quota {
    bool limited = false;  // false: no request or limit applies; pass through
    uint64_t request_bytes = 0;
    uint64_t limit_bytes = 0;
    std::string error;
    std::string note;  // worth one info line: a scheduler's limit was capped at the device
  };
  Quota ResolveQuota(int index, uint64_t device_total_bytes) const;
};

using EnvLookup = std::function<const char*(const char*)>;

// Pure: reads variables through `env` (getenv in the library, a map in tests).
Options ParseOptions(const EnvLookup& env);

// `NAME="value" is not valid (accepted)`: the one form of every bad-value message. The value is
// printed through Printable (src/printable.h): a hostile value cannot write escapes to a terminal.
std::string InvalidValue(std::string_view variable, std::string_view value, std::string_view accepted);

// One row of options.inc, for tools (gpushare-run's flags, --help texts).
struct OptionRow {
  std::string_view field;
  std::string_view variable;
  std::string_view default_value;  // empty: unset
  std::string_view help;
  std::string_view accepted;
  bool per_device;                           // <variable>_<i> overrides it for device index i
  bool (*valid)(std::string_view text);      // the row's parser, result discarded
  std::string (*why)(std::string_view text); // why text is not valid: the kind's Problem, then `accepted`
};
std::span<const OptionRow> OptionRows();
const OptionRow* FindOptionRow(std::string_view field);

// "NAME  help" lines for every row and every scheduler contract, for --help texts.
std::string DescribeOptions();

}  // namespace gpushare
