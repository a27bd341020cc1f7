// SPDX-License-Identifier: Apache-2.0
// Copies, memsets and stream capture: passed through, behind the swap gate (quota/swap_gate.h),
// which costs one branch on a process-local flag when the process has no swap tenant.
#include "hooks/export.h"
#include "quota/activity.h"
#include "quota/swap_agent.h"
#include "quota/swap_gate.h"

using gpushare::Real;
namespace swap = gpushare::quota::swap;

namespace {

template <typename Fn, typename... Args>
CUresult Gated(Fn real, Args... args) {
  GS_SWAP_GATE();
  gpushare::quota::NoteActivity();
  return real(args...);
}

template <typename Fn, typename... Args>
CUresult BeginCapture(Fn real, Args... args) {
  GS_SWAP_GATE();  // no capture begins while a swap-out drains
  const CUresult rc = real(args...);
  if (rc == CUDA_SUCCESS && swap::Enabled()) swap::NoteCaptureBegun();
  return rc;
}

template <typename Fn>
CUresult EndCapture(Fn real, CUstream stream, CUgraph* graph) {
  const CUresult rc = real(stream, graph);
  // These end the capture; the others (no capture, bad handle) leave things as they were.
  if (swap::Enabled() && (rc == CUDA_SUCCESS || rc == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
                          rc == CUDA_ERROR_STREAM_CAPTURE_UNJOINED))
    swap::NoteCaptureEnded();
  return rc;
}

}  // namespace

#define GS_GATED(symbol, params, args) \
  GS_EXPORT CUresult symbol params {   \
    GS_ENSURE_INIT();                  \
    return Gated(Real().symbol, GS_UNPAREN args); \
  }
#define GS_UNPAREN(...) __VA_ARGS__

GS_GATED(cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyHtoD_v2, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyHtoD_v2_ptds, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyDtoH_v2, (void* dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyDtoH_v2_ptds, (void* dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyDtoD_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyDtoD_v2_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_GATED(cuMemcpyHtoDAsync_v2, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyDtoHAsync_v2, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyDtoHAsync_v2_ptsz, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyDtoDAsync_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_GATED(cuMemsetD8_v2, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD8_v2_ptds, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD16_v2, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD16_v2_ptds, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD32_v2, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD32_v2_ptds, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n))
GS_GATED(cuMemsetD8Async, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD8Async_ptsz, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD16Async, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD16Async_ptsz, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD32Async, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD32Async_ptsz, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s))
GS_GATED(cuMemsetD2D8_v2, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D8_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D8Async, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemsetD2D8Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemsetD2D16_v2, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D16_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D16Async, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemsetD2D16Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemsetD2D32_v2, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D32_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_GATED(cuMemsetD2D32Async, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemsetD2D32Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s),
         (dst, pitch, v, w, h, s))
GS_GATED(cuMemcpy2D_v2, (const CUDA_MEMCPY2D* copy), (copy))
GS_GATED(cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy))
GS_GATED(cuMemcpy2DUnaligned_v2, (const CUDA_MEMCPY2D* copy), (copy))
GS_GATED(cuMemcpy2DUnaligned_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy))
GS_GATED(cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s))
GS_GATED(cuMemcpy2DAsync_v2_ptsz, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s))
GS_GATED(cuMemcpyPeer, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n),
         (dst, dst_ctx, src, src_ctx, n))
GS_GATED(cuMemcpyPeer_ptds, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n),
         (dst, dst_ctx, src, src_ctx, n))
GS_GATED(cuMemcpyPeerAsync,
         (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s),
         (dst, dst_ctx, src, src_ctx, n, s))
GS_GATED(cuMemcpyPeerAsync_ptsz,
         (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s),
         (dst, dst_ctx, src, src_ctx, n, s))

GS_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCapture_v2, hStream, mode);
}

GS_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCapture_v2_ptsz, hStream, mode);
}

GS_EXPORT CUresult cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph, const CUgraphNode* dependencies,
                                               const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                               CUstreamCaptureMode mode) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCaptureToGraph, hStream, hGraph, dependencies, dependencyData,
                      numDependencies, mode);
}

GS_EXPORT CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream hStream, CUgraph hGraph, const CUgraphNode* dependencies,
                                                    const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                                    CUstreamCaptureMode mode) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCaptureToGraph_ptsz, hStream, hGraph, dependencies, dependencyData,
                      numDependencies, mode);
}

GS_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  GS_ENSURE_INIT();
  return EndCapture(Real().cuStreamEndCapture, hStream, phGraph);
}

GS_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  GS_ENSURE_INIT();
  return EndCapture(Real().cuStreamEndCapture_ptsz, hStream, phGraph);
}
