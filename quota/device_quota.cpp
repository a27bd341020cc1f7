#include "quota/device_quota.h"

#include <array>
#include <cstdio>
#include <memory>
#include <mutex>

#include "src/log.h"
#include "src/options.h"
#include "src/real_driver.h"
#include "src/runtime.h"

namespace gpushare::quota {

DeviceQuota::DeviceQuota(CUdevice ordinal, const CUuuid& uuid, uint64_t physical_bytes,
                         uint64_t limit_bytes)
    : ordinal_(ordinal), uuid_(uuid), physical_bytes_(physical_bytes), limit_bytes_(limit_bytes) {}

bool DeviceQuota::TryCharge(uint64_t bytes) {
  uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_bytes_ || used > limit_bytes_ - bytes) return false;
  } while (!used_bytes_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

void DeviceQuota::ForceCharge(uint64_t bytes) { used_bytes_.fetch_add(bytes, std::memory_order_relaxed); }

void DeviceQuota::Uncharge(uint64_t bytes) {
  uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  // Saturate rather than wrap if a free is ever counted twice.
  while (!used_bytes_.compare_exchange_weak(used, used >= bytes ? used - bytes : 0,
                                            std::memory_order_relaxed)) {
  }
}

void DeviceQuota::SetUnseen(uint64_t bytes) {
  const uint64_t before = unseen_bytes_.exchange(bytes, std::memory_order_relaxed);
  if (bytes > before) {
    ForceCharge(bytes - before);
  } else {
    Uncharge(before - bytes);
  }
}

uint64_t DeviceQuota::visible_total_bytes() const {
  return limit_bytes_ < physical_bytes_ ? limit_bytes_ : physical_bytes_;
}

uint64_t DeviceQuota::headroom_bytes() const {
  const uint64_t used = used_bytes();
  return used < limit_bytes_ ? limit_bytes_ - used : 0;
}

void FormatUuid(const CUuuid& uuid, char (&out)[41]) {
  const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
  std::snprintf(out, sizeof out,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
}

namespace {

struct Registry {
  std::array<std::unique_ptr<DeviceQuota>, kMaxDevices> quotas;
  bool any_limit = false;
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

void Enumerate() {
  Registry& reg = TheRegistry();
  const RealDriver& real = Real();
  if (real.cuInit(0) != CUDA_SUCCESS) return;
  int count = 0;
  if (real.cuDeviceGetCount(&count) != CUDA_SUCCESS) return;
  for (int i = 0; i < count && i < kMaxDevices; ++i) {
    const std::optional<uint64_t> limit = Opts().mem_limit.For(i);
    if (!limit) continue;
    CUdevice dev = 0;
    CUuuid uuid{};
    size_t total = 0;
    if (real.cuDeviceGet(&dev, i) != CUDA_SUCCESS || real.cuDeviceGetUuid_v2(&uuid, dev) != CUDA_SUCCESS ||
        real.cuDeviceTotalMem_v2(&total, dev) != CUDA_SUCCESS) {
      // Fail closed: a limit we cannot tie to a device denies every allocation on it.
      GS_LOG_ERROR("device {}: cannot read its identity; all allocations on it are refused", i);
      reg.quotas[i] = std::make_unique<DeviceQuota>(dev, uuid, total, 0);
      reg.any_limit = true;
      continue;
    }
    reg.quotas[i] = std::make_unique<DeviceQuota>(dev, uuid, total, *limit);
    reg.any_limit = true;
    char name[41];
    FormatUuid(uuid, name);
    GS_LOG_INFO("device {} ({}): limit {} of {} bytes", i, name, *limit, total);
  }
}

Registry& Devices() {
  static std::once_flag once;
  std::call_once(once, Enumerate);
  return TheRegistry();
}

}  // namespace

DeviceQuota* QuotaFor(CUdevice ordinal) {
  if (ordinal < 0 || ordinal >= kMaxDevices) return nullptr;
  return Devices().quotas[ordinal].get();
}

DeviceQuota* CurrentQuota() {
  CUdevice dev = 0;
  if (Real().cuCtxGetDevice(&dev) != CUDA_SUCCESS) return nullptr;
  return QuotaFor(dev);
}

bool AnyLimit() { return Devices().any_limit; }

}  // namespace gpushare::quota
