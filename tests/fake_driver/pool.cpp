// SPDX-License-Identifier: Apache-2.0
// Stream-ordered allocation and memory pools. A pool grows in chunks (the request rounded up to
// 2 MiB, each charged to physical memory); freed blocks go back to their chunk; whole unused
// chunks are released at synchronization above the release threshold, or by cuMemPoolTrimTo.
#include "tests/fake_driver/state.h"

#include <sys/mman.h>

#include <algorithm>

namespace fakecuda {

struct Chunk {
  uintptr_t base = 0;
  size_t size = 0;
  std::map<size_t, size_t> blocks;  // offset -> length (rounded to kBlockAlign)
};

struct Pool {
  int device = 0;
  bool is_default = false;
  uint64_t threshold = 0;
  uint64_t reserved = 0, used = 0, reserved_high = 0, used_high = 0;
  int reuse_follow = 1, reuse_opportunistic = 1, reuse_internal = 1;
  std::vector<std::unique_ptr<Chunk>> chunks;
};

namespace {

constexpr size_t kBlockAlign = 512;

std::vector<std::unique_ptr<Pool>>& pools() {
  static auto* v = new std::vector<std::unique_ptr<Pool>>;
  return *v;
}

Pool* as_pool(CUmemoryPool p) { return reinterpret_cast<Pool*>(p); }

// First gap of `len` bytes in the chunk, or SIZE_MAX.
size_t find_gap(const Chunk& c, size_t len) {
  size_t at = 0;
  for (const auto& [off, blen] : c.blocks) {
    if (off - at >= len) return at;
    at = off + blen;
  }
  return c.size - at >= len ? at : SIZE_MAX;
}

void release_chunks(Pool& p, uint64_t keep) {
  for (size_t i = p.chunks.size(); i-- > 0 && p.reserved > keep;) {
    Chunk& c = *p.chunks[i];
    if (!c.blocks.empty()) continue;
    munmap(reinterpret_cast<void*>(c.base), c.size);
    phys_release(p.device, c.size);
    p.reserved -= c.size;
    p.chunks.erase(p.chunks.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void destroy_pool_memory(Pool& p) {
  std::vector<uintptr_t> doomed;
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kPoolBlock && r.pool == &p) doomed.push_back(base);
  }
  for (uintptr_t base : doomed) pool_free_block(drv().ranges.at(base));
  release_chunks(p, 0);
}

CUresult check_location(const CUmemLocation& loc) {
  if (loc.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  return valid_device(loc.id) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

}  // namespace

bool pool_known(CUmemoryPool pool) {
  for (const auto& p : pools()) {
    if (p.get() == as_pool(pool)) return true;
  }
  return false;
}

void pools_init() {
  for (size_t i = 0; i < drv().devices.size(); ++i) {
    auto p = std::make_unique<Pool>();
    p->device = static_cast<int>(i);
    p->is_default = true;
    drv().devices[i].default_pool = drv().devices[i].current_pool = p.get();
    pools().push_back(std::move(p));
  }
}

CUresult pool_alloc(Pool* pool, size_t size, Context* ctx, CUdeviceptr* out) {
  if (size > kMaxRequest) return CUDA_ERROR_OUT_OF_MEMORY;
  const size_t len = round_up(size, kBlockAlign);
  Chunk* chunk = nullptr;
  size_t off = SIZE_MAX;
  for (auto& c : pool->chunks) {
    if ((off = find_gap(*c, len)) != SIZE_MAX) {
      chunk = c.get();
      break;
    }
  }
  if (chunk == nullptr) {
    const size_t grow = round_up(size, kGranularity);
    if (!phys_charge(pool->device, grow)) return CUDA_ERROR_OUT_OF_MEMORY;
    void* mem = map_region(grow, kGranularity, PROT_READ | PROT_WRITE);
    if (mem == nullptr) {
      phys_release(pool->device, grow);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    auto c = std::make_unique<Chunk>();
    c->base = reinterpret_cast<uintptr_t>(mem);
    c->size = grow;
    chunk = c.get();
    off = 0;
    pool->chunks.push_back(std::move(c));
    pool->reserved += grow;
    pool->reserved_high = std::max(pool->reserved_high, pool->reserved);
  }
  chunk->blocks[off] = len;
  pool->used += size;
  pool->used_high = std::max(pool->used_high, pool->used);
  Range r;
  r.base = chunk->base + off;
  r.size = size;
  r.kind = RangeKind::kPoolBlock;
  r.ctx = ctx;
  r.device = pool->device;
  r.prot = PROT_READ | PROT_WRITE;
  r.pool = pool;
  r.chunk = chunk;
  drv().ranges.emplace(r.base, r);
  *out = r.base;
  return CUDA_SUCCESS;
}

void pool_free_block(Range& r) {
  r.chunk->blocks.erase(r.base - r.chunk->base);
  r.pool->used -= r.size;
  drv().ranges.erase(r.base);
}

void pools_on_synchronize(int device) {
  for (auto& p : pools()) {
    if (p->device == device) release_chunks(*p, p->threshold);
  }
}

void pool_release_context(Context* ctx) {
  std::vector<uintptr_t> doomed;
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kPoolBlock && r.ctx == ctx) doomed.push_back(base);
  }
  for (uintptr_t base : doomed) pool_free_block(drv().ranges.at(base));
  for (auto& p : pools()) {
    if (p->device == ctx->device) release_chunks(*p, 0);
  }
}

void pools_reset() {
  for (auto& p : pools()) destroy_pool_memory(*p);
  pools().clear();
}

}  // namespace fakecuda

using namespace fakecuda;

namespace {

CUresult alloc_async(CUdeviceptr* dptr, size_t size, Pool* pool, CUstream stream) {
  if (dptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  if (pool == nullptr) pool = drv().devices[c->device].current_pool;
  return pool_alloc(pool, size, c, dptr);
}

CUresult free_async(CUdeviceptr dptr, CUstream stream) {
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  Range* r = find_range_base(dptr);
  if (r == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // cuMemAlloc memory too: freed once the stream reaches the free, which here is now.
  if (r->kind == RangeKind::kPoolBlock) pool_free_block(*r);
  else if (r->kind == RangeKind::kGraphAlloc) graph_free_alloc(*r);
  else if (r->kind == RangeKind::kAlloc || r->kind == RangeKind::kManaged) free_linear(dptr);
  else return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult from_pool(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream stream) {
  if (pool == nullptr || !pool_known(pool)) return CUDA_ERROR_INVALID_VALUE;
  return alloc_async(dptr, size, as_pool(pool), stream);
}

}  // namespace

FAKE_API CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t size, CUstream stream) {
  FAKE_ENTER();
  return alloc_async(dptr, size, nullptr, stream);
}

FAKE_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t size, CUstream stream) {
  FAKE_ENTER();
  return alloc_async(dptr, size, nullptr, stream);
}

FAKE_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t size, CUmemoryPool pool,
                                          CUstream stream) {
  FAKE_ENTER();
  return from_pool(dptr, size, pool, stream);
}

FAKE_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t size,
                                               CUmemoryPool pool, CUstream stream) {
  FAKE_ENTER();
  return from_pool(dptr, size, pool, stream);
}

FAKE_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  FAKE_ENTER();
  return free_async(dptr, stream);
}

