// SPDX-License-Identifier: Apache-2.0
// Copies, memsets and stream capture: passed through. Copies and memsets are stream work
// (hooks/launch_entry.h: the swap gate, one branch on a process-local flag without a swap
// tenant, and the activity clock); capture begins pass the swap gate only.
#include <initializer_list>

#include "hooks/launch_entry.h"
#include "quota/swap_agent.h"
#include "quota/swap_table.h"

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

// Under swap, a swappable allocation's mapping is rounded up to the VMM granularity, so the
// driver would let a copy or memset run into the rounding where, for cuMemAlloc memory, it
// refuses the range (CUDA_ERROR_INVALID_VALUE): the range is checked against the size asked for.
struct Span {
  CUdeviceptr ptr;
  size_t bytes;
};

bool FitsSwappable(const Span& s) {
  CUdeviceptr base = 0;
  size_t size = 0;
  if (s.bytes == 0 || !swap::AddressRange(s.ptr, &base, &size)) return true;  // the driver's to judge
  return s.bytes <= size && s.ptr - base <= size - s.bytes;
}

// The range is the driver's to refuse only once it has a context to work in (a non-default
// stream's, else the current one); without one it answers CUDA_ERROR_INVALID_CONTEXT first.
bool SpansFit(CUstream stream, std::initializer_list<Span> spans) {
  if (stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD) {
    CUcontext current = nullptr;
    if (Real().cuCtxGetCurrent(&current) != CUDA_SUCCESS || current == nullptr) return true;
  }
  for (const Span& s : spans)
    if (!FitsSwappable(s)) return false;
  return true;
}

// Bytes from the first to the last one a pitched operation touches (0 when empty or overflowing:
// the driver judges those).
size_t PitchedBytes(size_t pitch, size_t width_bytes, size_t height) {
  size_t rows = 0, bytes = 0;
  if (width_bytes == 0 || height == 0 || __builtin_mul_overflow(height - 1, pitch, &rows) ||
      __builtin_add_overflow(rows, width_bytes, &bytes))
    return 0;
  return bytes;
}

size_t Elements(size_t count, size_t element_bytes) {
  size_t bytes = 0;
  return __builtin_mul_overflow(count, element_bytes, &bytes) ? 0 : bytes;
}

// The device side of a 2D copy, when it is device memory.
Span DeviceSide(CUmemorytype type, CUdeviceptr ptr, size_t x, size_t y, size_t pitch, const CUDA_MEMCPY2D& c) {
  if (type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED) return {0, 0};
  return {ptr + y * pitch + x, PitchedBytes(pitch, c.WidthInBytes, c.Height)};
}

bool Copy2DFits(CUstream stream, const CUDA_MEMCPY2D* c) {
  if (c == nullptr) return true;
  return SpansFit(stream, {DeviceSide(c->srcMemoryType, c->srcDevice, c->srcXInBytes, c->srcY, c->srcPitch, *c),
                   DeviceSide(c->dstMemoryType, c->dstDevice, c->dstXInBytes, c->dstY, c->dstPitch, *c)});
}

}  // namespace

// Stream work on device memory whose ranges `fits` checks while the call holds the swap gate.
#define GS_RANGED_STREAM_WORK(symbol, params, args, fits)                              \
  GS_EXPORT CUresult symbol params {                                                  \
    return ::gpushare::EnterStreamWork<::gpushare::StreamWork::kOther>(                \
        nullptr, false, [=] { return Real().symbol(GS_UNPAREN args); },                \
        [=] { return (fits) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; });             \
  }

