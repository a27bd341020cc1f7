// SPDX-License-Identifier: Apache-2.0
// What this process holds on each limited device, by driver handle, so that frees, context
// destruction and resets give back exactly what was charged.
#pragma once
#include <cstdint>

#include "src/cuda_api.h"

namespace gpushare::quota {

enum class HandleKind : uint8_t { kDevicePtr, kVmmHandle, kArray, kMipmappedArray, kContext };

struct Allocation {
  CUdevice device;
  uint64_t bytes;
  CUcontext context;  // the context that owns it; memory dies with its context
};

// Records a kept charge. Thread-safe.
void Record(HandleKind kind, uint64_t handle, const Allocation& allocation);
// Forgets a handle and uncharges its bytes; false when it was not recorded (not ours, or on an
// unlimited device).
bool Forget(HandleKind kind, uint64_t handle);
// A context was destroyed or reset: uncharges and forgets everything it owned (its own overhead,
// recorded as kContext, is kept when keep_overhead is set).
void ForgetContext(CUcontext context, bool keep_overhead);

}  // namespace gpushare::quota
