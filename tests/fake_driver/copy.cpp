// cuMemcpy* and cuMemset*: run synchronously; every device span must lie entirely inside live,
// accessible device memory or the call fails with CUDA_ERROR_INVALID_VALUE.
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
