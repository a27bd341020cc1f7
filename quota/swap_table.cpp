// SPDX-License-Identifier: Apache-2.0
#include "quota/swap_table.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "quota/charge.h"
#include "quota/swap_staging.h"
#include "quota/unseen_memory.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::quota::swap {
namespace {

struct Entry {
  uint64_t bytes = 0;   // as asked: what pointer queries report
  uint64_t mapped = 0;  // rounded to the granularity: what is mapped and charged while resident
  DeviceQuota* quota = nullptr;
  CUcontext context = nullptr;
  CUmemGenericAllocationHandle handle = 0;  // 0 while out
  void* staging = nullptr;                  // its contents while out
  bool pooled = false;                      // staging from the pinned pool
  uint64_t id = 0;                          // CU_POINTER_ATTRIBUTE_BUFFER_ID
};

struct Table {
  std::mutex mu;
  std::map<CUdeviceptr, Entry> entries;  // by base address
  uint64_t next_id = 1;
};

Table& TheTable() {
  static Table* table = new Table;  // outlives static destructors: frees may run during exit
  return *table;
}

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

CUmemAllocationProp PropFor(CUdevice device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

uint64_t Granularity(CUdevice device) {
  const CUmemAllocationProp prop = PropFor(device);
  size_t g = 0;
  if (Real().cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS || g == 0)
    g = 2u << 20;
  return g;
}

// Physical memory at `base`: create, map, grant the device read-write access.
CUresult MapAt(Entry& e, CUdeviceptr base) {
  const CUmemAllocationProp prop = PropFor(e.quota->ordinal());
  CUmemGenericAllocationHandle h = 0;
  CUresult rc = Real().cuMemCreate(&h, e.mapped, &prop, 0);
  if (rc != CUDA_SUCCESS) return rc;
  rc = Real().cuMemMap(base, e.mapped, 0, h, 0);
  if (rc == CUDA_SUCCESS) {
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    rc = Real().cuMemSetAccess(base, e.mapped, &access, 1);
    if (rc != CUDA_SUCCESS) Real().cuMemUnmap(base, e.mapped);
  }
  if (rc != CUDA_SUCCESS) {
    Real().cuMemRelease(h);
    return rc;
  }
  e.handle = h;
  return CUDA_SUCCESS;
}

void Unmap(Entry& e, CUdeviceptr base) {
  Real().cuMemUnmap(base, e.mapped);
  Real().cuMemRelease(e.handle);
  e.handle = 0;
}

// Runs fn with ctx current on this thread.
template <typename Fn>
CUresult WithContext(CUcontext ctx, Fn&& fn) {
  CUresult rc = Real().cuCtxPushCurrent_v2(ctx);
  if (rc != CUDA_SUCCESS) return rc;
  rc = fn();
  CUcontext popped = nullptr;
  Real().cuCtxPopCurrent_v2(&popped);
  return rc;
}

uint64_t SumLocked(const Table& t, const DeviceQuota* quota, bool out) {
  uint64_t sum = 0;
  for (const auto& [base, e] : t.entries)
    if ((quota == nullptr || e.quota == quota) && (e.handle == 0) == out) sum += e.mapped;
  return sum;
}

// Tells the ledger what this process could move and has out on the quota's GPU.
void PublishLocked(const Table& t, DeviceQuota& quota) {
  if (LedgerSession* s = quota.session()) s->SetSwapBytes(SumLocked(t, &quota, false), SumLocked(t, &quota, true));
}

// The entry whose [base, base + bytes) holds dptr.
Entry* FindLocked(Table& t, CUdeviceptr dptr, CUdeviceptr* base) {
  auto it = t.entries.upper_bound(dptr);
  if (it == t.entries.begin()) return nullptr;
  --it;
  if (dptr - it->first >= it->second.bytes) return nullptr;
  *base = it->first;
  return &it->second;
}

// Frees an entry already taken out of the table: the caller synchronized if it had to.
void Release(Entry& e, CUdeviceptr base) {
  if (e.handle != 0) {
    Unmap(e, base);
    e.quota->Uncharge(e.mapped);
  } else if (!e.pooled) {
    std::free(e.staging);  // pooled staging comes back when the pool starts over
  }
  Real().cuMemAddressFree(base, e.mapped);
}

// `data` points at the attribute's own type, as the driver's caller passes it.
template <typename T>
void Put(void* data, T value) {
  *static_cast<T*>(data) = value;
}

}  // namespace

CUresult Allocate(const Target& target, size_t bytes, CUdeviceptr* dptr) {
  if (dptr == nullptr || bytes == 0) return Real().cuMemAlloc_v2(dptr, bytes);
  DeviceQuota& q = *target.quota;
  const uint64_t granularity = Granularity(q.ordinal());
  Entry e;
  e.bytes = bytes;
  e.mapped = RoundUp(bytes, granularity);
  e.quota = &q;
  e.context = target.context;
  Charge charge = ChargeAllocation(q, e.mapped);
  if (!charge) return Deny(q, e.mapped, "cuMemAlloc");
  CUdeviceptr base = 0;
  CUresult rc = Real().cuMemAddressReserve(&base, e.mapped, granularity, 0, 0);
  if (rc != CUDA_SUCCESS) return rc;
  rc = CallDriverGranted(q, charge, [&] { return MapAt(e, base); });
  if (rc != CUDA_SUCCESS) {
    Real().cuMemAddressFree(base, e.mapped);
    return rc;
  }
  charge.Keep();
  Table& t = TheTable();
  {
    std::lock_guard lock(t.mu);
    e.id = t.next_id++;
    t.entries.emplace(base, e);
    PublishLocked(t, q);
  }
  *dptr = base;
  return CUDA_SUCCESS;
}

bool Free(CUdeviceptr dptr, CUresult* rc) {
  Table& t = TheTable();
  Entry e;
  {
    std::lock_guard lock(t.mu);
    auto it = t.entries.find(dptr);
    if (it == t.entries.end()) return false;
    e = it->second;
    t.entries.erase(it);
    if (e.handle == 0) Release(e, dptr);  // out: nothing on the GPU uses it
    PublishLocked(t, *e.quota);
  }
  *rc = CUDA_SUCCESS;
  if (e.handle == 0) return true;
  // cuMemFree waits for the device; cuMemUnmap does not, and unmapping under running work loses
  // the context: wait as cuMemFree would.
  *rc = WithContext(e.context, [] { return Real().cuCtxSynchronize(); });
  Release(e, dptr);
  return true;
}

bool AddressRange(CUdeviceptr dptr, CUdeviceptr* base, size_t* size) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  CUdeviceptr b = 0;
  const Entry* e = FindLocked(t, dptr, &b);
  if (e == nullptr) return false;
  if (base != nullptr) *base = b;
  if (size != nullptr) *size = e->bytes;
  return true;
}

