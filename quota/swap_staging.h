// SPDX-License-Identifier: Apache-2.0
// Host memory that receives swapped-out device memory. Page-locking is slow (cuMemAllocHost of
// 4 GiB took 2.35 s on the H100; cuMemHostRegister of touched memory 58 ms per GiB), so the pool
// is made once, ahead, by the agent thread (touched, then registered), and reused by every
// swap-out: a bump allocator that starts over once everything is back. Past it, a swap-out uses
// pageable memory (14.8 GB/s out and 9.8 GB/s in measured, against 55 pinned), with a warning.
// Staging is this process's memory: the kernel frees it when the process dies.
#pragma once
#include <cstdint>

#include "src/cuda_api.h"

namespace gpushare::quota::swap {

struct Staging {
  // Makes the pinned pool of `bytes` with `ctx` current (once; later calls do nothing). False
  // when it could not be made (swap-outs then use pageable memory).
  bool Prepare(uint64_t bytes, CUcontext ctx);
  bool prepared() const { return prepared_; }
  uint64_t pinned_bytes() const { return registered_ ? size_ : 0; }
  // Room for `bytes`; *pooled says whether it came from the pinned pool. nullptr: no memory.
  void* Take(uint64_t bytes, bool* pooled);
  // Gives back what Take returned (pooled memory comes back only at Reset).
  void Give(void* p, bool pooled);
  // Everything is back on the GPU: the pool starts over.
  void Reset() { used_ = 0; }

 private:
  char* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t used_ = 0;
  bool registered_ = false;
  bool prepared_ = false;
  bool warned_ = false;
};

}  // namespace gpushare::quota::swap
