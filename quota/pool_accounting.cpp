// SPDX-License-Identifier: Apache-2.0
#include "quota/pool_accounting.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "quota/unseen_memory.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::quota {
namespace {

struct PoolCharge {
  DeviceQuota* quota;
  uint64_t charged_bytes;
};

struct Pools {
  std::mutex mu;
  std::unordered_map<CUmemoryPool, PoolCharge> charges;
};

Pools& ThePools() {
  static Pools* pools = new Pools;  // outlives static destructors
  return *pools;
}

uint64_t PoolAttribute(CUmemoryPool pool, CUmemPool_attribute attribute) {
  cuuint64_t value = 0;
  if (Real().cuMemPoolGetAttribute(pool, attribute, &value) != CUDA_SUCCESS) return 0;
  return value;
}

// Moves the pool's charge to `reserved`. Caller holds Pools::mu.
void SetCharge(PoolCharge& charge, uint64_t reserved) {
  if (reserved > charge.charged_bytes) {
    charge.quota->ForceCharge(reserved - charge.charged_bytes);
  } else {
    charge.quota->Uncharge(charge.charged_bytes - reserved);
  }
  charge.charged_bytes = reserved;
}

void SyncLocked(Pools& pools, DeviceQuota& quota, CUmemoryPool pool) {
  auto [it, inserted] = pools.charges.try_emplace(pool, PoolCharge{&quota, 0});
  (void)inserted;
  SetCharge(it->second, PoolAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
}

std::atomic<bool> g_graph_memory{false};
std::mutex g_graph_mu;
uint64_t g_graph_charged[64];

}  // namespace

Charge ReservePoolGrowth(DeviceQuota& quota, CUmemoryPool pool, uint64_t bytes) {
  uint64_t growth = 0;
  {
    Pools& pools = ThePools();
    std::lock_guard lock(pools.mu);
    SyncLocked(pools, quota, pool);
    const uint64_t reserved = pools.charges[pool].charged_bytes;
    const uint64_t used = PoolAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
    const uint64_t idle = reserved > used ? reserved - used : 0;
    growth = bytes > idle ? bytes - idle : 0;
  }
  // Outside the lock: a colliding charge may wait (GPUSHARE_RESOLVER) for other tenants.
  return ChargeAllocation(quota, growth);
}

void SyncPool(DeviceQuota& quota, CUmemoryPool pool) {
  Pools& pools = ThePools();
  std::lock_guard lock(pools.mu);
  SyncLocked(pools, quota, pool);
}

void ForgetPool(CUmemoryPool pool) {
  Pools& pools = ThePools();
  std::lock_guard lock(pools.mu);
  auto it = pools.charges.find(pool);
  if (it == pools.charges.end()) return;
  SetCharge(it->second, 0);
  pools.charges.erase(it);
}

void SyncAllPools() {
  Pools& pools = ThePools();
  std::lock_guard lock(pools.mu);
  for (auto& [pool, charge] : pools.charges)
    SetCharge(charge, PoolAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
}

void NoteGraphMemoryUse() { g_graph_memory.store(true, std::memory_order_relaxed); }

bool GraphMemoryInUse() { return g_graph_memory.load(std::memory_order_relaxed); }

void SyncGraphMemory(DeviceQuota& quota) {
  cuuint64_t reserved = 0;
  if (Real().cuDeviceGetGraphMemAttribute(quota.ordinal(), CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
                                          &reserved) != CUDA_SUCCESS)
    return;
  std::lock_guard lock(g_graph_mu);
  uint64_t& charged = g_graph_charged[quota.ordinal() & 63];
  if (reserved > charged) {
    quota.ForceCharge(reserved - charged);
  } else {
    quota.Uncharge(charged - reserved);
  }
  charged = reserved;
}

}  // namespace gpushare::quota
