// SPDX-License-Identifier: Apache-2.0
// Primary and created contexts, and each thread's stack of current contexts.
#include "tests/fake_driver/state.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace fakecuda {
namespace {

thread_local std::vector<Context*> t_stack;

Context* as_context(CUcontext c) { return reinterpret_cast<Context*>(c); }
CUcontext as_handle(Context* c) { return reinterpret_cast<CUcontext>(c); }

}  // namespace

bool known_context(CUcontext ctx) {
  for (const auto& c : drv().contexts) {
    if (as_handle(c.get()) == ctx) return true;
  }
  return false;
}

CUresult current_context(Context** out) {
  if (t_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  Context* c = t_stack.back();
  if (!c->alive) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult charge_context_creation(int device) {
  Driver& d = drv();
  if (!phys_charge(device, d.ctx_overhead)) return CUDA_ERROR_OUT_OF_MEMORY;
  if (d.ctx_create_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(d.ctx_create_ms));
  phys_note_context(device, true);
  return CUDA_SUCCESS;
}

CUresult create_context(int device, unsigned flags, Context** out) {
  Driver& d = drv();
  FAKE_TRY(charge_context_creation(device));
  auto c = std::make_unique<Context>();
  c->device = device;
  c->flags = flags;
  c->alive = true;
  *out = c.get();
  d.contexts.push_back(std::move(c));
  return CUDA_SUCCESS;
}

void destroy_context_resources(Context* ctx) {
  if (!ctx->alive) return;
  graph_release_context(ctx);
  pool_release_context(ctx);
  array_release_context(ctx);
  memory_release_context(ctx);
  module_release_context(ctx);
  stream_release_context(ctx);
  phys_note_context(ctx->device, false);
  phys_release(ctx->device, drv().ctx_overhead);
  ctx->alive = false;
  ctx->refcount = 0;
}

void contexts_reset() {
  for (const auto& c : drv().contexts) destroy_context_resources(c.get());
  t_stack.clear();
}

}  // namespace fakecuda

using namespace fakecuda;

namespace {

CUresult create_common(CUcontext* pctx, unsigned flags, CUdevice dev) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  Context* c = nullptr;
  FAKE_TRY(create_context(dev, flags, &c));
  t_stack.push_back(c);
  *pctx = as_handle(c);
  return CUDA_SUCCESS;
}

CUresult primary_release(CUdevice dev) {
  FAKE_ENTER();
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  Context* p = drv().devices[dev].primary;
  if (!p->alive) return CUDA_ERROR_INVALID_CONTEXT;
  if (--p->refcount == 0) destroy_context_resources(p);
  return CUDA_SUCCESS;
}

CUresult primary_reset(CUdevice dev) {
  FAKE_ENTER();
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  destroy_context_resources(drv().devices[dev].primary);
  return CUDA_SUCCESS;
}

// The CUDA 13 "_v2" context queries take an explicit context; null means the current one.
CUresult context_or_current(CUcontext ctx, Context** out) {
  if (ctx == nullptr) return current_context(out);
  Context* c = as_context(ctx);
  if (!known_context(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  if (!c->alive) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *out = c;
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  FAKE_ENTER();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  Context* p = drv().devices[dev].primary;
  if (!p->alive) {
    FAKE_TRY(charge_context_creation(dev));
    p->alive = true;
  }
  ++p->refcount;
  *pctx = as_handle(p);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return primary_release(dev); }
FAKE_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return primary_release(dev); }
FAKE_API CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return primary_reset(dev); }
FAKE_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) { return primary_reset(dev); }

FAKE_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  FAKE_ENTER();
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  const Context* p = drv().devices[dev].primary;
  *flags = p->flags;
  *active = p->alive ? 1 : 0;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}

FAKE_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  FAKE_ENTER();
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  drv().devices[dev].primary->flags = flags;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  FAKE_ENTER();
  return create_common(pctx, flags, dev);
}

FAKE_API CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int numParams,
                                 unsigned int flags, CUdevice dev) {
  FAKE_ENTER();
  if (numParams < 0 || (numParams > 0 && params == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  return create_common(pctx, flags, dev);
}

FAKE_API CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                                 CUdevice dev) {
  FAKE_ENTER();
  if (params != nullptr && params->numExecAffinityParams < 0) return CUDA_ERROR_INVALID_VALUE;
  return create_common(pctx, flags, dev);
}

FAKE_API CUresult cuCtxDestroy_v2(CUcontext ctx) {
  FAKE_ENTER();
  if (ctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = as_context(ctx);
  if (!known_context(ctx) || c->primary || !c->alive) return CUDA_ERROR_INVALID_CONTEXT;
  destroy_context_resources(c);
  t_stack.erase(std::remove(t_stack.begin(), t_stack.end(), c), t_stack.end());
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxSetCurrent(CUcontext ctx) {
  FAKE_ENTER();
  if (ctx == nullptr) {
    if (!t_stack.empty()) t_stack.pop_back();
    return CUDA_SUCCESS;
  }
  Context* c = as_context(ctx);
  if (!known_context(ctx) || (!c->primary && !c->alive)) return CUDA_ERROR_INVALID_CONTEXT;
  if (t_stack.empty()) t_stack.push_back(c);
  else t_stack.back() = c;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetCurrent(CUcontext* pctx) {
  FAKE_ENTER();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pctx = t_stack.empty() ? nullptr : as_handle(t_stack.back());
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  FAKE_ENTER();
  if (ctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = as_context(ctx);
  if (!known_context(ctx) || (!c->primary && !c->alive)) return CUDA_ERROR_INVALID_CONTEXT;
  t_stack.push_back(c);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxPopCurrent_v2(CUcontext* pctx) {
  FAKE_ENTER();
  if (t_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx != nullptr) *pctx = as_handle(t_stack.back());
  t_stack.pop_back();
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetDevice(CUdevice* device) {
  FAKE_ENTER();
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  *device = c->device;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetDevice_v2(CUdevice* device, CUcontext ctx) {
  FAKE_ENTER();
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(context_or_current(ctx, &c));
  *device = c->device;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetFlags(unsigned int* flags) {
  FAKE_ENTER();
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  *flags = c->flags;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxSynchronize(void) {
  FAKE_ENTER();
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  // On the H100 another thread's cuCtxSynchronize during a global-mode capture is refused and
  // invalidates the capture.
  if (stream_invalidate_captures(c)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  FAKE_TRY(c->sticky);
  pools_on_synchronize(c->device);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxSynchronize_v2(CUcontext ctx) {
  FAKE_ENTER();
  Context* c = nullptr;
  FAKE_TRY(context_or_current(ctx, &c));
  if (stream_invalidate_captures(c)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  FAKE_TRY(c->sticky);
  pools_on_synchronize(c->device);
  return CUDA_SUCCESS;
}
