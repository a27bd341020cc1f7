// SPDX-License-Identifier: Apache-2.0
// Kernel launches, every form: the hot path. Each goes through hooks/launch_entry.h (the init
// check, the swap gate, the activity clock, the compute gate) and calls the real pointer once;
// no lock, allocation, logging, syscall or look-up.
#include "hooks/launch_entry.h"

using gpushare::EnterStreamWork;
using gpushare::Real;
using gpushare::StreamWork;

GS_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                  unsigned int gridDimZ, unsigned int blockDimX,
                                  unsigned int blockDimY, unsigned int blockDimZ,
                                  unsigned int sharedMemBytes, CUstream hStream,
                                  void** kernelParams, void** extra) {
  return EnterStreamWork<StreamWork::kKernels>(hStream, false, [=] {
    return Real().cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                                 sharedMemBytes, hStream, kernelParams, extra);
  });
}

GS_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX,
                                       unsigned int blockDimY, unsigned int blockDimZ,
                                       unsigned int sharedMemBytes, CUstream hStream,
                                       void** kernelParams, void** extra) {
  return EnterStreamWork<StreamWork::kKernels>(hStream, true, [=] {
    return Real().cuLaunchKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                      blockDimZ, sharedMemBytes, hStream, kernelParams, extra);
  });
}

GS_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                    void** extra) {
  return EnterStreamWork<StreamWork::kKernels>(config != nullptr ? config->hStream : nullptr, false,
                                               [=] { return Real().cuLaunchKernelEx(config, f, kernelParams, extra); });
}

GS_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                         void** extra) {
  return EnterStreamWork<StreamWork::kKernels>(
      config != nullptr ? config->hStream : nullptr, true,
      [=] { return Real().cuLaunchKernelEx_ptsz(config, f, kernelParams, extra); });
}

GS_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                             unsigned int gridDimZ, unsigned int blockDimX,
                                             unsigned int blockDimY, unsigned int blockDimZ,
                                             unsigned int sharedMemBytes, CUstream hStream,
                                             void** kernelParams) {
  return EnterStreamWork<StreamWork::kKernels>(hStream, false, [=] {
    return Real().cuLaunchCooperativeKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                            blockDimZ, sharedMemBytes, hStream, kernelParams);
  });
}

GS_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                  unsigned int gridDimZ, unsigned int blockDimX,
                                                  unsigned int blockDimY, unsigned int blockDimZ,
                                                  unsigned int sharedMemBytes, CUstream hStream,
                                                  void** kernelParams) {
  return EnterStreamWork<StreamWork::kKernels>(hStream, true, [=] {
    return Real().cuLaunchCooperativeKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                                 blockDimZ, sharedMemBytes, hStream, kernelParams);
  });
}

// Deprecated, still exported by the CUDA 13 driver. The compute turn is this process's on the
// current context's device, as for every launch; the first launch's stream is the one tracked.
GS_EXPORT CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS* launchParamsList,
                                                        unsigned int numDevices, unsigned int flags) {
  CUstream tracked = launchParamsList != nullptr && numDevices > 0 ? launchParamsList[0].hStream : nullptr;
  return EnterStreamWork<StreamWork::kKernels>(tracked, false, [=] {
    return Real().cuLaunchCooperativeKernelMultiDevice(launchParamsList, numDevices, flags);
  });
}

// The pre-4.0 launches (deprecated, still exported): block shape and parameters were set on the
// function beforehand; they run on the legacy default stream unless given one.
GS_EXPORT CUresult cuLaunch(CUfunction f) {
  return EnterStreamWork<StreamWork::kKernels>(nullptr, false, [=] { return Real().cuLaunch(f); });
}

GS_EXPORT CUresult cuLaunchGrid(CUfunction f, int grid_width, int grid_height) {
  return EnterStreamWork<StreamWork::kKernels>(nullptr, false,
                                               [=] { return Real().cuLaunchGrid(f, grid_width, grid_height); });
}

GS_EXPORT CUresult cuLaunchGridAsync(CUfunction f, int grid_width, int grid_height, CUstream hStream) {
  return EnterStreamWork<StreamWork::kKernels>(
      hStream, false, [=] { return Real().cuLaunchGridAsync(f, grid_width, grid_height, hStream); });
}