bool PointerAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr dptr, CUresult* rc) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  CUdeviceptr base = 0;
  const Entry* e = FindLocked(t, dptr, &base);
  if (e == nullptr) return false;
  *rc = CUDA_SUCCESS;
  if (data == nullptr) {
    *rc = CUDA_ERROR_INVALID_VALUE;
    return true;
  }
  // As the driver answers for cuMemAlloc memory.
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: Put(data, e->context); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: Put<unsigned>(data, CU_MEMORYTYPE_DEVICE); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: Put<CUdeviceptr>(data, dptr); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: *rc = CUDA_ERROR_INVALID_VALUE; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: Put<bool>(data, false); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: Put<int>(data, e->quota->ordinal()); break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: Put<CUdeviceptr>(data, base); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: Put<size_t>(data, e->bytes); break;
    case CU_POINTER_ATTRIBUTE_MAPPED: Put<bool>(data, true); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: Put<unsigned long long>(data, e->id); break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: Put<bool>(data, false); break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: Put<unsigned>(data, CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE); break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: Put<CUmemoryPool>(data, nullptr); break;
    default:
      if (e->handle != 0) return false;  // resident: the driver answers the rest
      *rc = CUDA_ERROR_INVALID_VALUE;     // out: nothing to ask the driver about
  }
  return true;
}

