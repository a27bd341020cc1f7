// SPDX-License-Identifier: Apache-2.0
// Streams and events. All work runs synchronously at enqueue, so streams only carry their
// context, and synchronization is where pools give back memory above their release threshold.
// An event dies with its context (as on a GPU): every later use of it returns
// CUDA_ERROR_INVALID_HANDLE, and is counted (fakecuda_bad_event_calls), as are records of an
// event on another context's stream. Dead events keep their handle, so it never names a new one.
#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

struct Stream {
  Context* ctx = nullptr;
  unsigned flags = 0;
  int priority = 0;
  bool capturing = false;    // between cuStreamBeginCapture and cuStreamEndCapture
  bool invalidated = false;  // a cuCtxSynchronize happened meanwhile (as on a GPU)
  CUgraph into = nullptr;    // cuStreamBeginCaptureToGraph's graph, which the capture ends with
};

struct Event {
  Context* ctx = nullptr;
  unsigned flags = 0;
  bool destroyed = false;  // by cuEventDestroy or with its context
};

template <typename T>
using Registry = std::map<const T*, std::unique_ptr<T>>;

Registry<Stream>& streams() {
  static auto* m = new Registry<Stream>;
  return *m;
}

Registry<Event>& events() {
  static auto* m = new Registry<Event>;
  return *m;
}

uint64_t g_bad_event_calls = 0;

// nullptr for an unknown or destroyed event (counting the latter).
Event* find_event(CUevent e) {
  auto it = events().find(reinterpret_cast<const Event*>(e));
  if (it == events().end()) return nullptr;
  if (it->second->destroyed) {
    ++g_bad_event_calls;
    return nullptr;
  }
  return it->second.get();
}

bool is_default_stream(CUstream s) {
  return s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
}

CUresult create_stream(CUstream* ph, unsigned flags, int priority) {
  if (ph == nullptr || (flags != CU_STREAM_DEFAULT && flags != CU_STREAM_NON_BLOCKING)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  auto s = std::make_unique<Stream>();
  s->ctx = c;
  s->flags = flags;
  s->priority = priority;
  *ph = reinterpret_cast<CUstream>(s.get());
  streams().emplace(s.get(), std::move(s));
  return CUDA_SUCCESS;
}

CUresult synchronize(CUstream stream) {
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  pools_on_synchronize(c->device);
  return CUDA_SUCCESS;
}

CUresult get_device(CUstream stream, CUdevice* device) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult query(CUstream stream) {
  Context* c = nullptr;
  return stream_context(stream, &c);
}

CUresult get_ctx(CUstream stream, CUcontext* pctx, CUgreenCtx* pgreen) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  *pctx = reinterpret_cast<CUcontext>(c);
  if (pgreen != nullptr) *pgreen = nullptr;
  return CUDA_SUCCESS;
}

