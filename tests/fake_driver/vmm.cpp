// SPDX-License-Identifier: Apache-2.0
// Virtual memory management: physical handles backed by memfds (contents survive unmap/remap),
// PROT_NONE address reservations, mappings that stay inaccessible until cuMemSetAccess.
#include "tests/fake_driver/state.h"

#include <sys/mman.h>
#include <unistd.h>

namespace fakecuda {

struct VmmHandle {
  CUmemAllocationProp prop{};
  size_t size = 0;
  int fd = -1;
  int refs = 1;      // cuMemCreate + cuMemRetainAllocationHandle - cuMemRelease
  int mappings = 0;
};

namespace {

struct VmmState {
  std::map<CUmemGenericAllocationHandle, std::unique_ptr<VmmHandle>> handles;
  std::map<uintptr_t, size_t> reservations;  // base -> size
  CUmemGenericAllocationHandle next_id = 0x1000;
};

VmmState& vmm() {
  static auto* s = new VmmState;
  return *s;
}

VmmHandle* find_handle(CUmemGenericAllocationHandle h) {
  auto it = vmm().handles.find(h);
  return it == vmm().handles.end() || it->second->refs == 0 ? nullptr : it->second.get();
}

// Frees the physical memory once the handle is released and no longer mapped.
void maybe_destroy(VmmHandle* h) {
  if (h->refs > 0 || h->mappings > 0) return;
  close(h->fd);
  phys_release(h->prop.location.id, h->size);
  std::erase_if(vmm().handles, [h](const auto& kv) { return kv.second.get() == h; });
}

CUresult check_location(const CUmemLocation& loc) {
  if (loc.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  return valid_device(loc.id) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

// The VMM mappings exactly tiling [ptr, ptr+size), or empty if they do not.
std::vector<Range*> whole_mappings(uintptr_t ptr, size_t size) {
  std::vector<Range*> out;
  uintptr_t at = ptr;
  while (at < ptr + size) {
    Range* r = find_range_base(at);
    if (r == nullptr || r->kind != RangeKind::kVmmMapping || r->base + r->size > ptr + size) {
      return {};
    }
    out.push_back(r);
    at += r->size;
  }
  return out;
}

bool inside_reservation(uintptr_t ptr, size_t size) {
  auto& res = vmm().reservations;
  auto it = res.upper_bound(ptr);
  if (it == res.begin()) return false;
  --it;
  return ptr >= it->first && ptr + size <= it->first + it->second && ptr + size > ptr;
}

void unmap_one(Range* r) {
  mmap(reinterpret_cast<void*>(r->base), r->size, PROT_NONE,
       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  VmmHandle* h = r->handle;
  drv().ranges.erase(r->base);
  --h->mappings;
  maybe_destroy(h);
}

}  // namespace

void vmm_reset() {
  std::vector<Range*> maps;
  for (auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kVmmMapping) maps.push_back(&r);
  }
  for (Range* r : maps) unmap_one(r);
  for (const auto& [base, size] : vmm().reservations) munmap(reinterpret_cast<void*>(base), size);
  vmm().reservations.clear();
  for (auto& [id, h] : vmm().handles) {
    close(h->fd);
    phys_release(h->prop.location.id, h->size);
  }
  vmm().handles.clear();
}

int vmm_live_count() {
  int n = 0;
  for (const auto& [id, h] : vmm().handles) n += h->refs > 0;
  return n;
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuMemGetAllocationGranularity(size_t* granularity,
                                                const CUmemAllocationProp* prop,
                                                CUmemAllocationGranularity_flags option) {
  FAKE_ENTER();
  if (granularity == nullptr || prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
      option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  FAKE_TRY(check_location(prop->location));
  *granularity = kGranularity;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                              const CUmemAllocationProp* prop, unsigned long long flags) {
  FAKE_ENTER();
  if (handle == nullptr || prop == nullptr || flags != 0 || size == 0 ||
      size % kGranularity != 0 || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  FAKE_TRY(check_location(prop->location));
  const int dev = prop->location.id;
  if (!phys_charge(dev, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  int fd = memfd_create("fakecuda-vmm", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    if (fd >= 0) close(fd);
    phys_release(dev, size);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  auto h = std::make_unique<VmmHandle>();
  h->prop = *prop;
  h->size = size;
  h->fd = fd;
  const CUmemGenericAllocationHandle id = vmm().next_id++;
  vmm().handles.emplace(id, std::move(h));
  *handle = id;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  FAKE_ENTER();
  VmmHandle* h = find_handle(handle);
  if (h == nullptr) return CUDA_ERROR_INVALID_VALUE;
  --h->refs;
  maybe_destroy(h);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment,
                                      CUdeviceptr addr, unsigned long long /*flags*/) {
  FAKE_ENTER();
  if (ptr == nullptr || size == 0 || size % kGranularity != 0 ||
      (alignment & (alignment - 1)) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (alignment < kGranularity) alignment = kGranularity;
  void* p = nullptr;
  if (addr != 0 && addr % alignment == 0) {  // honour the hint when that range is free
    void* want = reinterpret_cast<void*>(addr);
    void* got = mmap(want, size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == want) p = got;
    else if (got != MAP_FAILED) munmap(got, size);
  }
  if (p == nullptr) p = map_region(size, alignment, PROT_NONE);
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  vmm().reservations[reinterpret_cast<uintptr_t>(p)] = size;
  *ptr = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  FAKE_ENTER();
  auto it = vmm().reservations.find(ptr);
  if (it == vmm().reservations.end() || it->second != size) return CUDA_ERROR_INVALID_VALUE;
  auto r = drv().ranges.lower_bound(ptr);
  if (r != drv().ranges.end() && r->first < ptr + size) return CUDA_ERROR_INVALID_VALUE;
  munmap(reinterpret_cast<void*>(ptr), size);
  vmm().reservations.erase(it);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                           CUmemGenericAllocationHandle handle, unsigned long long flags) {
  FAKE_ENTER();
  VmmHandle* h = find_handle(handle);
  if (h == nullptr || flags != 0 || offset != 0 || size == 0 || size % kGranularity != 0 ||
      ptr % kGranularity != 0 || size > h->size || !inside_reservation(ptr, size)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto next = drv().ranges.lower_bound(ptr);
  if (find_range(ptr) != nullptr || (next != drv().ranges.end() && next->first < ptr + size)) {
    return CUDA_ERROR_INVALID_VALUE;  // overlaps an existing mapping
  }
  void* p = mmap(reinterpret_cast<void*>(ptr), size, PROT_NONE, MAP_SHARED | MAP_FIXED, h->fd, 0);
  if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  Range r;
  r.base = ptr;
  r.size = size;
  r.kind = RangeKind::kVmmMapping;
  r.device = h->prop.location.id;
  r.prot = PROT_NONE;
  r.handle = h;
  drv().ranges.emplace(ptr, r);
  ++h->mappings;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc,
                                 size_t count) {
  FAKE_ENTER();
  if (desc == nullptr || count == 0) return CUDA_ERROR_INVALID_VALUE;
  int prot = PROT_NONE;
  for (size_t i = 0; i < count; ++i) {
    FAKE_TRY(check_location(desc[i].location));
    if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ) prot |= PROT_READ;
    else if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE) prot |= PROT_READ | PROT_WRITE;
    else if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE) return CUDA_ERROR_INVALID_VALUE;
  }
  std::vector<Range*> maps = whole_mappings(ptr, size);
  if (maps.empty()) return CUDA_ERROR_INVALID_VALUE;
  for (Range* r : maps) {
    mprotect(reinterpret_cast<void*>(r->base), r->size, prot);
    r->prot = prot;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  FAKE_ENTER();
  std::vector<Range*> maps = whole_mappings(ptr, size);
  if (maps.empty()) return CUDA_ERROR_INVALID_VALUE;
  for (Range* r : maps) unmap_one(r);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                         CUmemGenericAllocationHandle handle) {
  FAKE_ENTER();
  VmmHandle* h = find_handle(handle);
  if (prop == nullptr || h == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *prop = h->prop;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  FAKE_ENTER();
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Range* r = find_range(reinterpret_cast<uintptr_t>(addr));
  if (r == nullptr || r->kind != RangeKind::kVmmMapping) return CUDA_ERROR_INVALID_VALUE;
  for (auto& [id, h] : vmm().handles) {
    if (h.get() == r->handle) {
      ++h->refs;
      *handle = id;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}
