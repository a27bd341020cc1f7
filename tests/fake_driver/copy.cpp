// SPDX-License-Identifier: Apache-2.0
// cuMemcpy* and cuMemset*: run synchronously; every device span must lie entirely inside live,
// accessible device memory or the call fails with CUDA_ERROR_INVALID_VALUE. 2D copies take host,
// device and unified memory (the fake's arrays hold no data: an array side is
// CUDA_ERROR_NOT_SUPPORTED); peer copies are device-to-device copies between two contexts.
#include "tests/fake_driver/state.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace fakecuda;

namespace {

constexpr int kRW = PROT_READ | PROT_WRITE;

void* host(CUdeviceptr p) { return reinterpret_cast<void*>(p); }

CUresult need_stream(CUstream stream) {
  Context* c = nullptr;
  return stream_context(stream, &c);
}

CUresult htod(CUdeviceptr dst, const void* src, size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  if (src == nullptr || !range_accessible(dst, n, PROT_WRITE)) return CUDA_ERROR_INVALID_VALUE;
  std::memmove(host(dst), src, n);
  return CUDA_SUCCESS;
}

// GPUSHARE_FAKE_DTOH_DELAY_MS: each device-to-host copy takes this long (a slow swap-out, to
// kill a process in the middle of one).
void dtoh_delay() {
  static const long ms = [] {
    const char* v = std::getenv("GPUSHARE_FAKE_DTOH_DELAY_MS");
    return v != nullptr ? std::atol(v) : 0L;
  }();
  if (ms > 0) usleep(static_cast<useconds_t>(ms) * 1000);
}

CUresult dtoh(void* dst, CUdeviceptr src, size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  dtoh_delay();
  if (dst == nullptr || !range_accessible(src, n, PROT_READ)) return CUDA_ERROR_INVALID_VALUE;
  std::memmove(dst, host(src), n);
  return CUDA_SUCCESS;
}

CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  if (!range_accessible(dst, n, PROT_WRITE) || !range_accessible(src, n, PROT_READ)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::memmove(host(dst), host(src), n);
  return CUDA_SUCCESS;
}

// Unified addressing: an address inside a device range is checked as device memory, anything
// else is taken to be host memory.
CUresult unified(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  if (dst == 0 || src == 0) return CUDA_ERROR_INVALID_VALUE;
  if (find_range(dst) != nullptr && !range_accessible(dst, n, PROT_WRITE)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (find_range(src) != nullptr && !range_accessible(src, n, PROT_READ)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::memmove(host(dst), host(src), n);
  return CUDA_SUCCESS;
}

template <typename T>
CUresult memset_n(CUdeviceptr dst, T value, size_t count) {
  if (dst % sizeof(T) != 0) return CUDA_ERROR_INVALID_VALUE;
  if (count == 0) return CUDA_SUCCESS;
  if (count > SIZE_MAX / sizeof(T) || !range_accessible(dst, count * sizeof(T), kRW)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  T* p = static_cast<T*>(host(dst));
  if constexpr (sizeof(T) == 1) std::memset(p, value, count);
  else std::fill(p, p + count, value);
  return CUDA_SUCCESS;
}

CUresult need_context() {
  Context* c = nullptr;
  return current_context(&c);
}

template <typename T>
CUresult memset_2d(CUdeviceptr dst, size_t pitch, T value, size_t width, size_t height) {
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  if (height > 1 && (width > SIZE_MAX / sizeof(T) || pitch < width * sizeof(T))) return CUDA_ERROR_INVALID_VALUE;
  for (size_t y = 0; y < height; ++y) FAKE_TRY(memset_n<T>(dst + y * pitch, value, width));
  return CUDA_SUCCESS;
}

// One row of a 2D copy between host (CU_MEMORYTYPE_HOST), device and unified addresses.
CUresult copy_row(CUmemorytype dst_type, uintptr_t dst, CUmemorytype src_type, uintptr_t src, size_t n) {
  const bool dst_host = dst_type == CU_MEMORYTYPE_HOST, src_host = src_type == CU_MEMORYTYPE_HOST;
  if (dst_type == CU_MEMORYTYPE_UNIFIED || src_type == CU_MEMORYTYPE_UNIFIED) return unified(dst, src, n);
  if (dst_host && src_host) {
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
    return CUDA_SUCCESS;
  }
  if (src_host) return htod(dst, reinterpret_cast<const void*>(src), n);
  if (dst_host) return dtoh(reinterpret_cast<void*>(dst), src, n);
  return dtod(dst, src, n);
}

uintptr_t base_of(CUmemorytype type, const void* host_ptr, CUdeviceptr device_ptr) {
  return type == CU_MEMORYTYPE_HOST ? reinterpret_cast<uintptr_t>(host_ptr) : device_ptr;
}

CUresult copy_2d(const CUDA_MEMCPY2D* c) {
  if (c == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;
  for (CUmemorytype t : {c->srcMemoryType, c->dstMemoryType})
    if (t != CU_MEMORYTYPE_HOST && t != CU_MEMORYTYPE_DEVICE && t != CU_MEMORYTYPE_UNIFIED) return CUDA_ERROR_INVALID_VALUE;
  if (c->WidthInBytes == 0 || c->Height == 0) return CUDA_SUCCESS;
  if (c->Height > 1 && (c->srcPitch < c->srcXInBytes + c->WidthInBytes || c->dstPitch < c->dstXInBytes + c->WidthInBytes))
    return CUDA_ERROR_INVALID_VALUE;
  const uintptr_t src = base_of(c->srcMemoryType, c->srcHost, c->srcDevice);
  const uintptr_t dst = base_of(c->dstMemoryType, c->dstHost, c->dstDevice);
  if (src == 0 || dst == 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t y = 0; y < c->Height; ++y)
    FAKE_TRY(copy_row(c->dstMemoryType, dst + (c->dstY + y) * c->dstPitch + c->dstXInBytes, c->srcMemoryType,
                      src + (c->srcY + y) * c->srcPitch + c->srcXInBytes, c->WidthInBytes));
  return CUDA_SUCCESS;
}

CUresult copy_peer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n) {
  if (dst_ctx == nullptr || src_ctx == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return dtod(dst, src, n);
}

}  // namespace

FAKE_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return htod(dst, src, n);
}

FAKE_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return dtoh(dst, src, n);
}

FAKE_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return dtod(dst, src, n);
}

FAKE_API CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return unified(dst, src, n);
}

