// SPDX-License-Identifier: Apache-2.0
// Stream work that is neither a kernel nor a copy: host functions, stream callbacks and stream
// memory operations (cuStreamWaitValue*, cuStreamWriteValue*, cuStreamBatchMemOp, the CUDA 8/9
// forms and the CUDA 11.7 _v2 ones, each with its per-thread-stream variant). Each is activity
// and passes the swap gate (hooks/launch_entry.h): a memory operation reads or writes device
// memory, which must be resident, and while swap moves this process's memory nothing of it may
// enter a queue. None runs a kernel, so the compute turn does not gate them.
//
// A stream waiting on a value (cuStreamWaitValue*) that only a later call of this process will
// write holds a swap-out's drain until that call: the writer waits at the closed gate, and the
// drain waits for the stream (as a kernel spinning on a flag a later launch sets would).
#include "hooks/launch_entry.h"

GS_STREAM_WORK(cuLaunchHostFunc, (CUstream hStream, CUhostFn fn, void* userData), (hStream, fn, userData))
GS_STREAM_WORK(cuLaunchHostFunc_ptsz, (CUstream hStream, CUhostFn fn, void* userData), (hStream, fn, userData))
GS_STREAM_WORK(cuStreamAddCallback, (CUstream hStream, CUstreamCallback callback, void* userData, unsigned int flags),
               (hStream, callback, userData, flags))
GS_STREAM_WORK(cuStreamAddCallback_ptsz,
               (CUstream hStream, CUstreamCallback callback, void* userData, unsigned int flags),
               (hStream, callback, userData, flags))

#define GS_MEMOP_32(symbol)                                                                   \
  GS_STREAM_WORK(symbol, (CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags), \
                 (stream, addr, value, flags))
#define GS_MEMOP_64(symbol)                                                                   \
  GS_STREAM_WORK(symbol, (CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags), \
                 (stream, addr, value, flags))
#define GS_BATCH_MEMOP(symbol)                                                                            \
  GS_STREAM_WORK(symbol, (CUstream stream, unsigned int count, CUstreamBatchMemOpParams* paramArray, unsigned int flags), \
                 (stream, count, paramArray, flags))

GS_MEMOP_32(cuStreamWaitValue32)
GS_MEMOP_32(cuStreamWaitValue32_ptsz)
GS_MEMOP_32(cuStreamWaitValue32_v2)
GS_MEMOP_32(cuStreamWaitValue32_v2_ptsz)
GS_MEMOP_32(cuStreamWriteValue32)
GS_MEMOP_32(cuStreamWriteValue32_ptsz)
GS_MEMOP_32(cuStreamWriteValue32_v2)
GS_MEMOP_32(cuStreamWriteValue32_v2_ptsz)
GS_MEMOP_64(cuStreamWaitValue64)
GS_MEMOP_64(cuStreamWaitValue64_ptsz)
GS_MEMOP_64(cuStreamWaitValue64_v2)
GS_MEMOP_64(cuStreamWaitValue64_v2_ptsz)
GS_MEMOP_64(cuStreamWriteValue64)
GS_MEMOP_64(cuStreamWriteValue64_ptsz)
GS_MEMOP_64(cuStreamWriteValue64_v2)
GS_MEMOP_64(cuStreamWriteValue64_v2_ptsz)
GS_BATCH_MEMOP(cuStreamBatchMemOp)
GS_BATCH_MEMOP(cuStreamBatchMemOp_ptsz)
GS_BATCH_MEMOP(cuStreamBatchMemOp_v2)
GS_BATCH_MEMOP(cuStreamBatchMemOp_v2_ptsz)
