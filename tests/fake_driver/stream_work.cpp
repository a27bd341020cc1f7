// SPDX-License-Identifier: Apache-2.0
// Host functions, stream callbacks and stream memory operations (cuStreamWaitValue32/64,
// cuStreamWriteValue32/64, cuStreamBatchMemOp; the CUDA 8/9 forms and the CUDA 11.7 _v2 ones,
// each with its per-thread-stream variant). Like kernels, they run at enqueue: a host function
// is called, a write is made, and a wait is checked at once. A wait whose condition does not hold
// yet would block its stream on a GPU until someone writes the value; the fake cannot wait (it
// has no other agent), so it says so and fails with CUDA_ERROR_LAUNCH_TIMEOUT.
#include <cstdio>
#include <cstring>
#include <type_traits>

#include <sys/mman.h>

#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

// The stream's context, if it can take work: a lost context fails every later launch.
CUresult usable_stream(CUstream stream, Context** ctx) {
  FAKE_TRY(stream_context(stream, ctx));
  return (*ctx)->sticky;
}

constexpr unsigned kWaitConditionMask = 0x3;  // GEQ 0, EQ 1, AND 2, NOR 3
constexpr unsigned kKnownWaitFlags = kWaitConditionMask | CU_STREAM_WAIT_VALUE_FLUSH;
constexpr unsigned kKnownWriteFlags = CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER;