FAKE_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  FAKE_ENTER();
  return free_async(dptr, stream);
}

FAKE_API CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep) {
  FAKE_ENTER();
  if (!pool_known(pool)) return CUDA_ERROR_INVALID_VALUE;
  release_chunks(*as_pool(pool), keep);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props) {
  FAKE_ENTER();
  if (pool == nullptr || props == nullptr || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  FAKE_TRY(check_location(props->location));
  auto p = std::make_unique<Pool>();
  p->device = props->location.id;
  *pool = reinterpret_cast<CUmemoryPool>(p.get());
  pools().push_back(std::move(p));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  FAKE_ENTER();
  if (!pool_known(pool) || as_pool(pool)->is_default) return CUDA_ERROR_INVALID_VALUE;
  Pool* p = as_pool(pool);
  Device& dev = drv().devices[p->device];
  if (dev.current_pool == p) dev.current_pool = dev.default_pool;
  destroy_pool_memory(*p);
  std::erase_if(pools(), [p](const auto& q) { return q.get() == p; });
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                        void* value) {
  FAKE_ENTER();
  if (!pool_known(pool) || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Pool& p = *as_pool(pool);
  auto* u64 = static_cast<cuuint64_t*>(value);
  auto* i32 = static_cast<int*>(value);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *i32 = p.reuse_follow; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *i32 = p.reuse_opportunistic; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *i32 = p.reuse_internal; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *u64 = p.threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *u64 = p.reserved; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *u64 = p.reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *u64 = p.used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *u64 = p.used_high; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                        void* value) {
  FAKE_ENTER();
  if (!pool_known(pool) || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Pool& p = *as_pool(pool);
  const cuuint64_t u64 = *static_cast<cuuint64_t*>(value);
  const int i32 = *static_cast<int*>(value);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p.reuse_follow = i32; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p.reuse_opportunistic = i32; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p.reuse_internal = i32; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p.threshold = u64; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      if (u64 != 0) return CUDA_ERROR_INVALID_VALUE;
      p.reserved_high = p.reserved;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (u64 != 0) return CUDA_ERROR_INVALID_VALUE;
      p.used_high = p.used;
      break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  FAKE_ENTER();
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *pool = reinterpret_cast<CUmemoryPool>(drv().devices[dev].default_pool);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  FAKE_ENTER();
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *pool = reinterpret_cast<CUmemoryPool>(drv().devices[dev].current_pool);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  FAKE_ENTER();
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  if (!pool_known(pool) || as_pool(pool)->device != dev) return CUDA_ERROR_INVALID_VALUE;
  drv().devices[dev].current_pool = as_pool(pool);
  return CUDA_SUCCESS;
}
