// SPDX-License-Identifier: Apache-2.0
// A tenant's memory quota on one device, as this process holds it: the tenant's request and
// limit, kept in the node's ledger for that GPU (quota/ledger.h), which every process of every
// tenant shares. A device with an SM slice (GPUSHARE_SM) has one too, with request 0 and the
// whole GPU as limit when no memory quota is set; its slice is taken at the same join.
//
// How to charge a new kind of allocation: take a Charge (quota/charge.h, or ChargeAllocation in
// quota/unseen_memory.h) before calling the driver, Keep() it and record it in the
// AllocationTable once the driver succeeds, and Uncharge on the matching free. Devices without a
// request or limit have no DeviceQuota (nullptr): hooks then pass through untouched.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "quota/ledger.h"
#include "src/cuda_api.h"

namespace gpushare::quota {

class DeviceQuota {
 public:
  // session == nullptr: the tenant was refused on this device; every charge is denied.
  DeviceQuota(CUdevice ordinal, const CUuuid& uuid, uint64_t physical_bytes,
              std::unique_ptr<LedgerSession> session, bool show_request_as_total);

  // Check and reserve as one step, across every process of every tenant on this GPU. A burst
  // refused for lack of memory goes to the tenant's collision resolver (GPUSHARE_RESOLVER).
  bool TryCharge(uint64_t bytes) {
    return session_ != nullptr && session_->TryCharge(bytes, wait_timeout_ns_, wait_on_retry_only_);
  }
  // The same, waiting whatever GPUSHARE_WAIT_MODE says (a swap-in charges the memory it held).
  bool TryChargeWaiting(uint64_t bytes) {
    return session_ != nullptr && session_->TryCharge(bytes, wait_timeout_ns_, /*wait_on_retry_only=*/false);
  }
  // For memory the driver has already handed out (a pool grew): charged even past the limit.
  void ForceCharge(uint64_t bytes) {
    if (session_ != nullptr) session_->ForceCharge(bytes);
  }
  void Uncharge(uint64_t bytes) {
    if (session_ != nullptr) session_->Uncharge(bytes);
  }

  // The tenant's use, all its processes together.
  uint64_t used_bytes() const { return session_ != nullptr ? session_->tenant_used_bytes() : 0; }
  // This process's part of it.
  uint64_t process_used_bytes() const { return session_ != nullptr ? session_->process_used_bytes() : 0; }
  uint64_t limit_bytes() const { return session_ != nullptr ? session_->limit_bytes() : 0; }
  uint64_t request_bytes() const { return session_ != nullptr ? session_->request_bytes() : 0; }
  uint64_t physical_bytes() const { return physical_bytes_; }
  // What the program is shown as total: min(limit, physical), or the request when configured so.
  uint64_t visible_total_bytes() const;
  // What the tenant could allocate now: under its limit, and within its request or the free
  // burst pool. Never negative.
  uint64_t headroom_bytes() const { return session_ != nullptr ? session_->available_bytes() : 0; }

  // Memory the driver holds for this process outside every allocation we see (lazily loaded
  // kernel code, local memory, context growth): replaces the previous figure in the charge.
  void SetUnseen(uint64_t bytes);
  uint64_t unseen_bytes() const { return unseen_bytes_.load(std::memory_order_relaxed); }
  CUdevice ordinal() const { return ordinal_; }
  const CUuuid& uuid() const { return uuid_; }
  bool refused() const { return session_ == nullptr; }
  // Its tenant takes turns through host memory (GPUSHARE_RESOLVER=swap): cuMemAlloc is swappable.
  bool swaps() const { return session_ != nullptr && session_->resolver() == ResolverKind::kSwap; }
  LedgerSession* session() const { return session_.get(); }
  // How a colliding burst waits (GPUSHARE_WAIT_TIMEOUT, GPUSHARE_WAIT_MODE); 0 refuses at once.
  uint64_t wait_timeout_ns() const { return wait_timeout_ns_; }
  void SetWaitPolicy(uint64_t timeout_ns, bool on_retry_only) {
    wait_timeout_ns_ = timeout_ns;
    wait_on_retry_only_ = on_retry_only;
  }

 private:
  CUdevice ordinal_;
  CUuuid uuid_;
  uint64_t physical_bytes_;
  std::unique_ptr<LedgerSession> session_;
  bool show_request_as_total_;
  uint64_t wait_timeout_ns_ = 0;
  bool wait_on_retry_only_ = false;
  std::atomic<uint64_t> unseen_bytes_{0};
};

// The quota of a device ordinal, or nullptr when it has no request, limit or SM slice. Enumerates the
// devices and joins their ledgers on first use (after the driver's cuInit).
DeviceQuota* QuotaFor(CUdevice ordinal);
// The quota of the calling thread's current context's device; nullptr with no context or quota.
DeviceQuota* CurrentQuota();
// False when this process was refused on some device (its request cannot be guaranteed, or
// the ledger cannot be used): cuInit then fails, with the reason on stderr.
bool AllDevicesAdmitted();
// Calls fn(quota) for every device with a quota.
template <typename Fn>
void ForEachQuota(Fn&& fn) {
  for (CUdevice d = 0; d < 64; ++d)
    if (DeviceQuota* q = QuotaFor(d)) fn(*q);
}
// Formats a UUID as NVML does: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
void FormatUuid(const CUuuid& uuid, char (&out)[41]);

}  // namespace gpushare::quota
