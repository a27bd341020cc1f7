#include "quota/context_overhead.h"

#include <dlfcn.h>

#include <mutex>

#include "src/log.h"
#include "src/nvml_api.h"
#include "src/real_driver.h"
#include "src/runtime.h"

namespace gpushare::quota {
namespace {

// Past this, a measured growth is someone else's allocation racing with ours, not overhead.
constexpr uint64_t kMaxPlausibleOverhead = 4ull << 30;

struct Nvml {
  nvmlReturn_t (*get_handle_by_uuid)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_memory_info)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  bool ok = false;
};

const Nvml& TheNvml() {
  static Nvml nvml = [] {
    Nvml n;
    void* handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return n;
    auto init = reinterpret_cast<nvmlReturn_t (*)()>(RealDlsym()(handle, "nvmlInit_v2"));
    n.get_handle_by_uuid = reinterpret_cast<decltype(n.get_handle_by_uuid)>(
        RealDlsym()(handle, "nvmlDeviceGetHandleByUUID"));
    n.get_memory_info = reinterpret_cast<decltype(n.get_memory_info)>(
        RealDlsym()(handle, "nvmlDeviceGetMemoryInfo"));
    n.ok = init != nullptr && n.get_handle_by_uuid != nullptr && n.get_memory_info != nullptr &&
           init() == kNvmlSuccess;
    return n;
  }();
  return nvml;
}

bool DeviceUsedBytes(const DeviceQuota& quota, uint64_t& used) {
  const Nvml& nvml = TheNvml();
  if (!nvml.ok) return false;
  char uuid[41];
  FormatUuid(quota.uuid(), uuid);
  nvmlDevice_t device = nullptr;
  nvmlMemory_t memory{};
  if (nvml.get_handle_by_uuid(uuid, &device) != kNvmlSuccess ||
      nvml.get_memory_info(device, &memory) != kNvmlSuccess)
    return false;
  used = memory.used;
  return true;
}

}  // namespace

ContextOverheadProbe::ContextOverheadProbe(const DeviceQuota& quota) : quota_(quota) {
  if (!Opts().context_overhead) measuring_ = DeviceUsedBytes(quota_, used_before_);
}

uint64_t ContextOverheadProbe::Finish() const {
  if (Opts().context_overhead) return *Opts().context_overhead;
  uint64_t used_after = 0;
  if (!measuring_ || !DeviceUsedBytes(quota_, used_after)) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      GS_LOG_INFO("NVML unavailable: contexts' own memory is not counted "
                  "(set GPUSHARE_CONTEXT_OVERHEAD to count it)");
    });
    return 0;
  }
  const uint64_t growth = used_after > used_before_ ? used_after - used_before_ : 0;
  const uint64_t overhead = growth <= kMaxPlausibleOverhead ? growth : 0;
  GS_LOG_DEBUG("device {}: context overhead measured at {} bytes", quota_.ordinal(), overhead);
  return overhead;
}

}  // namespace gpushare::quota
