// Driver-API micro-benchmark for gpushare's overhead on the hot paths.
//
//   launch_alloc_bench [LAUNCHES=200000] [ALLOC_PAIRS=2000]
//
// Measures, for functions reached two ways -- "direct" (the exported symbols, linked with -lcuda,
// which LD_PRELOAD interposes) and "gpa" (pointers from cuGetProcAddress_v2, the way cudart and
// PyTorch reach the driver):
//   * cuLaunchKernel of an empty kernel: each launch timed on its own (median ns) and in batches
//     (median over batches of batch time / launches). The stream is synchronized between batches
//     (outside the timed region) so the launch queue never fills.
//   * cuMemAlloc(1 MiB) + cuMemFree pairs: median ns per pair.
// Output: "METRIC <name> <value>" lines (read by bench/run.sh) plus human-readable lines.
//
// Build: nvcc -O2 -arch=sm_90 launch_alloc_bench.cu -o launch_alloc_bench -lcuda -ldl
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// An empty kernel in PTX, JIT-compiled by the driver: no runtime API involved at all.
const char kPtx[] = R"(
.version 7.8
.target sm_90
.address_size 64
.visible .entry empty_kernel()
{
  ret;
}
)";

inline long long NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  return v[i];
}

const char* ErrName(CUresult r) {
  const char* n = nullptr;
  return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

#define CK(call)                                                                    \
  do {                                                                              \
    CUresult r_ = (call);                                                           \
    if (r_ != CUDA_SUCCESS) {                                                       \
      std::fprintf(stderr, "%s failed: %s (line %d)\n", #call, ErrName(r_), __LINE__); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

struct Api {
  const char* label;
  PFN_cuLaunchKernel_v4000 launch;
  PFN_cuMemAlloc_v3020 alloc;
  PFN_cuMemFree_v3020 free;
};

constexpr unsigned kBatch = 200;  // launches between synchronizations

void BenchLaunch(const Api& api, CUfunction fn, CUstream s, unsigned launches) {
  // Warm-up.
  for (int i = 0; i < 5000; ++i) CK(api.launch(fn, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr));
  CK(cuStreamSynchronize(s));

  // Each launch timed on its own.
  std::vector<double> each;
  each.reserve(launches);
  for (unsigned done = 0; done < launches;) {
    for (unsigned i = 0; i < kBatch && done < launches; ++i, ++done) {
      long long t0 = NowNs();
      CUresult r = api.launch(fn, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr);
      long long t1 = NowNs();
      if (r != CUDA_SUCCESS) {
        std::fprintf(stderr, "cuLaunchKernel failed: %s\n", ErrName(r));
        std::exit(1);
      }
      each.push_back(static_cast<double>(t1 - t0));
    }
    CK(cuStreamSynchronize(s));
  }

  // Batches: per-launch time with the clock read only twice per batch.
  std::vector<double> batch;
  for (unsigned done = 0; done < launches; done += kBatch) {
    long long t0 = NowNs();
    for (unsigned i = 0; i < kBatch; ++i) api.launch(fn, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr);
    long long t1 = NowNs();
    batch.push_back(static_cast<double>(t1 - t0) / kBatch);
    CK(cuStreamSynchronize(s));
  }

  double med = Median(each), p90 = Percentile(each, 0.9), bmed = Median(batch);
  std::printf("%-6s cuLaunchKernel: median %.1f ns/launch (p90 %.1f) over %u single-timed launches; "
              "batched median %.1f ns/launch\n",
              api.label, med, p90, launches, bmed);
  std::printf("METRIC launch_%s_ns %.2f\n", api.label, med);
  std::printf("METRIC launch_%s_batch_ns %.2f\n", api.label, bmed);
}

void BenchAlloc(const Api& api, unsigned pairs) {
  const size_t sz = size_t{1} << 20;
  for (int i = 0; i < 200; ++i) {
    CUdeviceptr p = 0;
    CK(api.alloc(&p, sz));
    CK(api.free(p));
  }
  std::vector<double> t;
  t.reserve(pairs);
  for (unsigned i = 0; i < pairs; ++i) {
    CUdeviceptr p = 0;
    long long t0 = NowNs();
    CUresult ra = api.alloc(&p, sz);
    CUresult rf = ra == CUDA_SUCCESS ? api.free(p) : ra;
    long long t1 = NowNs();
    if (ra != CUDA_SUCCESS || rf != CUDA_SUCCESS) {
      std::fprintf(stderr, "alloc/free failed: %s / %s\n", ErrName(ra), ErrName(rf));
      std::exit(1);
    }
    t.push_back(static_cast<double>(t1 - t0));
  }
  double med = Median(t);
  std::printf("%-6s cuMemAlloc(1 MiB)+cuMemFree: median %.1f ns/pair (p90 %.1f) over %u pairs\n",
              api.label, med, Percentile(t, 0.9), pairs);
  std::printf("METRIC alloc_free_%s_ns %.2f\n", api.label, med);
}

template <typename T>
T Gpa(const char* name, int version) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = cuGetProcAddress_v2(name, &p, version, CU_GET_PROC_ADDRESS_DEFAULT, &st);
  if (r != CUDA_SUCCESS || p == nullptr || st != CU_GET_PROC_ADDRESS_SUCCESS) {
    std::fprintf(stderr, "cuGetProcAddress_v2(%s, %d) failed: %s status %d\n", name, version,
                 ErrName(r), static_cast<int>(st));
    std::exit(1);
  }
  return reinterpret_cast<T>(p);
}

std::string Owner(const void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  return info.dli_fname;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const unsigned launches = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
  const unsigned pairs = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 2000;

  CK(cuInit(0));
  int drv = 0;
  CK(cuDriverGetVersion(&drv));
  CUdevice dev = 0;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx = nullptr;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));

  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
  CK(cuModuleLoadData(&mod, kPtx));
  CK(cuModuleGetFunction(&fn, mod, "empty_kernel"));
  CUstream s = nullptr;
  CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

  Api direct{"direct", &cuLaunchKernel, &cuMemAlloc_v2, &cuMemFree_v2};
  // cudart asks for the version it was built against; use the header's.
  Api gpa{"gpa", Gpa<PFN_cuLaunchKernel_v4000>("cuLaunchKernel", CUDA_VERSION),
          Gpa<PFN_cuMemAlloc_v3020>("cuMemAlloc", CUDA_VERSION),
          Gpa<PFN_cuMemFree_v3020>("cuMemFree", CUDA_VERSION)};

  void* sym_alloc = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
  std::string owner = Owner(sym_alloc);
  bool preloaded = owner.find("gpushare") != std::string::npos;
  std::printf("driver %d; dlsym(cuMemAlloc_v2) from %s; gpa cuLaunchKernel from %s\n", drv,
              owner.c_str(), Owner(reinterpret_cast<void*>(gpa.launch)).c_str());
  std::printf("METRIC preloaded %d\n", preloaded ? 1 : 0);

  for (const Api* api : {&direct, &gpa}) BenchLaunch(*api, fn, s, launches);
  for (const Api* api : {&direct, &gpa}) BenchAlloc(*api, pairs);

  CK(cuStreamSynchronize(s));
  cuStreamDestroy(s);
  cuModuleUnload(mod);
  cuDevicePrimaryCtxRelease(dev);
  return 0;
}
