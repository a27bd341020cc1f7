// SPDX-License-Identifier: Apache-2.0
// Pointer queries (cuMemGetAddressRange, cuPointerGetAttribute) and page-locked host memory
// (cuMemAllocHost / cuMemHostAlloc / cuMemFreeHost: plain host memory, never charged).
#include "tests/fake_driver/state.h"

#include <cstdlib>

namespace fakecuda {
namespace {

struct HostAlloc {
  size_t size;
  Context* ctx;
};

std::map<uintptr_t, HostAlloc>& host_allocs() {
  static auto* m = new std::map<uintptr_t, HostAlloc>;
  return *m;
}

// cuMemHostRegister'ed ranges (also in host_allocs, for pointer queries; never freed by us).
std::map<uintptr_t, HostAlloc>& registered() {
  static auto* m = new std::map<uintptr_t, HostAlloc>;
  return *m;
}

const std::pair<const uintptr_t, HostAlloc>* find_host(uintptr_t p) {
  auto& m = host_allocs();
  auto it = m.upper_bound(p);
  if (it == m.begin()) return nullptr;
  --it;
  return p - it->first < it->second.size ? &*it : nullptr;
}

CUresult host_alloc(void** pp, size_t bytesize) {
  if (pp == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  void* p = std::aligned_alloc(4096, round_up(bytesize, 4096));
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  host_allocs()[reinterpret_cast<uintptr_t>(p)] = HostAlloc{bytesize, c};
  *pp = p;
  return CUDA_SUCCESS;
}

template <typename T>
void put(void* data, T value) {
  *static_cast<T*>(data) = value;
}

}  // namespace

void host_reset() {
  for (const auto& [p, a] : host_allocs())
    if (registered().count(p) == 0) std::free(reinterpret_cast<void*>(p));
  host_allocs().clear();
  registered().clear();
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) {
  FAKE_ENTER();
  return host_alloc(pp, bytesize);
}

FAKE_API CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int /*flags*/) {
  FAKE_ENTER();
  return host_alloc(pp, bytesize);
}

FAKE_API CUresult cuMemFreeHost(void* p) {
  FAKE_ENTER();
  auto it = host_allocs().find(reinterpret_cast<uintptr_t>(p));
  if (it == host_allocs().end() || registered().count(it->first) != 0) return CUDA_ERROR_INVALID_VALUE;
  std::free(p);
  host_allocs().erase(it);
  return CUDA_SUCCESS;
}

// Page-locks host memory: the fake only remembers the range (cuPointerGetAttribute answers it
// as host memory of the current context).
FAKE_API CUresult cuMemHostRegister_v2(void* p, size_t bytesize, unsigned int /*flags*/) {
  FAKE_ENTER();
  if (p == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  if (find_host(reinterpret_cast<uintptr_t>(p)) != nullptr) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  registered()[reinterpret_cast<uintptr_t>(p)] = HostAlloc{bytesize, c};
  host_allocs()[reinterpret_cast<uintptr_t>(p)] = HostAlloc{bytesize, c};
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemHostUnregister(void* p) {
  FAKE_ENTER();
  auto it = registered().find(reinterpret_cast<uintptr_t>(p));
  if (it == registered().end()) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  registered().erase(it);
  host_allocs().erase(reinterpret_cast<uintptr_t>(p));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  FAKE_ENTER();
  const Range* r = find_range(dptr);
  if (r == nullptr) return CUDA_ERROR_NOT_FOUND;
  if (pbase != nullptr) *pbase = r->base;
  if (psize != nullptr) *psize = r->size;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute,
                                        CUdeviceptr ptr) {
  FAKE_ENTER();
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (const Range* r = find_range(ptr)) {
    const bool managed = r->kind == RangeKind::kManaged;
    switch (attribute) {
      case CU_POINTER_ATTRIBUTE_CONTEXT: put(data, reinterpret_cast<CUcontext>(r->ctx)); break;
      case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: put<unsigned>(data, CU_MEMORYTYPE_DEVICE); break;
      case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: put<CUdeviceptr>(data, ptr); break;
      case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!managed) return CUDA_ERROR_INVALID_VALUE;
        put(data, reinterpret_cast<void*>(ptr));
        break;
      case CU_POINTER_ATTRIBUTE_IS_MANAGED: put<bool>(data, managed); break;
      case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: put<int>(data, r->device); break;
      case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: put<CUdeviceptr>(data, r->base); break;
      case CU_POINTER_ATTRIBUTE_RANGE_SIZE: put<size_t>(data, r->size); break;
      case CU_POINTER_ATTRIBUTE_MAPPED: put<bool>(data, true); break;
      case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        put(data, reinterpret_cast<CUmemoryPool>(r->pool));
        break;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
  }
  if (const auto* h = find_host(ptr)) {
    switch (attribute) {
      case CU_POINTER_ATTRIBUTE_CONTEXT: put(data, reinterpret_cast<CUcontext>(h->second.ctx)); break;
      case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: put<unsigned>(data, CU_MEMORYTYPE_HOST); break;
      case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: put<CUdeviceptr>(data, ptr); break;
      case CU_POINTER_ATTRIBUTE_HOST_POINTER: put(data, reinterpret_cast<void*>(ptr)); break;
      case CU_POINTER_ATTRIBUTE_IS_MANAGED: put<bool>(data, false); break;
      case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: put<int>(data, h->second.ctx->device); break;
      case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: put<CUdeviceptr>(data, h->first); break;
      case CU_POINTER_ATTRIBUTE_RANGE_SIZE: put<size_t>(data, h->second.size); break;
      case CU_POINTER_ATTRIBUTE_MAPPED: put<bool>(data, true); break;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// The real driver's: every attribute answered as cuPointerGetAttribute would; for a pointer it
// does not know, the attributes get "null" values instead of an error.
FAKE_API CUresult cuPointerGetAttributes(unsigned int count, CUpointer_attribute* attributes, void** data,
                                         CUdeviceptr ptr) {
  FAKE_ENTER();
  if (count == 0 || attributes == nullptr || data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < count; ++i) {
    if (data[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (cuPointerGetAttribute(data[i], attributes[i], ptr) == CUDA_SUCCESS) continue;
    switch (attributes[i]) {
      case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: put<unsigned>(data[i], 0); break;
      case CU_POINTER_ATTRIBUTE_IS_MANAGED:
      case CU_POINTER_ATTRIBUTE_MAPPED: put<bool>(data[i], false); break;
      case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: put<int>(data[i], -2); break;
      case CU_POINTER_ATTRIBUTE_RANGE_SIZE: put<size_t>(data[i], 0); break;
      default: put<void*>(data[i], nullptr); break;
    }
  }
  return CUDA_SUCCESS;
}