void ForgetContext(CUcontext ctx) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  std::vector<DeviceQuota*> touched;
  for (auto it = t.entries.begin(); it != t.entries.end();) {
    if (it->second.context != ctx) {
      ++it;
      continue;
    }
    Release(it->second, it->first);  // the context's work ended with it
    touched.push_back(it->second.quota);
    it = t.entries.erase(it);
  }
  for (DeviceQuota* q : touched) PublishLocked(t, *q);
}

std::vector<CUcontext> Contexts() {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  std::vector<CUcontext> out;
  for (const auto& [base, e] : t.entries)
    if (std::find(out.begin(), out.end(), e.context) == out.end()) out.push_back(e.context);
  return out;
}

uint64_t SwappableBytes(const DeviceQuota* quota) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  return SumLocked(t, quota, false);
}

uint64_t OutBytes(const DeviceQuota* quota) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  return SumLocked(t, quota, true);
}

std::vector<DeviceQuota*> QuotasWithMemoryOut() {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  std::vector<DeviceQuota*> out;
  for (const auto& [base, e] : t.entries)
    if (e.handle == 0 && std::find(out.begin(), out.end(), e.quota) == out.end()) out.push_back(e.quota);
  return out;
}

uint64_t SwapOut(DeviceQuota& quota, uint64_t want, Staging& staging) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  std::vector<std::pair<CUdeviceptr, Entry*>> resident;
  for (auto& [base, e] : t.entries)
    if (e.quota == &quota && e.handle != 0) resident.emplace_back(base, &e);
  std::stable_sort(resident.begin(), resident.end(),
                   [](const auto& a, const auto& b) { return a.second->mapped > b.second->mapped; });
  uint64_t moved = 0;
  for (auto& [base, e] : resident) {
    if (moved >= want) break;
    bool pooled = false;
    void* host = staging.Take(e->bytes, &pooled);
    if (host == nullptr) {
      GS_LOG_ERROR("gpushare: swap-out: no host memory for {} bytes; {} bytes moved", e->bytes, moved);
      break;
    }
    const CUdeviceptr src = base;
    const uint64_t n = e->bytes;
    const CUresult rc = WithContext(e->context, [&] { return Real().cuMemcpyDtoH_v2(host, src, n); });
    if (rc != CUDA_SUCCESS) {
      staging.Give(host, pooled);
      GS_LOG_ERROR("gpushare: swap-out: copying {} bytes at {:#x} to host failed ({}); it stays resident", n,
                   src, static_cast<int>(rc));
      break;
    }
    Unmap(*e, base);
    e->staging = host;
    e->pooled = pooled;
    quota.Uncharge(e->mapped);  // the ledger shows it free now
    moved += e->mapped;
  }
  PublishLocked(t, quota);
  return moved;
}

CUresult SwapIn(Staging& staging, const std::map<DeviceQuota*, uint64_t>& budget,
                const std::function<void(DeviceQuota&, uint64_t)>& done) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  std::map<DeviceQuota*, uint64_t> back;
  CUresult result = CUDA_SUCCESS;
  for (auto& [base, e] : t.entries) {
    if (e.handle != 0) continue;
    const auto allowed = budget.find(e.quota);
    if (allowed == budget.end() || back[e.quota] + e.mapped > allowed->second) continue;  // not charged
    CUresult rc = MapAt(e, base);
    if (rc == CUDA_SUCCESS) {
      const void* host = e.staging;
      const CUdeviceptr dst = base;
      const uint64_t n = e.bytes;
      rc = WithContext(e.context, [&] { return Real().cuMemcpyHtoD_v2(dst, host, n); });
      if (rc != CUDA_SUCCESS) Unmap(e, base);
    }
    if (rc != CUDA_SUCCESS) {
      GS_LOG_ERROR("gpushare: swap-in of {} bytes at {:#x} failed ({}); it stays out", e.bytes, base,
                   static_cast<int>(rc));
      result = rc;
      break;
    }
    staging.Give(e.staging, e.pooled);
    e.staging = nullptr;
    back[e.quota] += e.mapped;
  }
  if (SumLocked(t, nullptr, true) == 0) staging.Reset();
  for (auto& [q, bytes] : back) {
    PublishLocked(t, *q);
    done(*q, bytes);
  }
  return result;
}

}  // namespace gpushare::quota::swap
