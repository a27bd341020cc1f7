// SPDX-License-Identifier: Apache-2.0
#include "src/contracts.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

#include "gpushare/ledger_abi.h"
#include "src/hami_grammar.h"
#include "src/tenant_name.h"

namespace gpushare {
namespace {

using Layer = option_kind::PerDeviceBytes::Layer;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || !IsDigit(text[0]) || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace

std::string PodTenantName(const PodIdentity& id) { return id.ns + "/" + id.pod + "/" + id.container; }

std::optional<PodIdentity> SplitPodTenantName(std::string_view tenant) {
  const size_t first = tenant.find('/');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = tenant.find('/', first + 1);
  if (second == std::string_view::npos || tenant.find('/', second + 1) != std::string_view::npos)
    return std::nullopt;
  PodIdentity id{std::string(tenant.substr(0, first)), std::string(tenant.substr(first + 1, second - first - 1)),
                 std::string(tenant.substr(second + 1))};
  if (id.ns.empty() || id.pod.empty() || id.container.empty()) return std::nullopt;
  return id;
}

// Each kind reads its variable(s): false when unset or malformed (with an error in o.errors).
namespace contract {

// HAMi-core's get_limit_from_env (src/hami_grammar.h). 0 is "no limit": for CUDA_DEVICE_MEMORY_LIMIT_<i>
// it falls back to CUDA_DEVICE_MEMORY_LIMIT, as do_init_device_memory_limits does, and with
// neither the device passes through untouched.
struct HamiMemory {
  static constexpr std::string_view kAccepted =
      "examples: 4096m, 4g, 4Gi, 4GiB, 1.5g, 1073741824; K, M and G are binary; 0 is no limit";
  static bool Read(const EnvLookup& env, const char* variable, Layer& out, Options& o) {
    auto read_one = [&](const std::string& name, std::optional<DeviceMemory>& slot, bool per_device) {
      const char* set = env(name.c_str());
      if (set == nullptr) return;
      const std::optional<uint64_t> bytes = ParseHamiBytes(set);
      if (!bytes) {
        o.errors.push_back(InvalidValue(name, set, kAccepted));
      } else if (*bytes == 0) {
        o.notes.push_back(per_device ? fmt::format("{}=\"{}\" (HAMi) gives no value for its device, as HAMi-core "
                                                   "reads 0: {} applies there, if set",
                                                   name, set, variable)
                                     : fmt::format("{}=\"{}\" (HAMi) is no limit, as HAMi-core reads 0", name, set));
      } else {
        slot = DeviceMemory::Bytes(*bytes, name, set);
        slot->cap_at_device = true;
      }
    };
    read_one(variable, out.all, false);
    for (int i = 0; i < kMaxDevices; ++i) read_one(fmt::format("{}_{}", variable, i), out.device[i], true);
    return !out.empty();
  }
};

// aliyun's device plugin writes both with fmt.Sprintf("%d") (pkg/gpu/nvidia/allocate.go), and
// only for a container that asked for aliyun.com/gpu-mem: whole numbers above 0.
struct AliyunMemory {
  static constexpr const char* kDevVariable = "ALIYUN_COM_GPU_MEM_DEV";
  static constexpr std::string_view kAccepted = "a whole number of GiB or MiB above 0, such as 8";
  static bool Read(const EnvLookup& env, const char* variable, Layer& out, Options& o) {
    const char* dev = env(kDevVariable);
    std::optional<uint64_t> dev_units;
    if (dev != nullptr) {
      dev_units = ParseUnsigned(dev);
      if (!dev_units || *dev_units == 0) {
        o.errors.push_back(InvalidValue(kDevVariable, dev, "the device's memory in the same unit, such as 80"));
        return false;
      }
    }
    const char* set = env(variable);
    if (set == nullptr) return false;
    const std::optional<uint64_t> units = ParseUnsigned(set);
    if (!units || *units == 0) {
      o.errors.push_back(InvalidValue(variable, set, kAccepted));
      return false;
    }
    if (!dev_units && o.aliyun_unit == AliyunUnit::kInfer) {
      o.errors.push_back(fmt::format(
          "{}=\"{}\" has no unit: set GPUSHARE_ALIYUN_UNIT=GiB or MiB, or {} (the device's memory in "
          "the same unit) to infer it",
          variable, set, kDevVariable));
      return false;
    }
    DeviceMemory memory = DeviceMemory::Bytes(*units, variable, set);
    memory.form = DeviceMemory::Form::kAliyunUnits;
    memory.aliyun_dev_units = dev_units.value_or(0);
    memory.cap_at_device = true;
    out.all = std::move(memory);
    return true;
  }
};

struct Portion {
  static bool Read(const EnvLookup& env, const char* variable, Layer& out, Options& o) {
    const char* set = env(variable);
    if (set == nullptr) return false;
    const std::optional<uint64_t> parts = ParsePortion(set);
    if (!parts) {
      o.errors.push_back(InvalidValue(variable, set, "a fraction of the device above 0 and at most 1, such as 0.5"));
      return false;
    }
    DeviceMemory memory = DeviceMemory::Bytes(*parts, variable, set);
    memory.form = DeviceMemory::Form::kPortion;
    memory.cap_at_device = true;
    out.all = std::move(memory);
    return true;
  }
};

// HAMi's nvidia.com/gpucores, a share of the GPU's time (in basis points here), per device as
// do_init_device_sm_limits reads it: CUDA_DEVICE_SM_LIMIT_<i> above 0 for device i, else
// CUDA_DEVICE_SM_LIMIT. rate_limiter throttles nothing at 0 or at 100 and above: no share there.
// GPU_CORE_UTILIZATION_POLICY=disable turns the limiter off (the values are still checked).
struct HamiComputeLimit {
  static constexpr const char* kPolicyVariable = "GPU_CORE_UTILIZATION_POLICY";
  static constexpr std::string_view kAccepted =
      "a percentage such as 50, 50% or 50.5 (the fraction is dropped); 0, or 100 and above, is no limit";
  static bool Read(const EnvLookup& env, const char* variable, option_kind::ComputeShareValue& out, Options& o) {
    const char* policy = env(kPolicyVariable);
    const bool disabled = policy != nullptr && ParseHamiCorePolicy(policy) == HamiCorePolicy::kDisable;
    bool limited = false;
    auto read_one = [&](const std::string& name, bool per_device, auto&& store) {
      const char* set = env(name.c_str());
      if (set == nullptr) return;
      const std::optional<uint64_t> percent = ParseHamiPercent(set);
      if (!percent) {
        o.errors.push_back(InvalidValue(name, set, kAccepted));
      } else if (disabled) {
        o.notes.push_back(fmt::format("{}=\"{}\" (HAMi) is not applied: {}=\"{}\" turns HAMi's limit off", name, set,
                                      kPolicyVariable, policy));
      } else if (*percent == 0 && per_device) {
        o.notes.push_back(fmt::format("{}=\"{}\" (HAMi) gives no value for its device, as HAMi-core reads 0", name, set));
      } else if (*percent == 0 || *percent >= 100) {
        o.notes.push_back(fmt::format("{}=\"{}\" (HAMi) is no limit, as HAMi-core reads 0 and 100 or more", name, set));
        store(0u);
        limited = limited || per_device;
      } else {
        store(static_cast<uint32_t>(*percent * 100));
        limited = true;
      }
    };
    read_one(variable, false, [&](uint32_t bp) { out.all = bp; });
    for (int i = 0; i < kMaxDevices; ++i)
      read_one(fmt::format("{}_{}", variable, i), true, [&](uint32_t bp) { out.device[static_cast<size_t>(i)] = bp; });
    return limited;
  }
};

// HAMi-core's policy for its SM limit. default: HAMi throttles a container only while a
// container of higher priority, or another of the same, is busy on the GPU (HAMi's monitor,
// cmd/vGPUmonitor/feedback.go, turns the limiter off otherwise), which gpushare's work-conserving
// share does; force: always throttled, GPUSHARE_COMPUTE_STRICT=true; disable: see HamiComputeLimit.
struct HamiCorePolicyKind {
  static bool Read(const EnvLookup& env, const char* variable, bool& out, Options& o) {
    const char* set = env(variable);
    if (set == nullptr) return false;
    bool recognised = false;
    const HamiCorePolicy policy = ParseHamiCorePolicy(set, &recognised);
    if (!recognised)
      o.notes.push_back(fmt::format(
          "{}=\"{}\" (HAMi) is read as the default policy, as HAMi-core reads anything but force/FORCE and "
          "disable/DISABLE",
          variable, set));
    if (policy != HamiCorePolicy::kForce) return false;
    out = true;
    return true;
  }
};

// HAMi's device plugin sets it for every container it places, to a file of that container's own.
constexpr const char* kHamiSharedCache = "CUDA_DEVICE_MEMORY_SHARED_CACHE";

// HAMi-core reads it with atoi (try_create_shrreg); HAMi writes 0 (high) or 1 (low). Unset in a
// container HAMi's device plugin placed, it is HAMi-core's default, 1: a pod that asked for 0
// outranks one that asked for nothing, as under HAMi.
struct HamiPriority {
  static constexpr int32_t kHamiDefault = -1;
  static bool Read(const EnvLookup& env, const char* variable, int32_t& out, Options& o) {
    const char* set = env(variable);
    if (set == nullptr && env(kHamiSharedCache) != nullptr) {
      o.notes.push_back(fmt::format("{} is unset in a container HAMi placed ({} is set): HAMi-core's "
                                    "default, 1 (low)", variable, kHamiSharedCache));
      out = kHamiDefault;
      return true;
    }
    if (set == nullptr) return false;
    const std::optional<uint32_t> priority = ParseHamiPriority(set);
    if (!priority) {
      o.errors.push_back(InvalidValue(variable, set, "0 for high priority, or a larger whole number for lower"));
      return false;
    }
    out = -static_cast<int32_t>(*priority);
    return true;
  }
};

// The memory tracker file HAMi-core's processes of one container share: HAMi's device plugin
// writes <hook path>/vgpu/<uuid>.cache, one per container (Allocate in HAMi's
// pkg/device-plugin/nvidiadevice), so all its processes share one limit. The tenant is
// hami-<file name without .cache>, so they share one quota here too. HAMi-core's default path
// names no container (a /tmp of each container's own under HAMi, one node-wide ledger here):
// not used.
struct HamiSharedCache {
  static constexpr std::string_view kHamiCoreDefault = "/tmp/cudevshr.cache";
  static bool Read(const EnvLookup& env, const char* variable, std::string& out, Options& o) {
    const char* set = env(variable);
    if (set == nullptr) return false;
    std::string_view path = set;
    if (path == kHamiCoreDefault) {
      o.notes.push_back(fmt::format("{} is HAMi-core's default, which names no container: not used as the tenant",
                                    variable));
      return false;
    }
    std::string_view file = path.substr(path.find_last_of('/') == std::string_view::npos ? 0 : path.find_last_of('/') + 1);
    if (file.ends_with(".cache")) file.remove_suffix(6);
    if (file.empty()) {
      o.errors.push_back(InvalidValue(variable, set, "the path of a file, as HAMi's device plugin writes it"));
      return false;
    }
    out = SanitizeTenantName("hami-" + std::string(file));
    return true;
  }
};

// Set to true by HAMi's device plugin where its scheduler over-commits memory
// (deviceMemoryScaling > 1): the HAMi limits on a GPU may add up to more than it has, so they
// cannot all be guaranteed. As GPUSHARE_BEST_EFFORT=true: a tenant whose limit (as its request)
// cannot be held runs with request 0 and bursts, where it would be refused at start.
struct HamiOversubscribe {
  static bool Read(const EnvLookup& env, const char* variable, bool& out, Options& o) {
    const char* set = env(variable);
    if (set == nullptr) return false;
    const std::string_view v = set;
    if (v == "true" || v == "TRUE" || v == "True") {
      out = true;
      return true;
    }
    if (v != "false" && v != "FALSE" && v != "False")
      o.errors.push_back(InvalidValue(variable, set, "true or false, as HAMi's device plugin writes it"));
    return false;
  }
};

// The downward API variables our manifests set. All three, or none is used: POD_NAME alone is
// common in charts that know nothing of gpushare.
struct PodTenant {
  static constexpr const char* kParts[] = {"POD_NAMESPACE", "POD_NAME", "CONTAINER_NAME"};
  static bool Read(const EnvLookup& env, const char*, std::string& out, Options& o) {
    std::string value[3];
    int set = 0;
    for (int i = 0; i < 3; ++i) {
      if (const char* v = env(kParts[i])) {
        value[i] = v;
        ++set;
      }
    }
    if (set < 3) return false;
    bool ok = true;
    for (int i = 0; i < 3; ++i) {
      std::string problem = TenantNameProblem(value[i]);
      if (problem.empty() && value[i].find('/') != std::string::npos)
        problem = fmt::format("byte {} is '/'", value[i].find('/') + 1);
      if (!problem.empty()) {
        o.errors.push_back(InvalidValue(kParts[i], value[i], problem + "; a Kubernetes name: letters, digits, - and ."));
        ok = false;
      }
    }
    if (!ok) return false;
    out = PodTenantName({value[0], value[1], value[2]});
    if (out.size() >= GS_LEDGER_NAME_BYTES) {
      o.errors.push_back(fmt::format(
          "POD_NAMESPACE/POD_NAME/CONTAINER_NAME make the tenant name \"{}\", longer than {} bytes; "
          "set GPUSHARE_TENANT",
          out, GS_LEDGER_NAME_BYTES - 1));
      return false;
    }
    return true;
  }
};

}  // namespace contract

namespace {

constexpr ContractRow kRows[] = {
#define GS_CONTRACT(field, kind, variables, scheduler, help) {#field, variables, scheduler, help},
#include "src/contracts.inc"
#undef GS_CONTRACT
};

// Memory: a layer after the earlier ones. An earlier layer's global amount hides it everywhere.
template <typename Kind>
void Apply(const EnvLookup& env, const ContractRow& row, option_kind::PerDeviceBytes::Value& field,
           Options& o, std::vector<std::string_view>&) {
  Layer layer;
  if (!Kind::Read(env, row.variables.data(), layer, o)) return;
  const auto earlier = std::find_if(field.layers.begin(), field.layers.end(), [](const Layer& l) { return l.all.has_value(); });
  if (earlier != field.layers.end()) {
    o.notes.push_back(fmt::format("{} ({}) is set, but {} takes precedence", row.variables,
                                  row.scheduler, earlier->all->variable));
  } else {
    o.notes.push_back(fmt::format("{} ({}) gives the {} where no earlier variable does", row.variables,
                                  row.scheduler, row.field));
  }
  field.layers.push_back(std::move(layer));
}

// Any other option: used when its own variable is unset and no earlier row claimed it.
template <typename Kind, typename Field>
void Apply(const EnvLookup& env, const ContractRow& row, Field& field, Options& o,
           std::vector<std::string_view>& claimed) {
  Field value = field;
  if (!Kind::Read(env, row.variables.data(), value, o)) return;
  const OptionRow* option = FindOptionRow(row.field);
  if (option != nullptr && env(option->variable.data()) != nullptr) {
    o.notes.push_back(fmt::format("{} ({}) is set, but {} takes precedence", row.variables,
                                  row.scheduler, option->variable));
    return;
  }
  if (std::find(claimed.begin(), claimed.end(), row.field) != claimed.end()) {
    o.notes.push_back(fmt::format("{} ({}) is set, but an earlier scheduler variable gave the {}",
                                  row.variables, row.scheduler, row.field));
    return;
  }
  claimed.push_back(row.field);
  field = std::move(value);
  o.notes.push_back(fmt::format("{} ({}) gives the {}", row.variables, row.scheduler, row.field));
}

}  // namespace

void ApplyContracts(const EnvLookup& env, Options& options) {
  std::vector<std::string_view> claimed;
  size_t row = 0;
#define GS_CONTRACT(field, kind, variables, scheduler, help) \
  Apply<contract::kind>(env, kRows[row++], options.field, options, claimed);
#include "src/contracts.inc"
#undef GS_CONTRACT
}

std::span<const ContractRow> ContractRows() { return kRows; }

}  // namespace gpushare
