// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/driver_api.h"

#include <dlfcn.h>

#include <cstdio>

namespace e2e {
namespace {

// The rows: field, the name cuGetProcAddress is asked for, its version, the exported symbol.
#define E2E_ENTRIES(X)                                                          \
  X(cuInit, "cuInit", 2000, cuInit)                                             \
  X(cuDeviceGet, "cuDeviceGet", 2000, cuDeviceGet)                              \
  X(cuDeviceTotalMem, "cuDeviceTotalMem", 3020, cuDeviceTotalMem_v2)            \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", 7000, cuDevicePrimaryCtxRetain) \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease", 11000, cuDevicePrimaryCtxRelease_v2) \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", 4000, cuCtxSetCurrent)                  \
  X(cuCtxCreate, "cuCtxCreate", 12050, cuCtxCreate_v4)                          \
  X(cuCtxDestroy, "cuCtxDestroy", 4000, cuCtxDestroy_v2)                        \
  X(cuMemGetInfo, "cuMemGetInfo", 3020, cuMemGetInfo_v2)                        \
  X(cuMemAlloc, "cuMemAlloc", 3020, cuMemAlloc_v2)                              \
  X(cuMemAllocPitch, "cuMemAllocPitch", 3020, cuMemAllocPitch_v2)               \
  X(cuMemAllocManaged, "cuMemAllocManaged", 6000, cuMemAllocManaged)            \
  X(cuMemFree, "cuMemFree", 3020, cuMemFree_v2)                                 \
  X(cuMemAllocAsync, "cuMemAllocAsync", 11020, cuMemAllocAsync)                 \
  X(cuMemFreeAsync, "cuMemFreeAsync", 11020, cuMemFreeAsync)                    \
  X(cuMemPoolTrimTo, "cuMemPoolTrimTo", 11020, cuMemPoolTrimTo)                 \
  X(cuDeviceGetMemPool, "cuDeviceGetMemPool", 11020, cuDeviceGetMemPool)        \
  X(cuStreamSynchronize, "cuStreamSynchronize", 2000, cuStreamSynchronize)      \
  X(cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity", 10020, cuMemGetAllocationGranularity) \
  X(cuMemCreate, "cuMemCreate", 10020, cuMemCreate)                             \
  X(cuMemRelease, "cuMemRelease", 10020, cuMemRelease)                          \
  X(cuArrayCreate, "cuArrayCreate", 3020, cuArrayCreate_v2)                     \
  X(cuArray3DCreate, "cuArray3DCreate", 3020, cuArray3DCreate_v2)               \
  X(cuArrayDestroy, "cuArrayDestroy", 2000, cuArrayDestroy)                     \
  X(cuMipmappedArrayCreate, "cuMipmappedArrayCreate", 5000, cuMipmappedArrayCreate) \
  X(cuMipmappedArrayDestroy, "cuMipmappedArrayDestroy", 5000, cuMipmappedArrayDestroy) \
  X(cuGraphCreate, "cuGraphCreate", 10000, cuGraphCreate)                       \
  X(cuGraphDestroy, "cuGraphDestroy", 10000, cuGraphDestroy)                    \
  X(cuGraphAddMemAllocNode, "cuGraphAddMemAllocNode", 11040, cuGraphAddMemAllocNode) \
  X(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags", 11040, cuGraphInstantiateWithFlags) \
  X(cuGraphLaunch, "cuGraphLaunch", 10000, cuGraphLaunch)                       \
  X(cuGraphExecDestroy, "cuGraphExecDestroy", 10000, cuGraphExecDestroy)        \
  X(cuDeviceGraphMemTrim, "cuDeviceGraphMemTrim", 11040, cuDeviceGraphMemTrim)  \
  X(cuModuleLoadData, "cuModuleLoadData", 2000, cuModuleLoadData)               \
  X(cuModuleGetFunction, "cuModuleGetFunction", 2000, cuModuleGetFunction)      \
  X(cuLaunchKernel, "cuLaunchKernel", 4000, cuLaunchKernel)                     \
  X(cuGetProcAddress, "cuGetProcAddress", 12000, cuGetProcAddress_v2)

bool Check(void* p, const char* what) {
  if (p == nullptr) std::fprintf(stderr, "client: cannot resolve %s\n", what);
  return p != nullptr;
}

}  // namespace

bool LoadDriverApi(const std::string& mode, DriverApi& api) {
  bool ok = true;
  if (mode == "link") {
#define E2E_LINK(field, name, version, symbol) api.field = &::symbol;
    E2E_ENTRIES(E2E_LINK)
#undef E2E_LINK
    return true;
  }
  void* handle = dlopen("libcuda.so.1", RTLD_NOW);
  if (!Check(handle, "libcuda.so.1")) return false;
  if (mode == "dlsym") {
#define E2E_DLSYM(field, name, version, symbol)                                    \
  api.field = reinterpret_cast<decltype(api.field)>(dlsym(handle, #symbol));       \
  ok = Check(reinterpret_cast<void*>(api.field), #symbol) && ok;
    E2E_ENTRIES(E2E_DLSYM)
#undef E2E_DLSYM
    return ok;
  }
  auto gpa = reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(handle, "cuGetProcAddress_v2"));
  if (!Check(reinterpret_cast<void*>(gpa), "cuGetProcAddress_v2")) return false;
#define E2E_GPA(field, name, version, symbol)                                          \
  {                                                                                    \
    void* p = nullptr;                                                                 \
    CUdriverProcAddressQueryResult status{};                                           \
    gpa(name, &p, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status);                        \
    api.field = reinterpret_cast<decltype(api.field)>(p);                              \
    ok = Check(p, name) && ok;                                                         \
  }
  E2E_ENTRIES(E2E_GPA)
#undef E2E_GPA
  return ok;
}

}  // namespace e2e