GS_RANGED_STREAM_WORK(cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyHtoD_v2, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyHtoD_v2_ptds, (CUdeviceptr dst, const void* src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoH_v2, (void* dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoH_v2_ptds, (void* dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoD_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoD_v2_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyHtoDAsync_v2, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr dst, const void* src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoHAsync_v2, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoHAsync_v2_ptsz, (void* dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoDAsync_v2, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s), (dst, src, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemsetD8_v2, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 1)}}))
GS_RANGED_STREAM_WORK(cuMemsetD8_v2_ptds, (CUdeviceptr dst, unsigned char v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 1)}}))
GS_RANGED_STREAM_WORK(cuMemsetD16_v2, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 2)}}))
GS_RANGED_STREAM_WORK(cuMemsetD16_v2_ptds, (CUdeviceptr dst, unsigned short v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 2)}}))
GS_RANGED_STREAM_WORK(cuMemsetD32_v2, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 4)}}))
GS_RANGED_STREAM_WORK(cuMemsetD32_v2_ptds, (CUdeviceptr dst, unsigned int v, size_t n), (dst, v, n),
                      SpansFit(nullptr, {{dst, Elements(n, 4)}}))
GS_RANGED_STREAM_WORK(cuMemsetD8Async, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 1)}}))
GS_RANGED_STREAM_WORK(cuMemsetD8Async_ptsz, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 1)}}))
GS_RANGED_STREAM_WORK(cuMemsetD16Async, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 2)}}))
GS_RANGED_STREAM_WORK(cuMemsetD16Async_ptsz, (CUdeviceptr dst, unsigned short v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 2)}}))
GS_RANGED_STREAM_WORK(cuMemsetD32Async, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 4)}}))
GS_RANGED_STREAM_WORK(cuMemsetD32Async_ptsz, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s), (dst, v, n, s),
                      SpansFit(s, {{dst, Elements(n, 4)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D8_v2, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 1), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D8_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 1), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D8Async, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 1), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D8Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned char v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 1), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D16_v2, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 2), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D16_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 2), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D16Async, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 2), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D16Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned short v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 2), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D32_v2, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 4), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D32_v2_ptds, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h), (dst, pitch, v, w, h),
                      SpansFit(nullptr, {{dst, PitchedBytes(pitch, Elements(w, 4), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D32Async, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 4), h)}}))
GS_RANGED_STREAM_WORK(cuMemsetD2D32Async_ptsz, (CUdeviceptr dst, size_t pitch, unsigned int v, size_t w, size_t h, CUstream s), (dst, pitch, v, w, h, s),
                      SpansFit(s, {{dst, PitchedBytes(pitch, Elements(w, 4), h)}}))
GS_RANGED_STREAM_WORK(cuMemcpy2D_v2, (const CUDA_MEMCPY2D* copy), (copy),
                      Copy2DFits(nullptr, copy))
GS_RANGED_STREAM_WORK(cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy),
                      Copy2DFits(nullptr, copy))
GS_RANGED_STREAM_WORK(cuMemcpy2DUnaligned_v2, (const CUDA_MEMCPY2D* copy), (copy),
                      Copy2DFits(nullptr, copy))
GS_RANGED_STREAM_WORK(cuMemcpy2DUnaligned_v2_ptds, (const CUDA_MEMCPY2D* copy), (copy),
                      Copy2DFits(nullptr, copy))
GS_RANGED_STREAM_WORK(cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s),
                      Copy2DFits(s, copy))
GS_RANGED_STREAM_WORK(cuMemcpy2DAsync_v2_ptsz, (const CUDA_MEMCPY2D* copy, CUstream s), (copy, s),
                      Copy2DFits(s, copy))
GS_RANGED_STREAM_WORK(cuMemcpyPeer, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n), (dst, dst_ctx, src, src_ctx, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyPeer_ptds, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n), (dst, dst_ctx, src, src_ctx, n),
                      SpansFit(nullptr, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyPeerAsync, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s), (dst, dst_ctx, src, src_ctx, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))
GS_RANGED_STREAM_WORK(cuMemcpyPeerAsync_ptsz, (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream s), (dst, dst_ctx, src, src_ctx, n, s),
                      SpansFit(s, {{dst, n}, {src, n}}))

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
