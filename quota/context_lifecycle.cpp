// SPDX-License-Identifier: Apache-2.0
#include "quota/context_lifecycle.h"

#include "compute/compute.h"
#include "quota/swap_gate.h"
#include "quota/swap_table.h"

#include <mutex>

#include "src/options.h"

namespace gpushare::quota {
namespace {

// The primary context of each device as we see it: the driver's own reference count is not
// readable, so we count the retains that pass through us.
struct Primary {
  std::mutex mu;
  int retains = 0;
  CUcontext ctx = nullptr;
};

Primary& PrimaryOf(CUdevice dev) {
  static Primary* primaries = new Primary[kMaxDevices];
  return primaries[dev];
}

}  // namespace

bool ChargeContext(DeviceQuota& q, ContextOverheadProbe& probe, CUcontext ctx) {
  const uint64_t overhead = probe.Finish();
  Charge charge = Charge::Try(&q, overhead);
  if (!charge) {
    WarnContextRefused(q, overhead, probe.source());
    return false;
  }
  if (q.session() != nullptr) q.session()->AddProcessContextBytes(overhead);
  Record(HandleKind::kContext, reinterpret_cast<uint64_t>(ctx), {q.ordinal(), charge.Keep(), ctx});
  return true;
}

CUresult RetainPrimary(CUcontext* pctx, CUdevice dev) {
  DeviceQuota* q = QuotaFor(dev);
  if (q == nullptr || pctx == nullptr) return Real().cuDevicePrimaryCtxRetain(pctx, dev);
  Primary& p = PrimaryOf(dev);
  std::lock_guard lock(p.mu);
  if (p.retains > 0) {
    const CUresult rc = Real().cuDevicePrimaryCtxRetain(pctx, dev);
    if (rc == CUDA_SUCCESS) ++p.retains;
    return rc;
  }
  ContextOverheadProbe probe(*q);
  const CUresult rc = Real().cuDevicePrimaryCtxRetain(pctx, dev);
  if (rc != CUDA_SUCCESS) return rc;
  if (!ChargeContext(*q, probe, *pctx)) {
    Real().cuDevicePrimaryCtxRelease_v2(dev);
    *pctx = nullptr;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  p.retains = 1;
  p.ctx = *pctx;
  return rc;
}

// A context goes in two steps. Before the driver destroys it (or resets it), what only peeks at
// it lets go: the compute gates forget the events they made there, so that no thread queries
// one after the driver destroyed it (should the driver then fail, those events are merely no
// longer waited for). Once the driver succeeded, what it owned is uncharged and the swap table
// forgets it.
namespace {

void ContextGoing(CUcontext ctx) { compute::ForgetContext(ctx); }

void ContextGone(CUcontext ctx, bool keep_overhead) {
  ForgetContext(ctx, keep_overhead);
  if (swap::Enabled()) swap::ForgetContext(ctx);
}

}  // namespace

// Under the device's lock, so that the count and the driver's agree: the release that takes it
// to zero is the one that destroys the context.
CUresult ReleasePrimary(CUdevice dev, CUresult (*release)(CUdevice)) {
  if (QuotaFor(dev) == nullptr) return release(dev);
  Primary& p = PrimaryOf(dev);
  std::lock_guard lock(p.mu);
  if (p.retains == 1) ContextGoing(p.ctx);
  const CUresult rc = release(dev);
  if (rc != CUDA_SUCCESS) return rc;
  if (p.retains > 0 && --p.retains == 0) {
    ContextGone(p.ctx, /*keep_overhead=*/false);
    p.ctx = nullptr;
  }
  return rc;
}

CUresult ResetPrimary(CUdevice dev, CUresult (*reset)(CUdevice)) {
  if (QuotaFor(dev) == nullptr) return reset(dev);
  Primary& p = PrimaryOf(dev);
  std::lock_guard lock(p.mu);
  if (p.ctx != nullptr) ContextGoing(p.ctx);
  const CUresult rc = reset(dev);
  if (rc != CUDA_SUCCESS) return rc;
  // Its allocations are gone; the context itself comes back on next use while still retained.
  if (p.ctx != nullptr) ContextGone(p.ctx, /*keep_overhead=*/p.retains > 0);
  return rc;
}

CUresult DestroyContext(CUcontext ctx, CUresult (*destroy)(CUcontext)) {
  ContextGoing(ctx);
  const CUresult rc = destroy(ctx);
  if (rc == CUDA_SUCCESS) ContextGone(ctx, /*keep_overhead=*/false);
  return rc;
}

}  // namespace gpushare::quota
