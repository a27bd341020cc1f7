// SPDX-License-Identifier: Apache-2.0
// The driver entry points the test client uses, found one of the three ways a real program
// finds them: linked directly, dlsym on libcuda's handle, or cuGetProcAddress_v2.
#pragma once
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>

#include <string>

namespace e2e {

struct DriverApi {
  PFN_cuInit_v2000 cuInit;
  PFN_cuDeviceGet_v2000 cuDeviceGet;
  PFN_cuDeviceTotalMem_v3020 cuDeviceTotalMem;
  PFN_cuDevicePrimaryCtxRetain_v7000 cuDevicePrimaryCtxRetain;
  PFN_cuDevicePrimaryCtxRelease_v11000 cuDevicePrimaryCtxRelease;
  PFN_cuCtxSetCurrent_v4000 cuCtxSetCurrent;
  PFN_cuCtxCreate_v12050 cuCtxCreate;
  PFN_cuCtxDestroy_v4000 cuCtxDestroy;
  PFN_cuMemGetInfo_v3020 cuMemGetInfo;
  PFN_cuMemAlloc_v3020 cuMemAlloc;
  PFN_cuMemAllocPitch_v3020 cuMemAllocPitch;
  PFN_cuMemAllocManaged_v6000 cuMemAllocManaged;
  PFN_cuMemFree_v3020 cuMemFree;
  PFN_cuMemAllocAsync_v11020 cuMemAllocAsync;
  PFN_cuMemFreeAsync_v11020 cuMemFreeAsync;
  PFN_cuMemPoolTrimTo_v11020 cuMemPoolTrimTo;
  PFN_cuDeviceGetMemPool_v11020 cuDeviceGetMemPool;
  PFN_cuStreamSynchronize_v2000 cuStreamSynchronize;
  PFN_cuMemGetAllocationGranularity_v10020 cuMemGetAllocationGranularity;
  PFN_cuMemCreate_v10020 cuMemCreate;
  PFN_cuMemRelease_v10020 cuMemRelease;
  PFN_cuArrayCreate_v3020 cuArrayCreate;
  PFN_cuArray3DCreate_v3020 cuArray3DCreate;
  PFN_cuArrayDestroy_v2000 cuArrayDestroy;
  PFN_cuMipmappedArrayCreate_v5000 cuMipmappedArrayCreate;
  PFN_cuMipmappedArrayDestroy_v5000 cuMipmappedArrayDestroy;
  PFN_cuGraphCreate_v10000 cuGraphCreate;
  PFN_cuGraphDestroy_v10000 cuGraphDestroy;
  PFN_cuGraphAddMemAllocNode_v11040 cuGraphAddMemAllocNode;
  PFN_cuGraphInstantiateWithFlags_v11040 cuGraphInstantiateWithFlags;
  PFN_cuGraphLaunch_v10000 cuGraphLaunch;
  PFN_cuGraphExecDestroy_v10000 cuGraphExecDestroy;
  PFN_cuDeviceGraphMemTrim_v11040 cuDeviceGraphMemTrim;
  PFN_cuModuleLoadData_v2000 cuModuleLoadData;
  PFN_cuModuleGetFunction_v2000 cuModuleGetFunction;
  PFN_cuLaunchKernel_v4000 cuLaunchKernel;
  PFN_cuGetProcAddress_v12000 cuGetProcAddress;
};

// mode: "link", "dlsym" or "gpa". False (with a message on stderr) if any entry is missing.
bool LoadDriverApi(const std::string& mode, DriverApi& api);

}  // namespace e2e
