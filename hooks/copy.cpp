// SPDX-License-Identifier: Apache-2.0
// Copies, memsets and stream capture: passed through. Copies and memsets are stream work
// (hooks/launch_entry.h: the swap gate, one branch on a process-local flag without a swap
// tenant, and the activity clock); capture begins pass the swap gate only.
#include "hooks/launch_entry.h"
#include "quota/swap_agent.h"

using gpushare::Real;
namespace swap = gpushare::quota::swap;

namespace {

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


GS_STREAM_WORK(cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyHtoD_v2, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyHtoD_v2_ptds, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyDtoH_v2, (void* dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyDtoH_v2_ptds, (void* dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyDtoD_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyDtoD_v2_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))
GS_STREAM_WORK(cuMemcpyHtoDAsync_v2, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyDtoHAsync_v2, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyDtoHAsync_v2_ptsz, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyDtoDAsync_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s))
GS_STREAM_WORK(cuMemsetD8_v2, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD8_v2_ptds, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD16_v2, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD16_v2_ptds, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD32_v2, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD32_v2_ptds, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n))
GS_STREAM_WORK(cuMemsetD8Async, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD8Async_ptsz, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD16Async, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD16Async_ptsz, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD32Async, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD32Async_ptsz, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s))
GS_STREAM_WORK(cuMemsetD2D8_v2, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D8_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D8Async, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemsetD2D8Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemsetD2D16_v2, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D16_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D16Async, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemsetD2D16Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemsetD2D32_v2, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D32_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h))
GS_STREAM_WORK(cuMemsetD2D32Async, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemsetD2D32Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s),
               (dst, pitch, v, w, h, s))
GS_STREAM_WORK(cuMemcpy2D_v2, (const CUDA_MEMCPY2D* copy), (copy))
GS_STREAM_WORK(cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy))
GS_STREAM_WORK(cuMemcpy2DUnaligned_v2, (const CUDA_MEMCPY2D* copy), (copy))
GS_STREAM_WORK(cuMemcpy2DUnaligned_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy))
GS_STREAM_WORK(cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s))
GS_STREAM_WORK(cuMemcpy2DAsync_v2_ptsz, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s))
GS_STREAM_WORK(cuMemcpyPeer, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n),
               (dst, dst_ctx, src, src_ctx, n))
GS_STREAM_WORK(cuMemcpyPeer_ptds, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n),
               (dst, dst_ctx, src, src_ctx, n))
GS_STREAM_WORK(cuMemcpyPeerAsync,
               (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s),
               (dst, dst_ctx, src, src_ctx, n, s))
GS_STREAM_WORK(cuMemcpyPeerAsync_ptsz,
               (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s),
               (dst, dst_ctx, src, src_ctx, n, s))

// The CUDA 10.0 form: global mode.
GS_EXPORT CUresult cuStreamBeginCapture(CUstream hStream) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCapture, hStream);
}

GS_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream hStream) {
  GS_ENSURE_INIT();
  return BeginCapture(Real().cuStreamBeginCapture_ptsz, hStream);
}

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