CUresult wait_event(CUstream stream, CUevent event) {
  if (find_event(event) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  Context* c = nullptr;
  return stream_context(stream, &c);
}

CUresult record(CUevent event, CUstream stream) {
  Event* e = find_event(event);
  if (e == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  if (c != e->ctx) {  // "hEvent and hStream must be from the same context"
    ++g_bad_event_calls;
    return CUDA_ERROR_INVALID_HANDLE;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult stream_context(CUstream stream, Context** out) {
  if (is_default_stream(stream)) return current_context(out);
  auto it = streams().find(reinterpret_cast<const Stream*>(stream));
  if (it == streams().end()) return CUDA_ERROR_INVALID_HANDLE;
  *out = it->second->ctx;
  return CUDA_SUCCESS;
}

bool stream_invalidate_captures(Context* ctx) {
  bool any = false;
  for (auto& [h, st] : streams()) {
    if (st->ctx != ctx || !st->capturing) continue;
    st->invalidated = true;
    any = true;
  }
  return any;
}

void stream_release_context(Context* ctx) {
  std::erase_if(streams(), [ctx](const auto& kv) { return kv.second->ctx == ctx; });
  for (auto& [h, e] : events())
    if (e->ctx == ctx) e->destroyed = true;
}

void stream_reset() {
  streams().clear();
  events().clear();
  g_bad_event_calls = 0;
}

int stream_live_event_count() {
  int n = 0;
  for (const auto& [h, e] : events()) n += !e->destroyed;
  return n;
}

uint64_t stream_bad_event_calls() { return g_bad_event_calls; }

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuStreamCreate(CUstream* ph, unsigned int flags) {
  FAKE_ENTER();
  return create_stream(ph, flags, 0);
}

FAKE_API CUresult cuStreamCreateWithPriority(CUstream* ph, unsigned int flags, int priority) {
  FAKE_ENTER();
  return create_stream(ph, flags, priority);
}

FAKE_API CUresult cuStreamDestroy_v2(CUstream stream) {
  FAKE_ENTER();
  auto it = streams().find(reinterpret_cast<const Stream*>(stream));
  if (it == streams().end()) return CUDA_ERROR_INVALID_HANDLE;
  streams().erase(it);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamSynchronize(CUstream stream) {
  FAKE_ENTER();
  return synchronize(stream);
}

FAKE_API CUresult cuStreamSynchronize_ptsz(CUstream stream) {
  FAKE_ENTER();
  return synchronize(stream);
}

FAKE_API CUresult cuStreamQuery(CUstream stream) {
  FAKE_ENTER();
  return query(stream);
}

FAKE_API CUresult cuStreamQuery_ptsz(CUstream stream) {
  FAKE_ENTER();
  return query(stream);
}

FAKE_API CUresult cuStreamGetDevice(CUstream stream, CUdevice* device) {
  FAKE_ENTER();
  return get_device(stream, device);
}

FAKE_API CUresult cuStreamGetDevice_ptsz(CUstream stream, CUdevice* device) {
  FAKE_ENTER();
  return get_device(stream, device);
}

FAKE_API CUresult cuStreamGetCtx(CUstream stream, CUcontext* pctx) {
  FAKE_ENTER();
  return get_ctx(stream, pctx, nullptr);
}

FAKE_API CUresult cuStreamGetCtx_ptsz(CUstream stream, CUcontext* pctx) {
  FAKE_ENTER();
  return get_ctx(stream, pctx, nullptr);
}

FAKE_API CUresult cuStreamGetCtx_v2(CUstream stream, CUcontext* pctx, CUgreenCtx* pgreen) {
  FAKE_ENTER();
  if (pgreen == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return get_ctx(stream, pctx, pgreen);
}

FAKE_API CUresult cuStreamGetCtx_v2_ptsz(CUstream stream, CUcontext* pctx, CUgreenCtx* pgreen) {
  FAKE_ENTER();
  if (pgreen == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return get_ctx(stream, pctx, pgreen);
}

FAKE_API CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int /*flags*/) {
  FAKE_ENTER();
  return wait_event(stream, event);
}

FAKE_API CUresult cuStreamWaitEvent_ptsz(CUstream stream, CUevent event, unsigned int /*flags*/) {
  FAKE_ENTER();
  return wait_event(stream, event);
}

FAKE_API CUresult cuEventCreate(CUevent* ph, unsigned int flags) {
  FAKE_ENTER();
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  auto e = std::make_unique<Event>();
  e->ctx = c;
  e->flags = flags;
  *ph = reinterpret_cast<CUevent>(e.get());
  events().emplace(e.get(), std::move(e));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventDestroy_v2(CUevent event) {
  FAKE_ENTER();
  Event* e = find_event(event);
  if (e == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  e->destroyed = true;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventRecord(CUevent event, CUstream stream) {
  FAKE_ENTER();
  return record(event, stream);
}

FAKE_API CUresult cuEventRecord_ptsz(CUevent event, CUstream stream) {
  FAKE_ENTER();
  return record(event, stream);
}

FAKE_API CUresult cuEventQuery(CUevent event) {
  FAKE_ENTER();
  return find_event(event) == nullptr ? CUDA_ERROR_INVALID_HANDLE : CUDA_SUCCESS;
}

FAKE_API CUresult cuEventSynchronize(CUevent event) {
  FAKE_ENTER();
  Event* e = find_event(event);
  if (e == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  pools_on_synchronize(e->ctx->device);
  return CUDA_SUCCESS;
}

// Stream capture: kernels still run at enqueue (the fake has no deferred work); what is modelled
// is the state, and that a cuCtxSynchronize during a capture invalidates it, as on the H100.
FAKE_API CUresult cuStreamBeginCapture_v2(CUstream stream, CUstreamCaptureMode /*mode*/) {
  FAKE_ENTER();
  if (is_default_stream(stream)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  auto it = streams().find(reinterpret_cast<const Stream*>(stream));
  if (it == streams().end()) return CUDA_ERROR_INVALID_HANDLE;
  if (it->second->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  it->second->capturing = true;
  it->second->invalidated = false;
  it->second->into = nullptr;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamBeginCapture_v2_ptsz(CUstream stream, CUstreamCaptureMode mode) {
  return cuStreamBeginCapture_v2(stream, mode);
}

// The CUDA 10.0 form: global mode.
FAKE_API CUresult cuStreamBeginCapture(CUstream stream) {
  return cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

FAKE_API CUresult cuStreamBeginCapture_ptsz(CUstream stream) {
  return cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

FAKE_API CUresult cuStreamBeginCaptureToGraph(CUstream stream, CUgraph graph, const CUgraphNode* dependencies,
                                              const CUgraphEdgeData* /*edge_data*/, size_t dependency_count,
                                              CUstreamCaptureMode mode) {
  FAKE_ENTER();
  if (graph == nullptr || (dependency_count > 0 && dependencies == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  const CUresult rc = cuStreamBeginCapture_v2(stream, mode);
  if (rc == CUDA_SUCCESS) streams().find(reinterpret_cast<const Stream*>(stream))->second->into = graph;
  return rc;
}

FAKE_API CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream stream, CUgraph graph, const CUgraphNode* dependencies,
                                                   const CUgraphEdgeData* edge_data, size_t dependency_count,
                                                   CUstreamCaptureMode mode) {
  return cuStreamBeginCaptureToGraph(stream, graph, dependencies, edge_data, dependency_count, mode);
}

FAKE_API CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
  FAKE_ENTER();
  if (graph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = streams().find(reinterpret_cast<const Stream*>(stream));
  if (it == streams().end()) return CUDA_ERROR_INVALID_HANDLE;
  Stream& st = *it->second;
  if (!st.capturing) return CUDA_ERROR_ILLEGAL_STATE;
  st.capturing = false;
  *graph = nullptr;
  if (st.invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (st.into != nullptr) {
    *graph = st.into;
    st.into = nullptr;
    return CUDA_SUCCESS;
  }
  return cuGraphCreate(graph, 0);
}

FAKE_API CUresult cuStreamEndCapture_ptsz(CUstream stream, CUgraph* graph) {
  return cuStreamEndCapture(stream, graph);
}

FAKE_API CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  FAKE_ENTER();
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *status = CU_STREAM_CAPTURE_STATUS_NONE;
  if (is_default_stream(stream)) return CUDA_SUCCESS;
  auto it = streams().find(reinterpret_cast<const Stream*>(stream));
  if (it == streams().end()) return CUDA_ERROR_INVALID_HANDLE;
  if (it->second->capturing)
    *status = it->second->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamIsCapturing_ptsz(CUstream stream, CUstreamCaptureStatus* status) {
  return cuStreamIsCapturing(stream, status);
}

// The capture mode is per thread; kernels run at enqueue anyway, so the mode changes nothing else.
FAKE_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  if (mode == nullptr) return CUDA_ERROR_INVALID_VALUE;
  thread_local CUstreamCaptureMode current = CU_STREAM_CAPTURE_MODE_GLOBAL;
  const CUstreamCaptureMode previous = current;
  current = *mode;
  *mode = previous;
  return CUDA_SUCCESS;
}
