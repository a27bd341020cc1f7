// SPDX-License-Identifier: Apache-2.0
// A second interposer, preloaded after libgpushare (as a profiler or another shim would be): it
// wraps cuMemAlloc_v2 and compat_layered and forwards each to the next definition found with
// dlsym(RTLD_NEXT). Where that answer is this library's own function, it reports instead of
// recursing.
#include <cuda.h>
#include <dlfcn.h>

#define COMPAT_EXPORT extern "C" __attribute__((visibility("default")))
#define COMPAT_LOCAL extern "C" __attribute__((visibility("hidden")))

using AllocFn = CUresult (*)(CUdeviceptr*, size_t);
using LayeredFn = int (*)();

COMPAT_LOCAL int compat_shim_layered() {
  auto next = reinterpret_cast<LayeredFn>(dlsym(RTLD_NEXT, "compat_layered"));
  if (next == nullptr) return -2;
  if (next == &compat_shim_layered) return -1;
  return 100 + next();
}

COMPAT_LOCAL CUresult compat_shim_alloc(CUdeviceptr* dptr, size_t bytes) {
  auto next = reinterpret_cast<AllocFn>(dlsym(RTLD_NEXT, "cuMemAlloc_v2"));
  if (next == nullptr) return CUDA_ERROR_NOT_FOUND;
  if (next == &compat_shim_alloc) return CUDA_ERROR_ILLEGAL_STATE;
  return next(dptr, bytes);
}

// The interposed definitions (aliases, so that the checks above compare with this library's own
// functions and not with the first definition in the global scope).
COMPAT_EXPORT int compat_layered() __attribute__((alias("compat_shim_layered")));
COMPAT_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) __attribute__((alias("compat_shim_alloc")));

// Shims look their next definitions up in their constructor, which runs before libgpushare's when
// the shim is preloaded after it: gpushare's dlsym must answer before its own initialisation.
namespace {
void* g_next_layered_at_load;
void* g_next_alloc_at_load;
}

__attribute__((constructor)) static void compat_shim_load() {
  g_next_layered_at_load = dlsym(RTLD_NEXT, "compat_layered");
  g_next_alloc_at_load = dlsym(RTLD_NEXT, "cuMemAlloc_v2");
}

// For the test: what dlsym(RTLD_NEXT, name) answers this library, now and at load, and calls
// to its own definitions.
COMPAT_EXPORT void* compat_shim_next(const char* name) { return dlsym(RTLD_NEXT, name); }
COMPAT_EXPORT void* compat_shim_next_layered_at_load() { return g_next_layered_at_load; }
COMPAT_EXPORT void* compat_shim_next_alloc_at_load() { return g_next_alloc_at_load; }
COMPAT_EXPORT int compat_shim_call_layered() { return compat_shim_layered(); }
COMPAT_EXPORT CUresult compat_shim_call_alloc(CUdeviceptr* dptr, size_t bytes) { return compat_shim_alloc(dptr, bytes); }
