// SPDX-License-Identifier: Apache-2.0
// Stream-ordered allocators hold device memory the program has already freed: a memory pool
// keeps its reserved memory until trimmed, and graphs keep the memory of their allocation nodes.
// The charge for them is therefore what the driver reports as reserved, re-read whenever it can
// change, not the sum of the program's allocations.
#pragma once
#include <cstdint>

#include "quota/charge.h"
#include "src/cuda_api.h"

namespace gpushare::quota {

// Before an allocation from `pool`: re-reads the pool and charges what it may have to grow by
// (the bytes that do not fit in its free reserved memory). Denied when that does not fit.
Charge ReservePoolGrowth(DeviceQuota& quota, CUmemoryPool pool, uint64_t bytes);
// After the pool may have changed: charge := its reserved bytes.
void SyncPool(DeviceQuota& quota, CUmemoryPool pool);
// The pool is gone: its charge is released.
void ForgetPool(CUmemoryPool pool);
// Re-reads every pool we know (before reporting free memory).
void SyncAllPools();

// Graph allocation nodes: physical memory appears at a graph's launch.
void NoteGraphMemoryUse();
bool GraphMemoryInUse();
void SyncGraphMemory(DeviceQuota& quota);

}  // namespace gpushare::quota
