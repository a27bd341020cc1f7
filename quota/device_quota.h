// Per-device memory quota of this process: the limit and what is charged against it.
//
// How to charge a new kind of allocation: take a Charge (quota/charge.h) for the bytes before
// calling the driver, Keep() it and record it in the AllocationTable once the driver succeeds,
// and Uncharge on the matching free. Devices without a limit have no DeviceQuota (nullptr):
// hooks then pass through untouched.
#pragma once
#include <atomic>
#include <cstdint>

#include "src/cuda_api.h"

namespace gpushare::quota {

class DeviceQuota {
 public:
  DeviceQuota(CUdevice ordinal, const CUuuid& uuid, uint64_t physical_bytes, uint64_t limit_bytes);

  // Atomic check-and-add: false (and nothing charged) when bytes would pass the limit.
  bool TryCharge(uint64_t bytes);
  // For memory the driver has already handed out (a pool grew): charged even past the limit.
  void ForceCharge(uint64_t bytes);
  void Uncharge(uint64_t bytes);

  uint64_t used_bytes() const { return used_bytes_.load(std::memory_order_relaxed); }
  uint64_t limit_bytes() const { return limit_bytes_; }
  uint64_t physical_bytes() const { return physical_bytes_; }
  // What the program is shown: min(limit, physical).
  uint64_t visible_total_bytes() const;
  // Headroom left under the limit, never negative.
  uint64_t headroom_bytes() const;
  // Memory the driver holds for us outside every allocation we see (lazily loaded kernel code,
  // local memory, context growth): replaces the previous figure in the charge.
  void SetUnseen(uint64_t bytes);
  uint64_t unseen_bytes() const { return unseen_bytes_.load(std::memory_order_relaxed); }
  CUdevice ordinal() const { return ordinal_; }
  const CUuuid& uuid() const { return uuid_; }

 private:
  CUdevice ordinal_;
  CUuuid uuid_;
  uint64_t physical_bytes_;
  uint64_t limit_bytes_;
  std::atomic<uint64_t> used_bytes_{0};
  std::atomic<uint64_t> unseen_bytes_{0};
};

// The quota of a device ordinal, or nullptr when it has no limit. Enumerates the devices on
// first use (after the driver's cuInit); identity is the device UUID.
DeviceQuota* QuotaFor(CUdevice ordinal);
// The quota of the calling thread's current context's device; nullptr with no context or limit.
DeviceQuota* CurrentQuota();
// True when any device has a limit; false means every hook passes through.
bool AnyLimit();
// Calls fn(quota) for every limited device.
template <typename Fn>
void ForEachQuota(Fn&& fn) {
  for (CUdevice d = 0; d < 64; ++d)
    if (DeviceQuota* q = QuotaFor(d)) fn(*q);
}
// Formats a UUID as NVML does: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
void FormatUuid(const CUuuid& uuid, char (&out)[41]);

}  // namespace gpushare::quota
