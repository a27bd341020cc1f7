// Device queries: the SM count a confined tenant sees is its slice's (sm_partition/), so the
// CUDA runtime, cuBLAS, Triton and programs size their grids (cooperative ones included) for
// the SMs their kernels really get. Every other attribute passes through.
#include "hooks/export.h"
#include "sm_partition/sm_partition.h"

using gpushare::Real;

GS_EXPORT CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuDeviceGetAttribute(pi, attrib, dev);
  if (rc == CUDA_SUCCESS && attrib == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
    *pi = gpushare::sm::VisibleSmCount(dev, *pi);
  return rc;
}
