// SPDX-License-Identifier: Apache-2.0
// Kernel launches: the hot path. A load of the init flag, the swap gate (one branch on a
// process-local flag without swap: quota/swap_gate.h), the activity clock's relaxed load and
// store (quota/activity.h), the compute gate's flag (compute/compute.h: one relaxed load
// without a compute share), and a call through the real pointer; no lock, allocation,
// logging, syscall or look-up.
#include "compute/compute.h"
#include "hooks/export.h"
#include "quota/activity.h"
#include "quota/swap_gate.h"

using gpushare::Real;
using gpushare::compute::GatedLaunch;

GS_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                  unsigned int gridDimZ, unsigned int blockDimX,
                                  unsigned int blockDimY, unsigned int blockDimZ,
                                  unsigned int sharedMemBytes, CUstream hStream,
                                  void** kernelParams, void** extra) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(hStream, false, [&] {
    return Real().cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                                 sharedMemBytes, hStream, kernelParams, extra);
  });
}

GS_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX,
                                       unsigned int blockDimY, unsigned int blockDimZ,
                                       unsigned int sharedMemBytes, CUstream hStream,
                                       void** kernelParams, void** extra) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(hStream, true, [&] {
    return Real().cuLaunchKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                      blockDimZ, sharedMemBytes, hStream, kernelParams, extra);
  });
}

GS_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                    void** extra) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(config != nullptr ? config->hStream : nullptr, false,
                     [&] { return Real().cuLaunchKernelEx(config, f, kernelParams, extra); });
}

GS_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                         void** extra) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(config != nullptr ? config->hStream : nullptr, true,
                     [&] { return Real().cuLaunchKernelEx_ptsz(config, f, kernelParams, extra); });
}

GS_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                             unsigned int gridDimZ, unsigned int blockDimX,
                                             unsigned int blockDimY, unsigned int blockDimZ,
                                             unsigned int sharedMemBytes, CUstream hStream,
                                             void** kernelParams) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(hStream, false, [&] {
    return Real().cuLaunchCooperativeKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                            blockDimZ, sharedMemBytes, hStream, kernelParams);
  });
}

GS_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                  unsigned int gridDimZ, unsigned int blockDimX,
                                                  unsigned int blockDimY, unsigned int blockDimZ,
                                                  unsigned int sharedMemBytes, CUstream hStream,
                                                  void** kernelParams) {
  GS_ENSURE_INIT();
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return GatedLaunch(hStream, true, [&] {
    return Real().cuLaunchCooperativeKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                                 blockDimZ, sharedMemBytes, hStream, kernelParams);
  });
}
