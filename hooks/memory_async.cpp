// SPDX-License-Identifier: Apache-2.0
// Stream-ordered allocation from memory pools (cudaMallocAsync, PyTorch's
// backend:cudaMallocAsync). The charge follows each pool's reserved memory; see
// quota/pool_accounting.h.
#include "hooks/export.h"
#include "quota/memory_accounting.h"
#include "quota/pool_accounting.h"
#include "quota/swap_table.h"
#include "quota/swap_gate.h"

using gpushare::Real;
namespace quota = gpushare::quota;

namespace {

// `allocate` performs the driver call, legacy or per-thread-stream flavour.
template <typename AllocateFn>
CUresult AllocateFromPool(quota::DeviceQuota* q, CUmemoryPool pool, size_t bytesize,
                          AllocateFn allocate) {
  if (q == nullptr || pool == nullptr) return allocate();
  quota::NoteGraphMemoryUse();  // a captured allocation becomes graph memory at launch
  quota::Charge growth = quota::ReservePoolGrowth(*q, pool, bytesize);
  if (!growth) return quota::Deny(*q, bytesize, "cuMemAllocAsync");
  const CUresult rc = quota::CallDriverGranted(*q, growth, allocate);
  quota::SyncPool(*q, pool);  // the charge becomes the pool's reserved bytes; growth is released
  return rc;
}

CUmemoryPool CurrentPool(const quota::DeviceQuota* q) {
  CUmemoryPool pool = nullptr;
  if (q != nullptr) Real().cuDeviceGetMemPool(&pool, q->ordinal());
  return pool;
}

template <typename AllocFn>
CUresult AllocAsync(AllocFn real, CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  if (dptr == nullptr || bytesize == 0) return real(dptr, bytesize, stream);  // the driver's to refuse
  quota::DeviceQuota* q = quota::StreamQuota(stream);
  return AllocateFromPool(q, CurrentPool(q), bytesize,
                          [&] { return real(dptr, bytesize, stream); });
}

template <typename AllocFn>
CUresult AllocFromPoolAsync(AllocFn real, CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                            CUstream stream) {
  if (dptr == nullptr || bytesize == 0) return real(dptr, bytesize, pool, stream);
  return AllocateFromPool(quota::StreamQuota(stream), pool, bytesize,
                          [&] { return real(dptr, bytesize, pool, stream); });
}

}  // namespace

GS_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  GS_ENSURE_INIT();
  return AllocAsync(Real().cuMemAllocAsync, dptr, bytesize, hStream);
}

GS_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  GS_ENSURE_INIT();
  return AllocAsync(Real().cuMemAllocAsync_ptsz, dptr, bytesize, hStream);
}

GS_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                           CUstream hStream) {
  GS_ENSURE_INIT();
  return AllocFromPoolAsync(Real().cuMemAllocFromPoolAsync, dptr, bytesize, pool, hStream);
}

GS_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize,
                                                CUmemoryPool pool, CUstream hStream) {
  GS_ENSURE_INIT();
  return AllocFromPoolAsync(Real().cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, pool, hStream);
}

// A stream-ordered free returns memory to its pool, not to the device: the pool's reserved
// bytes (our charge) change only when it trims, which the next allocation or query re-reads.
// cuMemFreeAsync also frees cuMemAlloc memory, which is ours to uncharge.
GS_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  GS_ENSURE_INIT();
  // A swappable allocation is freed at once, after its context's work (as cuMemFree would).
  if (CUresult swap_rc; quota::swap::Enabled() && quota::swap::Free(dptr, &swap_rc)) return swap_rc;
  const CUresult rc = Real().cuMemFreeAsync(dptr, hStream);
  if (rc == CUDA_SUCCESS) quota::Forget(quota::HandleKind::kDevicePtr, dptr);
  return rc;
}

GS_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  GS_ENSURE_INIT();
  // A swappable allocation is freed at once, after its context's work (as cuMemFree would).
  if (CUresult swap_rc; quota::swap::Enabled() && quota::swap::Free(dptr, &swap_rc)) return swap_rc;
  const CUresult rc = Real().cuMemFreeAsync_ptsz(dptr, hStream);
  if (rc == CUDA_SUCCESS) quota::Forget(quota::HandleKind::kDevicePtr, dptr);
  return rc;
}

GS_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuMemPoolTrimTo(pool, minBytesToKeep);
  if (rc == CUDA_SUCCESS) quota::SyncAllPools();
  return rc;
}

GS_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuMemPoolDestroy(pool);
  if (rc == CUDA_SUCCESS) quota::ForgetPool(pool);
  return rc;
}
