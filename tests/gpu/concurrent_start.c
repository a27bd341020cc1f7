// SPDX-License-Identifier: Apache-2.0
// One of many processes started at once (tests/gpu/concurrent_starts.sh): waits for GO_FILE to
// appear, then cuInit, the primary context, a 64 MiB allocation (written once), and prints
//   READY pid=P init_ms=.. ctx_ms=.. alloc_ms=.. free=.. total=..
// or FAIL pid=P step=STEP rc=N name=CUDA_ERROR_..., then holds everything until RELEASE_FILE
// appears (so that all are alive together when the ledger is read) and exits 0 (1 on failure).
//   concurrent_start GO_FILE RELEASE_FILE [BYTES]
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void wait_for(const char* path) {
  while (access(path, F_OK) != 0) usleep(2000);
}

static int fail(const char* step, CUresult rc) {
  const char* name = "?";
  cuGetErrorName(rc, &name);
  printf("FAIL pid=%d step=%s rc=%d name=%s\n", (int)getpid(), step, (int)rc, name);
  fflush(stdout);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: concurrent_start GO_FILE RELEASE_FILE [BYTES]\n");
    return 2;
  }
  const size_t bytes = argc > 3 ? strtoull(argv[3], NULL, 10) : (64u << 20);
  wait_for(argv[1]);
  const double t0 = now_ms();
  CUresult rc = cuInit(0);
  if (rc != CUDA_SUCCESS) return fail("cuInit", rc);
  const double t1 = now_ms();
  CUdevice dev = 0;
  rc = cuDeviceGet(&dev, 0);
  if (rc != CUDA_SUCCESS) return fail("cuDeviceGet", rc);
  CUcontext ctx = NULL;
  rc = cuDevicePrimaryCtxRetain(&ctx, dev);
  if (rc != CUDA_SUCCESS) return fail("cuDevicePrimaryCtxRetain", rc);
  rc = cuCtxSetCurrent(ctx);
  if (rc != CUDA_SUCCESS) return fail("cuCtxSetCurrent", rc);
  const double t2 = now_ms();
  CUdeviceptr p = 0;
  rc = cuMemAlloc(&p, bytes);
  if (rc != CUDA_SUCCESS) return fail("cuMemAlloc", rc);
  rc = cuMemsetD8(p, 0x5a, bytes);
  if (rc == CUDA_SUCCESS) rc = cuCtxSynchronize();
  if (rc != CUDA_SUCCESS) return fail("cuMemsetD8", rc);
  const double t3 = now_ms();
  size_t free_b = 0, total_b = 0;
  cuMemGetInfo(&free_b, &total_b);
  printf("READY pid=%d init_ms=%.1f ctx_ms=%.1f alloc_ms=%.1f free=%zu total=%zu\n", (int)getpid(), t1 - t0,
         t2 - t1, t3 - t2, free_b, total_b);
  fflush(stdout);
  wait_for(argv[2]);
  cuMemFree(p);
  cuDevicePrimaryCtxRelease(dev);
  return 0;
}