FAKE_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return htod(dst, src, n);
}

FAKE_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return dtoh(dst, src, n);
}

FAKE_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return dtod(dst, src, n);
}

FAKE_API CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return unified(dst, src, n);
}

FAKE_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return memset_n<unsigned char>(dst, value, n);
}

FAKE_API CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short value, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return memset_n<unsigned short>(dst, value, n);
}

FAKE_API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t n) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return memset_n<unsigned int>(dst, value, n);
}

FAKE_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return memset_n<unsigned char>(dst, value, n);
}

FAKE_API CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short value, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return memset_n<unsigned short>(dst, value, n);
}

FAKE_API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t n, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return memset_n<unsigned int>(dst, value, n);
}

// Per-thread-default-stream twins: every stream runs synchronously, so they behave the same.
FAKE_API CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void* src, size_t n) {
  return cuMemcpyHtoD_v2(dst, src, n);
}
FAKE_API CUresult cuMemcpyDtoH_v2_ptds(void* dst, CUdeviceptr src, size_t n) {
  return cuMemcpyDtoH_v2(dst, src, n);
}
FAKE_API CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  return cuMemcpyDtoD_v2(dst, src, n);
}
FAKE_API CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  return cuMemcpy(dst, src, n);
}
FAKE_API CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void* src, size_t n,
                                            CUstream s) {
  return cuMemcpyHtoDAsync_v2(dst, src, n, s);
}
FAKE_API CUresult cuMemcpyDtoHAsync_v2_ptsz(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  return cuMemcpyDtoHAsync_v2(dst, src, n, s);
}
FAKE_API CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n,
                                            CUstream s) {
  return cuMemcpyDtoDAsync_v2(dst, src, n, s);
}
FAKE_API CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  return cuMemcpyAsync(dst, src, n, s);
}
FAKE_API CUresult cuMemsetD8_v2_ptds(CUdeviceptr dst, unsigned char value, size_t n) {
  return cuMemsetD8_v2(dst, value, n);
}
FAKE_API CUresult cuMemsetD16_v2_ptds(CUdeviceptr dst, unsigned short value, size_t n) {
  return cuMemsetD16_v2(dst, value, n);
}
FAKE_API CUresult cuMemsetD32_v2_ptds(CUdeviceptr dst, unsigned int value, size_t n) {
  return cuMemsetD32_v2(dst, value, n);
}
FAKE_API CUresult cuMemsetD8Async_ptsz(CUdeviceptr dst, unsigned char value, size_t n,
                                       CUstream s) {
  return cuMemsetD8Async(dst, value, n, s);
}
FAKE_API CUresult cuMemsetD16Async_ptsz(CUdeviceptr dst, unsigned short value, size_t n,
                                        CUstream s) {
  return cuMemsetD16Async(dst, value, n, s);
}
FAKE_API CUresult cuMemsetD32Async_ptsz(CUdeviceptr dst, unsigned int value, size_t n,
                                        CUstream s) {
  return cuMemsetD32Async(dst, value, n, s);
}