// The device memory a memory operation touches: `bytes` at `addr`, aligned to its size.
CUresult memop_target(CUdeviceptr addr, size_t bytes, int prot) {
  if (addr == 0 || addr % bytes != 0) return CUDA_ERROR_INVALID_VALUE;
  if (!range_accessible(addr, bytes, prot)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

template <typename T>
CUresult wait_value(CUstream stream, CUdeviceptr addr, T value, unsigned flags) {
  if ((flags & ~kKnownWaitFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(usable_stream(stream, &c));
  FAKE_TRY(memop_target(addr, sizeof(T), PROT_READ));
  T now;
  std::memcpy(&now, reinterpret_cast<const void*>(addr), sizeof now);
  bool holds = false;
  switch (flags & kWaitConditionMask) {
    case CU_STREAM_WAIT_VALUE_GEQ: holds = static_cast<std::make_signed_t<T>>(now - value) >= 0; break;
    case CU_STREAM_WAIT_VALUE_EQ: holds = now == value; break;
    case CU_STREAM_WAIT_VALUE_AND: holds = (now & value) != 0; break;
    default: holds = static_cast<T>(~(now | value)) != 0; break;  // NOR
  }
  if (!holds) {
    std::fprintf(stderr, "fake libcuda: a stream waits for a value no one has written yet: a GPU would wait\n");
    return CUDA_ERROR_LAUNCH_TIMEOUT;
  }
  return CUDA_SUCCESS;
}

template <typename T>
CUresult write_value(CUstream stream, CUdeviceptr addr, T value, unsigned flags) {
  if ((flags & ~kKnownWriteFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(usable_stream(stream, &c));
  FAKE_TRY(memop_target(addr, sizeof(T), PROT_WRITE));
  std::memcpy(reinterpret_cast<void*>(addr), &value, sizeof value);
  return CUDA_SUCCESS;
}

constexpr unsigned kMaxBatch = 256;

// Every operation is checked before any runs. `barriers`: the _v2 API's CU_STREAM_MEM_OP_BARRIER.
CUresult batch(CUstream stream, unsigned count, const CUstreamBatchMemOpParams* ops, unsigned flags, bool barriers) {
  if (count == 0 || count > kMaxBatch || ops == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(usable_stream(stream, &c));
  for (unsigned i = 0; i < count; ++i) {
    const CUstreamBatchMemOpParams& op = ops[i];
    switch (op.operation) {
      case CU_STREAM_MEM_OP_WAIT_VALUE_32:
      case CU_STREAM_MEM_OP_WAIT_VALUE_64:
        if ((op.waitValue.flags & ~kKnownWaitFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
        FAKE_TRY(memop_target(op.waitValue.address, op.operation == CU_STREAM_MEM_OP_WAIT_VALUE_32 ? 4 : 8, PROT_READ));
        break;
      case CU_STREAM_MEM_OP_WRITE_VALUE_32:
      case CU_STREAM_MEM_OP_WRITE_VALUE_64:
        if ((op.writeValue.flags & ~kKnownWriteFlags) != 0) return CUDA_ERROR_INVALID_VALUE;
        FAKE_TRY(memop_target(op.writeValue.address, op.operation == CU_STREAM_MEM_OP_WRITE_VALUE_32 ? 4 : 8,
                              PROT_WRITE));
        break;
      case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES:
        if (op.flushRemoteWrites.flags != 0) return CUDA_ERROR_INVALID_VALUE;
        break;
      case CU_STREAM_MEM_OP_BARRIER:
        if (!barriers) return CUDA_ERROR_INVALID_VALUE;
        break;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
  }
  for (unsigned i = 0; i < count; ++i) {
    const CUstreamBatchMemOpParams& op = ops[i];
    switch (op.operation) {
      case CU_STREAM_MEM_OP_WAIT_VALUE_32:
        FAKE_TRY(wait_value<cuuint32_t>(stream, op.waitValue.address, op.waitValue.value, op.waitValue.flags));
        break;
      case CU_STREAM_MEM_OP_WAIT_VALUE_64:
        FAKE_TRY(wait_value<cuuint64_t>(stream, op.waitValue.address, op.waitValue.value64, op.waitValue.flags));
        break;
      case CU_STREAM_MEM_OP_WRITE_VALUE_32:
        FAKE_TRY(write_value<cuuint32_t>(stream, op.writeValue.address, op.writeValue.value, op.writeValue.flags));
        break;
      case CU_STREAM_MEM_OP_WRITE_VALUE_64:
        FAKE_TRY(write_value<cuuint64_t>(stream, op.writeValue.address, op.writeValue.value64, op.writeValue.flags));
        break;
      default: break;
    }
  }
  return CUDA_SUCCESS;
}

CUresult host_func(CUstream stream, CUhostFn fn, void* data) {
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(usable_stream(stream, &c));
  fn(data);
  return CUDA_SUCCESS;
}

CUresult add_callback(CUstream stream, CUstreamCallback callback, void* data, unsigned flags) {
  if (callback == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  callback(stream, c->sticky, data);
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuLaunchHostFunc(CUstream stream, CUhostFn fn, void* data) {
  FAKE_ENTER();
  return host_func(stream, fn, data);
}

FAKE_API CUresult cuLaunchHostFunc_ptsz(CUstream stream, CUhostFn fn, void* data) {
  FAKE_ENTER();
  return host_func(stream, fn, data);
}

FAKE_API CUresult cuStreamAddCallback(CUstream stream, CUstreamCallback callback, void* data, unsigned int flags) {
  FAKE_ENTER();
  return add_callback(stream, callback, data, flags);
}

FAKE_API CUresult cuStreamAddCallback_ptsz(CUstream stream, CUstreamCallback callback, void* data,
                                           unsigned int flags) {
  FAKE_ENTER();
  return add_callback(stream, callback, data, flags);
}

#define FAKE_MEMOP(symbol, impl, type)                                                            \
  FAKE_API CUresult symbol(CUstream stream, CUdeviceptr addr, type value, unsigned int flags) { \
    FAKE_ENTER();                                                                                 \
    return impl<type>(stream, addr, value, flags);                                                \
  }
FAKE_MEMOP(cuStreamWaitValue32, wait_value, cuuint32_t)
FAKE_MEMOP(cuStreamWaitValue32_ptsz, wait_value, cuuint32_t)
FAKE_MEMOP(cuStreamWaitValue32_v2, wait_value, cuuint32_t)
FAKE_MEMOP(cuStreamWaitValue32_v2_ptsz, wait_value, cuuint32_t)
FAKE_MEMOP(cuStreamWaitValue64, wait_value, cuuint64_t)
FAKE_MEMOP(cuStreamWaitValue64_ptsz, wait_value, cuuint64_t)
FAKE_MEMOP(cuStreamWaitValue64_v2, wait_value, cuuint64_t)
FAKE_MEMOP(cuStreamWaitValue64_v2_ptsz, wait_value, cuuint64_t)
FAKE_MEMOP(cuStreamWriteValue32, write_value, cuuint32_t)
FAKE_MEMOP(cuStreamWriteValue32_ptsz, write_value, cuuint32_t)
FAKE_MEMOP(cuStreamWriteValue32_v2, write_value, cuuint32_t)
FAKE_MEMOP(cuStreamWriteValue32_v2_ptsz, write_value, cuuint32_t)
FAKE_MEMOP(cuStreamWriteValue64, write_value, cuuint64_t)
FAKE_MEMOP(cuStreamWriteValue64_ptsz, write_value, cuuint64_t)
FAKE_MEMOP(cuStreamWriteValue64_v2, write_value, cuuint64_t)
FAKE_MEMOP(cuStreamWriteValue64_v2_ptsz, write_value, cuuint64_t)
#undef FAKE_MEMOP

#define FAKE_BATCH(symbol, barriers)                                                                 \
  FAKE_API CUresult symbol(CUstream stream, unsigned int count, CUstreamBatchMemOpParams* ops,      \
                           unsigned int flags) {                                                     \
    FAKE_ENTER();                                                                                    \
    return batch(stream, count, ops, flags, barriers);                                              \
  }
FAKE_BATCH(cuStreamBatchMemOp, false)
FAKE_BATCH(cuStreamBatchMemOp_ptsz, false)
FAKE_BATCH(cuStreamBatchMemOp_v2, true)
FAKE_BATCH(cuStreamBatchMemOp_v2_ptsz, true)
#undef FAKE_BATCH
