// SPDX-License-Identifier: Apache-2.0
// Driver start-up and contexts: cuInit, and every way a context is made or destroyed, so that a
// context's own device memory is charged while it lives and everything it owned is given back
// when it dies.
#include "hooks/export.h"
#include "quota/context_lifecycle.h"
#include "quota/device_quota.h"

using gpushare::Real;
namespace quota = gpushare::quota;

// Joins the ledger of every device with a quota: a tenant that cannot be admitted fails here,
// at start, rather than at its first allocation.
GS_EXPORT CUresult cuInit(unsigned int flags) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuInit(flags);
  if (rc == CUDA_SUCCESS && !quota::AllDevicesAdmitted()) return CUDA_ERROR_NOT_PERMITTED;
  return rc;
}

GS_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::RetainPrimary(pctx, dev);
}

GS_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::ReleasePrimary(dev, Real().cuDevicePrimaryCtxRelease_v2);
}

GS_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::ReleasePrimary(dev, Real().cuDevicePrimaryCtxRelease);
}

GS_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::ResetPrimary(dev, Real().cuDevicePrimaryCtxReset_v2);
}

GS_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::ResetPrimary(dev, Real().cuDevicePrimaryCtxReset);
}

GS_EXPORT CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::CreateContext(pctx, dev, [&] { return Real().cuCtxCreate_v2(pctx, flags, dev); });
}

GS_EXPORT CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int numParams,
                                  unsigned int flags, CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::CreateContext(
      pctx, dev, [&] { return Real().cuCtxCreate_v3(pctx, params, numParams, flags, dev); });
}

GS_EXPORT CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                                  CUdevice dev) {
  GS_ENSURE_INIT();
  return quota::CreateContext(pctx, dev,
                              [&] { return Real().cuCtxCreate_v4(pctx, params, flags, dev); });
}

GS_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
  GS_ENSURE_INIT();
  return quota::DestroyContext(ctx, Real().cuCtxDestroy_v2);
}