#define FAKE_MEMSET_2D(bits, type)                                                                         \
  FAKE_API CUresult cuMemsetD2D##bits##_v2(CUdeviceptr dst, size_t pitch, type v, size_t w, size_t h) {     \
    FAKE_ENTER();                                                                                           \
    FAKE_TRY(need_context());                                                                               \
    return memset_2d<type>(dst, pitch, v, w, h);                                                            \
  }                                                                                                         \
  FAKE_API CUresult cuMemsetD2D##bits##_v2_ptds(CUdeviceptr dst, size_t pitch, type v, size_t w, size_t h) { \
    return cuMemsetD2D##bits##_v2(dst, pitch, v, w, h);                                                     \
  }                                                                                                         \
  FAKE_API CUresult cuMemsetD2D##bits##Async(CUdeviceptr dst, size_t pitch, type v, size_t w, size_t h,     \
                                             CUstream s) {                                                  \
    FAKE_ENTER();                                                                                           \
    FAKE_TRY(need_stream(s));                                                                               \
    return memset_2d<type>(dst, pitch, v, w, h);                                                            \
  }                                                                                                         \
  FAKE_API CUresult cuMemsetD2D##bits##Async_ptsz(CUdeviceptr dst, size_t pitch, type v, size_t w,          \
                                                  size_t h, CUstream s) {                                   \
    return cuMemsetD2D##bits##Async(dst, pitch, v, w, h, s);                                                \
  }
FAKE_MEMSET_2D(8, unsigned char)
FAKE_MEMSET_2D(16, unsigned short)
FAKE_MEMSET_2D(32, unsigned int)
#undef FAKE_MEMSET_2D

FAKE_API CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D* copy) {
  FAKE_ENTER();
  FAKE_TRY(need_context());
  return copy_2d(copy);
}
FAKE_API CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D* copy) { return cuMemcpy2D_v2(copy); }
FAKE_API CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* copy) { return cuMemcpy2D_v2(copy); }
FAKE_API CUresult cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D* copy) { return cuMemcpy2D_v2(copy); }
FAKE_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* copy, CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return copy_2d(copy);
}
FAKE_API CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* copy, CUstream s) { return cuMemcpy2DAsync_v2(copy, s); }

FAKE_API CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n) {
  FAKE_ENTER();
  return copy_peer(dst, dst_ctx, src, src_ctx, n);
}
FAKE_API CUresult cuMemcpyPeer_ptds(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n) {
  return cuMemcpyPeer(dst, dst_ctx, src, src_ctx, n);
}
FAKE_API CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n,
                                    CUstream s) {
  FAKE_ENTER();
  FAKE_TRY(need_stream(s));
  return copy_peer(dst, dst_ctx, src, src_ctx, n);
}
FAKE_API CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx,
                                         size_t n, CUstream s) {
  return cuMemcpyPeerAsync(dst, dst_ctx, src, src_ctx, n, s);
}
