// SPDX-License-Identifier: Apache-2.0
// Swappable allocations: under GPUSHARE_RESOLVER=swap, cuMemAlloc is served from VMM (a reserved
// address range, cuMemCreate, cuMemMap, cuMemSetAccess), so that the physical memory behind an
// address can be released and created again later at the same address. The program sees
// cuMemAlloc's behaviour: pointer attributes, address ranges and frees are answered from this
// table (VMM memory answers them differently: a null CONTEXT, NOT_FOUND while unmapped).
//
// Sizes are rounded up to the VMM granularity (2 MiB on the H100); the rounded size is what is
// charged (PyTorch's caching allocator asks for 2 MiB and >= 20 MiB segments, so it loses
// nothing). What stays resident, counted as before: cuMemAllocPitch, cuMemAllocManaged,
// stream-ordered pools, arrays, the program's own cuMemCreate, graph memory. Legacy IPC
// (cuIpcGetMemHandle) refuses VMM memory: a swap tenant cannot export cuMemAlloc memory that way.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "quota/memory_accounting.h"
#include "src/cuda_api.h"

namespace gpushare::quota::swap {

// cuMemAlloc for a swap tenant: charges the rounded size to target.quota.
CUresult Allocate(const Target& target, size_t bytes, CUdeviceptr* dptr);
// cuMemFree (or cuMemFreeAsync, after synchronizing `stream`) of an address from Allocate: true
// with *rc when it was ours; false: not ours, the caller passes it to the driver.
bool Free(CUdeviceptr dptr, CUresult* rc);
// Pointer queries for an address inside a swappable allocation; false when it is not in one.
bool AddressRange(CUdeviceptr dptr, CUdeviceptr* base, size_t* size);
bool PointerAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr dptr, CUresult* rc);
// A context was destroyed or reset: its allocations are freed (cuMemAlloc memory dies with it).
void ForgetContext(CUcontext ctx);

// For the agent (gate closed, process drained).
struct Staging;
// Contexts owning swappable allocations: what a drain synchronizes.
std::vector<CUcontext> Contexts();
// Resident bytes that could be moved out, per quota (nullptr: all).
uint64_t SwappableBytes(const DeviceQuota* quota);
// Bytes out, per quota (nullptr: all).
uint64_t OutBytes(const DeviceQuota* quota);
// Moves allocations of `quota`, largest first, until at least `want` bytes are out: copied into
// staging, unmapped, released and uncharged. Returns the bytes moved.
uint64_t SwapOut(DeviceQuota& quota, uint64_t want, Staging& staging);
// Brings allocations that are out back to their addresses, as many as `budget` (bytes charged
// for them, per quota) covers. Reports the bytes brought back per quota through `done`;
// CUDA_SUCCESS or the driver's error (what could not come back stays out).
CUresult SwapIn(Staging& staging, const std::map<DeviceQuota*, uint64_t>& budget,
                const std::function<void(DeviceQuota&, uint64_t)>& done);
// The quotas with memory out now.
std::vector<DeviceQuota*> QuotasWithMemoryOut();

}  // namespace gpushare::quota::swap
