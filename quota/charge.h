// SPDX-License-Identifier: Apache-2.0
// A charge against a DeviceQuota that is released when it goes out of scope unless kept: every
// error path between "checked" and "the driver allocated" gives the bytes back.
#pragma once
#include <cstdint>
#include <utility>

#include "quota/device_quota.h"

namespace gpushare::quota {

class Charge {
 public:
  Charge() = default;
  // Denied (false) when `bytes` do not fit under the quota's limit.
  static Charge Try(DeviceQuota* quota, uint64_t bytes) {
    Charge c;
    if (quota != nullptr && quota->TryCharge(bytes)) {
      c.quota_ = quota;
      c.bytes_ = bytes;
    }
    return c;
  }
  Charge(Charge&& other) noexcept
      : quota_(std::exchange(other.quota_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  Charge& operator=(Charge&& other) noexcept {
    Release();
    quota_ = std::exchange(other.quota_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    return *this;
  }
  Charge(const Charge&) = delete;
  Charge& operator=(const Charge&) = delete;
  ~Charge() { Release(); }

  explicit operator bool() const { return quota_ != nullptr; }
  uint64_t bytes() const { return bytes_; }

  // Adjusts the charge to what the driver really took (a pitch, an array's padding). False, with
  // the charge unchanged, when growing it does not fit.
  bool Resize(uint64_t actual) {
    if (actual > bytes_) {
      if (!quota_->TryCharge(actual - bytes_)) return false;
    } else {
      quota_->Uncharge(bytes_ - actual);
    }
    bytes_ = actual;
    return true;
  }

  // The allocation succeeded: its owner now uncharges it on free.
  uint64_t Keep() {
    quota_ = nullptr;
    return bytes_;
  }

 private:
  void Release() {
    if (quota_ != nullptr) quota_->Uncharge(bytes_);
    quota_ = nullptr;
  }

  DeviceQuota* quota_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace gpushare::quota
