// SPDX-License-Identifier: Apache-2.0
// GPU check of SM partitions (tests/gpu/sm_partition.sh), runtime API, unmodified: run under
// LD_PRELOAD=libgpushare.so with GPUSHARE_SM set or not.
//   sm_probe smid                 distinct %smid per launch path: legacy stream, a stream, 8
//                                 threads, cudaLaunchKernelEx, a cooperative launch sized from
//                                 multiProcessorCount (all blocks must be co-resident), a CUDA
//                                 graph (first launch and replay)
//   sm_probe spin START SECONDS   compute-bound FMA kernels from unix time START for SECONDS:
//                                 kernels/s (fixed work per kernel: 33792 blocks, which divides
//                                 evenly into waves on 8, 32, 64, 66 and 132 SMs)
// Prints "key value" lines.
#include <cuda_runtime.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#define RK(x)                                                                       \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_ != cudaSuccess) {                                                        \
      std::printf("error %s: %s (line %d)\n", #x, cudaGetErrorString(e_), __LINE__); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

__global__ void smid_kernel(unsigned* out, long long spin) {
  unsigned s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  const long long t0 = clock64();
  while (clock64() - t0 < spin) {
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// Every block records its SM, then waits (bounded) until all blocks have arrived: only a
// co-resident grid passes, as a grid.sync() would require.
__global__ void coresident_kernel(unsigned* out, unsigned* arrived, unsigned* failed) {
  unsigned s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  if (threadIdx.x == 0) {
    out[blockIdx.x] = s;
    atomicAdd(arrived, 1u);
    const long long t0 = clock64();
    while (atomicAdd(arrived, 0u) < gridDim.x) {
      if (clock64() - t0 > 4000000000ll) {  // ~2 s: not co-resident
        atomicAdd(failed, 1u);
        break;
      }
    }
  }
}

__global__ void fma_kernel(float* out, int iters) {
  float a = threadIdx.x, b = 1.0001f;
  for (int i = 0; i < iters; i++) {
    a = a * b + 0.5f;
    b = b * a - 0.25f;
  }
  if (a == 1234.5f) out[blockIdx.x] = a + b;  // never true: keeps the loop
}

constexpr int kBlocks = 132 * 16;

int Distinct(const unsigned* dev, int n) {
  std::vector<unsigned> h(n);
  RK(cudaMemcpy(h.data(), dev, n * sizeof(unsigned), cudaMemcpyDeviceToHost));
  return static_cast<int>(std::set<unsigned>(h.begin(), h.end()).size());
}

double Now() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return tv.tv_sec + tv.tv_usec / 1e6;
}

int Smid() {
  cudaDeviceProp prop;
  RK(cudaGetDeviceProperties(&prop, 0));
  int attr = 0;
  RK(cudaDeviceGetAttribute(&attr, cudaDevAttrMultiProcessorCount, 0));
  std::printf("multiProcessorCount %d\nattr_sm_count %d\n", prop.multiProcessorCount, attr);
  unsigned* d;
  RK(cudaMalloc(&d, kBlocks * sizeof(unsigned)));
  smid_kernel<<<kBlocks, 128>>>(d, 20000);
  RK(cudaDeviceSynchronize());
  std::printf("legacy_stream %d\n", Distinct(d, kBlocks));
  cudaStream_t s;
  RK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  smid_kernel<<<kBlocks, 128, 0, s>>>(d, 20000);
  RK(cudaStreamSynchronize(s));
  std::printf("new_stream %d\n", Distinct(d, kBlocks));
  // 8 threads, each with its own stream and buffer.
  std::vector<int> got(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      RK(cudaSetDevice(0));
      unsigned* mine;
      cudaStream_t st;
      RK(cudaMalloc(&mine, kBlocks * sizeof(unsigned)));
      RK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
      smid_kernel<<<kBlocks, 128, 0, st>>>(mine, 20000);
      RK(cudaStreamSynchronize(st));
      got[t] = Distinct(mine, kBlocks);
    });
  for (auto& th : threads) th.join();
  int lo = 1 << 30, hi = 0;
  for (int g : got) lo = std::min(lo, g), hi = std::max(hi, g);
  std::printf("threads_min %d\nthreads_max %d\n", lo, hi);
  // cudaLaunchKernelEx (the driver's cuLaunchKernelEx).
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(kBlocks);
  cfg.blockDim = dim3(128);
  cfg.stream = s;
  RK(cudaLaunchKernelEx(&cfg, smid_kernel, d, 20000ll));
  RK(cudaStreamSynchronize(s));
  std::printf("launch_ex %d\n", Distinct(d, kBlocks));
  // Cooperative: sized from what the device reports, as programs do.
  int per_sm = 0;
  RK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, coresident_kernel, 256, 0));
  const int grid = per_sm * prop.multiProcessorCount;
  unsigned *cd, *counters;
  RK(cudaMalloc(&cd, grid * sizeof(unsigned)));
  RK(cudaMalloc(&counters, 2 * sizeof(unsigned)));
  RK(cudaMemset(counters, 0, 2 * sizeof(unsigned)));
  unsigned* arrived = counters;
  unsigned* failed = counters + 1;
  void* args[] = {&cd, &arrived, &failed};
  const cudaError_t crc = cudaLaunchCooperativeKernel((void*)coresident_kernel, grid, 256, args, 0, s);
  RK(cudaStreamSynchronize(s));
  unsigned hc[2] = {};
  RK(cudaMemcpy(hc, counters, sizeof hc, cudaMemcpyDeviceToHost));
  std::printf("cooperative_rc %d\ncooperative_grid %d\ncooperative_coresident %d\ncooperative %d\n", crc, grid,
              crc == cudaSuccess && hc[0] == static_cast<unsigned>(grid) && hc[1] == 0, Distinct(cd, grid));
  // A CUDA graph: the mask is baked in at the first launch; the replay fires no callback.
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  RK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  smid_kernel<<<kBlocks, 128, 0, s>>>(d, 20000);
  RK(cudaStreamEndCapture(s, &graph));
  RK(cudaGraphInstantiate(&exec, graph, 0));
  RK(cudaGraphLaunch(exec, s));
  RK(cudaStreamSynchronize(s));
  std::printf("graph %d\n", Distinct(d, kBlocks));
  RK(cudaMemset(d, 0, kBlocks * sizeof(unsigned)));
  RK(cudaGraphLaunch(exec, s));
  RK(cudaStreamSynchronize(s));
  std::printf("graph_replay %d\n", Distinct(d, kBlocks));
  return 0;
}

int Spin(double start, double seconds) {
  constexpr int kSpinBlocks = 33792;  // 2^10 * 33
  float* o;
  RK(cudaMalloc(&o, kSpinBlocks * sizeof(float)));
  fma_kernel<<<kSpinBlocks, 256>>>(o, 200);
  RK(cudaDeviceSynchronize());
  while (Now() < start) usleep(2000);
  const double t0 = Now();
  long k = 0;
  double el = 0;
  while (el < seconds) {
    for (int i = 0; i < 2; i++) fma_kernel<<<kSpinBlocks, 256>>>(o, 2000);
    RK(cudaDeviceSynchronize());
    k += 2;
    el = Now() - t0;
  }
  std::printf("kernels_per_s %.3f\n", k / el);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  RK(cudaSetDevice(0));
  RK(cudaFree(0));
  if (std::strcmp(argv[1], "smid") == 0) return Smid();
  if (std::strcmp(argv[1], "spin") == 0 && argc >= 4) return Spin(std::atof(argv[2]), std::atof(argv[3]));
  return 2;
}
