// SPDX-License-Identifier: Apache-2.0
// Contexts and the quota: a context's own memory is charged while it lives (see
// context_overhead.h), and when it is destroyed or reset, everything it owned is uncharged.
#pragma once
#include "quota/allocation_table.h"
#include "quota/charge.h"
#include "quota/context_overhead.h"
#include "src/real_driver.h"

namespace gpushare::quota {

// Each calls the driver (`release`, `reset`, `destroy`: any version of that call); when that
// destroys a context, what watched it lets go first, and what it owned is uncharged after.
CUresult RetainPrimary(CUcontext* pctx, CUdevice dev);
CUresult ReleasePrimary(CUdevice dev, CUresult (*release)(CUdevice));
CUresult ResetPrimary(CUdevice dev, CUresult (*reset)(CUdevice));
CUresult DestroyContext(CUcontext ctx, CUresult (*destroy)(CUcontext));

// Charges a context just created on q's device what probe says it holds, and records it; false
// (with a warning saying why) when that does not fit the quota.
bool ChargeContext(DeviceQuota& q, ContextOverheadProbe& probe, CUcontext ctx);

// `create` makes the context (any cuCtxCreate version) and stores it in *pctx.
template <typename CreateFn>
CUresult CreateContext(CUcontext* pctx, CUdevice dev, CreateFn create) {
  DeviceQuota* q = QuotaFor(dev);
  if (q == nullptr) return create();
  ContextOverheadProbe probe(*q);
  const CUresult rc = create();
  if (rc != CUDA_SUCCESS) return rc;
  if (!ChargeContext(*q, probe, *pctx)) {
    Real().cuCtxDestroy_v2(*pctx);
    *pctx = nullptr;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  return rc;
}

}  // namespace gpushare::quota
