// SPDX-License-Identifier: Apache-2.0
// Device queries: the SM count and the co-resident clusters a confined tenant sees are its
// slice's (sm_partition/), so the CUDA runtime, cuBLAS, CUTLASS, Triton and programs size their
// grids (cooperative and persistent cluster ones included) for the SMs their kernels really get.
// Every other attribute passes through.
#include "hooks/export.h"
#include "sm_partition/sm_partition.h"

using gpushare::Real;

namespace {

// The device cuOccupancyMaxActiveClusters answered for: the stream's context's, else the
// current context's (cuda.h).
bool DeviceOf(const CUlaunchConfig& config, CUdevice* device) {
  if (config.hStream != nullptr && Real().cuStreamGetDevice != nullptr)
    return Real().cuStreamGetDevice(config.hStream, device) == CUDA_SUCCESS;
  return Real().cuCtxGetDevice(device) == CUDA_SUCCESS;
}

}  // namespace

GS_EXPORT CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuDeviceGetAttribute(pi, attrib, dev);
  if (rc == CUDA_SUCCESS && attrib == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
    *pi = gpushare::sm::VisibleSmCount(dev, *pi);
  return rc;
}

GS_EXPORT CUresult cuOccupancyMaxActiveClusters(int* numClusters, CUfunction func, const CUlaunchConfig* config) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuOccupancyMaxActiveClusters(numClusters, func, config);
  if (rc != CUDA_SUCCESS || numClusters == nullptr || config == nullptr ||
      !gpushare::sm::AskOf(gpushare::Opts()).any())
    return rc;
  CUdevice device = 0;
  if (DeviceOf(*config, &device))
    *numClusters = gpushare::sm::VisibleMaxActiveClusters(device, func, *config, *numClusters);
  return rc;
}
