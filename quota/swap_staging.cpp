// SPDX-License-Identifier: Apache-2.0
#include "quota/swap_staging.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "quota/activity.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::quota::swap {
namespace {

constexpr uint64_t kPage = 4096;
uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

}  // namespace

bool Staging::Prepare(uint64_t bytes, CUcontext ctx) {
  if (prepared_) return registered_;
  prepared_ = true;
  if (bytes == 0) return false;
  size_ = RoundUp(bytes, kPage);
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    GS_LOG_WARN("gpushare: swap staging: cannot map {} bytes of host memory; swap-outs use pageable memory", size_);
    size_ = 0;
    return false;
  }
  base_ = static_cast<char*>(p);
  const uint64_t start = ActivityClockNs();
  if (Real().cuCtxPushCurrent_v2(ctx) == CUDA_SUCCESS) {
    const CUresult rc = Real().cuMemHostRegister_v2(base_, size_, CU_MEMHOSTREGISTER_PORTABLE);
    CUcontext popped = nullptr;
    Real().cuCtxPopCurrent_v2(&popped);
    registered_ = rc == CUDA_SUCCESS;
    if (!registered_)
      GS_LOG_WARN("gpushare: swap staging: cuMemHostRegister of {} bytes failed ({}); swap-outs are pageable "
                  "(about 4 times slower)", size_, static_cast<int>(rc));
  }
  GS_LOG_INFO("gpushare: swap staging: {} bytes of host memory {} in {:.1f} ms", size_,
              registered_ ? "page-locked" : "(pageable)", (ActivityClockNs() - start) / 1e6);
  return registered_;
}

void* Staging::Take(uint64_t bytes, bool* pooled) {
  const uint64_t need = RoundUp(bytes == 0 ? 1 : bytes, kPage);
  if (base_ != nullptr && used_ + need <= size_) {
    *pooled = true;
    void* p = base_ + used_;
    used_ += need;
    return p;
  }
  if (!warned_) {
    warned_ = true;
    GS_LOG_WARN("gpushare: swap staging of {} bytes is full; this swap-out continues in pageable memory "
                "(set GPUSHARE_SWAP_STAGING larger)", size_);
  }
  *pooled = false;
  return std::aligned_alloc(kPage, need);
}

void Staging::Give(void* p, bool pooled) {
  if (!pooled) std::free(p);
}

}  // namespace gpushare::quota::swap
