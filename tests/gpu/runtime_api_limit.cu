// SPDX-License-Identifier: Apache-2.0
// GPU check of gpushare's memory limit through the CUDA runtime API.
//
// Usage: runtime_api_limit LIMIT_BYTES
//   expects cudaMemGetInfo / cudaGetDeviceProperties totals == LIMIT_BYTES, cudaMalloc in 256 MiB
//   steps to stop with cudaErrorMemoryAllocation at or below the limit, cudaMallocAsync and
//   cudaMallocManaged to fail past the limit and work under it.
//
// Built twice by tests/gpu/run.sh: -cudart shared and -cudart static (static cudart finds the
// driver with dlopen/dlsym + cuGetProcAddress, which gpushare must intercept as well).
//
// Prints "CHECK PASS|FAIL name: detail" lines and a final "SUMMARY: ..." line; exits 0 iff every
// expectation held.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kStep = 256 * kMiB;

int g_failed = 0;
std::string g_failed_names;

void Check(bool ok, const char* name, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void Check(bool ok, const char* name, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::printf("CHECK %s %s: %s\n", ok ? "PASS" : "FAIL", name, buf);
  std::fflush(stdout);
  if (!ok) {
    ++g_failed;
    if (!g_failed_names.empty()) g_failed_names += ",";
    g_failed_names += name;
  }
}

double MiB(size_t b) { return static_cast<double>(b) / static_cast<double>(kMiB); }

std::string Provider(const char* sym) {
  void* p = dlsym(RTLD_DEFAULT, sym);
  if (p == nullptr) return "(unresolved)";
  Dl_info info{};
  if (dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  return info.dli_fname;
}

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LIMIT_BYTES\n", argv[0]);
    return 2;
  }
  const size_t limit = std::strtoull(argv[1], nullptr, 10);
  int rtv = 0, drv = 0;
  cudaRuntimeGetVersion(&rtv);
  cudaDriverGetVersion(&drv);
  std::printf("runtime %d driver %d; expected limit %zu (%.1f MiB)\n", rtv, drv, limit, MiB(limit));
  std::printf("cuMemAlloc_v2 resolves to: %s\n", Provider("cuMemAlloc_v2").c_str());

  cudaError_t e = cudaSetDevice(0);
  if (e == cudaSuccess) e = cudaFree(nullptr);  // create the primary context
  if (e != cudaSuccess) {
    Check(false, "init", "%s", cudaGetErrorName(e));
    std::printf("SUMMARY: init failed (%s) failed=%s\n", cudaGetErrorName(e),
                g_failed_names.c_str());
    return 2;
  }

  size_t free0 = 0, total0 = 0;
  e = cudaMemGetInfo(&free0, &total0);
  std::printf("cudaMemGetInfo: free=%zu (%.1f MiB) total=%zu (%.1f MiB) [%s]\n", free0,
              MiB(free0), total0, MiB(total0), cudaGetErrorName(e));
  Check(e == cudaSuccess && total0 == limit, "meminfo_total", "total=%zu limit=%zu", total0, limit);
  Check(e == cudaSuccess && free0 <= limit && free0 + 16 * kMiB <= total0, "meminfo_free",
        "free=%.1f MiB, limit-free=%.1f MiB (context overhead counted)", MiB(free0),
        MiB(limit > free0 ? limit - free0 : 0));
  cudaDeviceProp prop{};
  e = cudaGetDeviceProperties(&prop, 0);
  std::printf("cudaGetDeviceProperties: %s totalGlobalMem=%zu (%.1f MiB)\n", prop.name,
              prop.totalGlobalMem, MiB(prop.totalGlobalMem));
  Check(e == cudaSuccess && prop.totalGlobalMem == limit, "props_total_global_mem",
        "totalGlobalMem=%zu", prop.totalGlobalMem);

  // ---- cudaMalloc in 256 MiB steps ------------------------------------------------------------
  std::vector<void*> ptrs;
  size_t got = 0;
  cudaError_t stop = cudaSuccess;
  const size_t max_steps = (limit + 4096 * kMiB) / kStep;
  for (size_t i = 0; i < max_steps; ++i) {
    void* p = nullptr;
    stop = cudaMalloc(&p, kStep);
    if (stop != cudaSuccess) break;
    ptrs.push_back(p);
    got += kStep;
  }
  cudaGetLastError();  // clear the (non-sticky) allocation error
  std::printf("cudaMalloc 256 MiB steps: got %zu bytes (%.1f MiB), stopped with %s\n", got,
              MiB(got), cudaGetErrorName(stop));
  Check(stop == cudaErrorMemoryAllocation, "malloc_steps_oom", "stopped with %s",
        cudaGetErrorName(stop));
  Check(got <= limit, "malloc_steps_le_limit", "got=%.1f MiB", MiB(got));
  Check(got + kStep + 64 * kMiB >= free0, "malloc_steps_reach_free",
        "got=%.1f MiB, free at start=%.1f MiB", MiB(got), MiB(free0));
  for (void* p : ptrs) cudaFree(p);
  ptrs.clear();
  const size_t over = AlignUp(limit + kStep, 2 * kMiB);

  // ---- cudaMallocAsync ------------------------------------------------------------------------
  {
    cudaStream_t s = nullptr;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    void* p = nullptr;
    e = cudaMallocAsync(&p, kStep, s);
    if (e == cudaSuccess) {
      cudaMemsetAsync(p, 1, kStep, s);
      cudaFreeAsync(p, s);
    }
    cudaError_t ey = cudaStreamSynchronize(s);
    Check(e == cudaSuccess && ey == cudaSuccess, "malloc_async_under", "256 MiB: %s (sync %s)",
          cudaGetErrorName(e), cudaGetErrorName(ey));
    p = nullptr;
    e = cudaMallocAsync(&p, over, s);
    if (e == cudaSuccess) cudaFreeAsync(p, s);
    cudaGetLastError();
    ey = cudaStreamSynchronize(s);
    Check(e == cudaErrorMemoryAllocation, "malloc_async_over", "%.1f MiB: %s (sync %s)", MiB(over),
          cudaGetErrorName(e), cudaGetErrorName(ey));
    cudaGetLastError();
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
    cudaStreamDestroy(s);
  }

  // ---- cudaMallocManaged ----------------------------------------------------------------------
  {
    void* p = nullptr;
    e = cudaMallocManaged(&p, kStep);
    if (e == cudaSuccess) {
      cudaMemset(p, 1, kStep);
      cudaDeviceSynchronize();
      cudaFree(p);
    }
    Check(e == cudaSuccess, "managed_under", "256 MiB: %s", cudaGetErrorName(e));
    p = nullptr;
    e = cudaMallocManaged(&p, over);
    if (e == cudaSuccess) cudaFree(p);
    cudaGetLastError();
    Check(e == cudaErrorMemoryAllocation, "managed_over", "%.1f MiB: %s", MiB(over),
          cudaGetErrorName(e));
  }

  // ---- still usable? --------------------------------------------------------------------------
  size_t free_end = 0, total_end = 0;
  cudaMemGetInfo(&free_end, &total_end);
  void* p = nullptr;
  e = cudaMalloc(&p, 1024 * kMiB > free_end ? free_end / 2 : 1024 * kMiB);
  if (e == cudaSuccess) {
    cudaMemset(p, 0, kMiB);
    e = cudaDeviceSynchronize();
    cudaFree(p);
  }
  Check(e == cudaSuccess, "malloc_after_oom", "%s (free %.1f MiB)", cudaGetErrorName(e),
        MiB(free_end));
  Check(free_end + 16 * kMiB >= free0, "free_at_end", "free=%.1f MiB (start %.1f MiB)",
        MiB(free_end), MiB(free0));

  std::printf("SUMMARY: total=%.1fMiB props_total=%.1fMiB free0=%.1fMiB got=%.1fMiB stop=%s%s%s\n",
              MiB(total0), MiB(prop.totalGlobalMem), MiB(free0), MiB(got),
              cudaGetErrorName(stop), g_failed ? " failed=" : "", g_failed_names.c_str());
  return g_failed == 0 ? 0 : 1;
}
