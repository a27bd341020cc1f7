// SPDX-License-Identifier: Apache-2.0
// The instructions a launch-like wrapper adds, on the CPU against the fake driver (no GPU):
// calls one entry point N times; bench/launch_path_cost.sh runs it under callgrind with and
// without LD_PRELOAD=libgpushare.so at two N and prints instructions per call.
//   gpushare_launch_path_bench ENTRY N     ENTRY: cuLaunchKernel cuGraphLaunch cuMemsetD32Async
//                                                 cuStreamWriteValue32_v2 cuLaunchHostFunc
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/fake_driver/fake_cuda_control.h"

extern "C" __attribute__((visibility("default"), used)) void bench_noop(const fakecuda_launch*) {}

namespace {

void CUDA_CB HostNoop(void*) {}

bool Ok(CUresult rc, const char* what) {
  if (rc != CUDA_SUCCESS) std::fprintf(stderr, "launch_path_bench: %s -> %d\n", what, static_cast<int>(rc));
  return rc == CUDA_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gpushare_launch_path_bench ENTRY N\n");
    return 2;
  }
  const char* entry = argv[1];
  const long n = std::strtol(argv[2], nullptr, 10);
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUmodule module = nullptr;
  CUfunction f = nullptr;
  CUdeviceptr buffer = 0;
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  if (!Ok(cuInit(0), "cuInit") || !Ok(cuDeviceGet(&dev, 0), "cuDeviceGet") ||
      !Ok(cuDevicePrimaryCtxRetain(&ctx, dev), "retain") || !Ok(cuCtxSetCurrent(ctx), "set current") ||
      !Ok(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "stream") ||
      !Ok(cuModuleLoadData(&module, ".entry bench_noop(\n"), "module") ||
      !Ok(cuModuleGetFunction(&f, module, "bench_noop"), "function") ||
      !Ok(cuMemAlloc_v2(&buffer, 1 << 20), "alloc") || !Ok(cuGraphCreate(&graph, 0), "graph") ||
      !Ok(cuGraphInstantiateWithFlags(&exec, graph, 0), "instantiate"))
    return 2;
  CUresult rc = CUDA_SUCCESS;
  for (long i = 0; i < n && rc == CUDA_SUCCESS; ++i) {
    if (std::strcmp(entry, "cuLaunchKernel") == 0) {
      rc = cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, nullptr, nullptr);
    } else if (std::strcmp(entry, "cuGraphLaunch") == 0) {
      rc = cuGraphLaunch(exec, stream);
    } else if (std::strcmp(entry, "cuMemsetD32Async") == 0) {
      rc = cuMemsetD32Async(buffer, 0, 64, stream);
    } else if (std::strcmp(entry, "cuStreamWriteValue32_v2") == 0) {
      rc = cuStreamWriteValue32_v2(stream, buffer, 1, 0);
    } else if (std::strcmp(entry, "cuLaunchHostFunc") == 0) {
      rc = cuLaunchHostFunc(stream, HostNoop, nullptr);
    } else {
      std::fprintf(stderr, "launch_path_bench: unknown entry %s\n", entry);
      return 2;
    }
  }
  return Ok(rc, entry) ? 0 : 1;
}
