#include "quota/context_lifecycle.h"

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
  const ContextOverheadProbe probe(*q);
  const CUresult rc = Real().cuDevicePrimaryCtxRetain(pctx, dev);
  if (rc != CUDA_SUCCESS) return rc;
  Charge charge = Charge::Try(q, probe.Finish());
  if (!charge) {
    Real().cuDevicePrimaryCtxRelease_v2(dev);
    *pctx = nullptr;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  Record(HandleKind::kContext, reinterpret_cast<uint64_t>(*pctx), {dev, charge.Keep(), *pctx});
  p.retains = 1;
  p.ctx = *pctx;
  return rc;
}

CUresult ReleasePrimary(CUdevice dev, CUresult (*release)(CUdevice)) {
  const CUresult rc = release(dev);
  if (rc != CUDA_SUCCESS || QuotaFor(dev) == nullptr) return rc;
  Primary& p = PrimaryOf(dev);
  std::lock_guard lock(p.mu);
  if (p.retains > 0 && --p.retains == 0) {
    ForgetContext(p.ctx, /*keep_overhead=*/false);
    if (swap::Enabled()) swap::ForgetContext(p.ctx);
    p.ctx = nullptr;
  }
  return rc;
}

CUresult ResetPrimary(CUdevice dev, CUresult (*reset)(CUdevice)) {
  const CUresult rc = reset(dev);
  if (rc != CUDA_SUCCESS || QuotaFor(dev) == nullptr) return rc;
  Primary& p = PrimaryOf(dev);
  std::lock_guard lock(p.mu);
  // Its allocations are gone; the context itself comes back on next use while still retained.
  if (p.ctx != nullptr) ForgetContext(p.ctx, /*keep_overhead=*/p.retains > 0);
  if (p.ctx != nullptr && swap::Enabled()) swap::ForgetContext(p.ctx);
  return rc;
}

void OnContextDestroyed(CUcontext ctx) {
  ForgetContext(ctx, /*keep_overhead=*/false);
  if (swap::Enabled()) swap::ForgetContext(ctx);
}

}  // namespace gpushare::quota
