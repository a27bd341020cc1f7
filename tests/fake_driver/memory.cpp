// SPDX-License-Identifier: Apache-2.0
// The device address map and linear allocations: cuMemAlloc / Pitch / Managed / Free and
// cuMemGetInfo. Device memory is anonymous MAP_NORESERVE memory, so multi-GiB fake allocations
// cost no RAM until touched, and host code ("kernels", tests) can use the addresses directly.
#include "tests/fake_driver/state.h"

#include <sys/mman.h>

namespace fakecuda {

void* map_region(size_t size, size_t align, int prot) {
  if (align < 4096) align = 4096;
  const size_t span = size + align;
  void* p = mmap(nullptr, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = round_up(raw, align);
  if (base > raw) munmap(p, base - raw);
  const uintptr_t end = base + round_up(size, 4096);
  if (raw + span > end) munmap(reinterpret_cast<void*>(end), raw + span - end);
  return reinterpret_cast<void*>(base);
}

Range* find_range(uintptr_t addr) {
  auto& ranges = drv().ranges;
  auto it = ranges.upper_bound(addr);
  if (it == ranges.begin()) return nullptr;
  --it;
  Range& r = it->second;
  return addr - r.base < r.size ? &r : nullptr;
}

Range* find_range_base(uintptr_t base) {
  auto it = drv().ranges.find(base);
  return it == drv().ranges.end() ? nullptr : &it->second;
}

bool range_accessible(uintptr_t addr, size_t n, int prot) {
  if (addr + n < addr) return false;
  while (n > 0) {
    const Range* r = find_range(addr);
    if (r == nullptr || (r->prot & prot) != prot) return false;
    const size_t in_range = r->base + r->size - addr;
    if (in_range >= n) return true;
    addr += in_range;
    n -= in_range;
  }
  return true;
}

namespace {

CUresult alloc_linear(Context* ctx, size_t bytes, RangeKind kind, CUdeviceptr* out) {
  if (bytes > kMaxRequest) return CUDA_ERROR_OUT_OF_MEMORY;
  if (!phys_charge(ctx->device, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  void* p = map_region(bytes, 4096, PROT_READ | PROT_WRITE);
  if (p == nullptr) {
    phys_release(ctx->device, bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  Range r;
  r.base = reinterpret_cast<uintptr_t>(p);
  r.size = bytes;
  r.kind = kind;
  r.ctx = ctx;
  r.device = ctx->device;
  r.prot = PROT_READ | PROT_WRITE;
  drv().ranges.emplace(r.base, r);
  *out = r.base;
  return CUDA_SUCCESS;
}

}  // namespace

void free_linear(uintptr_t base) {
  Range& r = drv().ranges.at(base);
  munmap(reinterpret_cast<void*>(r.base), r.size);
  phys_release(r.device, r.size);
  drv().ranges.erase(base);
}

void memory_release_context(Context* ctx) {
  std::vector<uintptr_t> doomed;
  for (const auto& [base, r] : drv().ranges) {
    if (r.ctx == ctx && (r.kind == RangeKind::kAlloc || r.kind == RangeKind::kManaged)) {
      doomed.push_back(base);
    }
  }
  for (uintptr_t base : doomed) free_linear(base);
}

void memory_reset() {
  std::vector<uintptr_t> doomed;
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kAlloc || r.kind == RangeKind::kManaged) doomed.push_back(base);
  }
  for (uintptr_t base : doomed) free_linear(base);
}

int memory_live_count() {
  int n = 0;
  for (const auto& [base, r] : drv().ranges) n += r.kind != RangeKind::kVmmMapping;
  return n;
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  FAKE_ENTER();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  return alloc_linear(c, bytesize, RangeKind::kAlloc, dptr);
}

FAKE_API CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width,
                                     size_t height, unsigned int element_size) {
  FAKE_ENTER();
  if (dptr == nullptr || pitch == nullptr || width == 0 || height == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (element_size != 4 && element_size != 8 && element_size != 16) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  const size_t p = round_up(width, 512);
  FAKE_TRY(alloc_linear(c, p * height, RangeKind::kAlloc, dptr));
  *pitch = p;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  FAKE_ENTER();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  return alloc_linear(c, bytesize, RangeKind::kManaged, dptr);
}

FAKE_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
  FAKE_ENTER();
  if (dptr == 0) return CUDA_SUCCESS;
  Range* r = find_range_base(dptr);
  if (r == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (r->kind) {
    case RangeKind::kAlloc:
    case RangeKind::kManaged: free_linear(dptr); return CUDA_SUCCESS;
    case RangeKind::kPoolBlock: pool_free_block(*r); return CUDA_SUCCESS;
    case RangeKind::kGraphAlloc: graph_free_alloc(*r); return CUDA_SUCCESS;
    case RangeKind::kVmmMapping: break;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// Either output may be NULL, as on the real driver (OptiX passes a NULL free): it is not written.
FAKE_API CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  FAKE_ENTER();
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  const uint64_t total = drv().devices[c->device].total;
  const uint64_t used = phys_used_all(c->device);
  if (total_bytes != nullptr) *total_bytes = total;
  if (free_bytes != nullptr) *free_bytes = used >= total ? 0 : total - used;
  return CUDA_SUCCESS;
}
