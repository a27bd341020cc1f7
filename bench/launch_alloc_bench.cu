// SPDX-License-Identifier: Apache-2.0
// Driver-API micro-benchmark of gpushare's overhead on the hot paths: an IN-PROCESS A/B.
//
//   LD_PRELOAD=libgpushare.so GPUSHARE_MEM_LIMIT=60Gi \
//     launch_alloc_bench [BLOCKS=1000] [LAUNCHES_PER_BLOCK=200] [ALLOC_BLOCKS=200] [PAIRS_PER_BLOCK=20]
//
// Separate processes with and without the library differ by ±10% from run to run, far more than
// the overhead to resolve (tens of ns on a ~3.4 µs launch). So one process, run under the
// library, calls three ways in interleaved blocks:
//   real   the driver's own cuLaunchKernel / cuMemAlloc_v2 / cuMemFree_v2, found WITHOUT dlsym
//          (gpushare's dlsym answers cu* names with its wrappers): libcuda's load bias and path
//          from dl_iterate_phdr, its dynamic symbol table read from the file on disk and from the
//          mapped PT_DYNAMIC (they must agree), address = bias + st_value (bench/elf_symbols.h);
//   dlsym  dlsym(dlopen("libcuda.so.1"), "cuLaunchKernel") etc.: gpushare's wrappers (how
//          PyTorch/Triton look the driver up);
//   gpa    cuGetProcAddress_v2("cuLaunchKernel", CUDA_VERSION): gpushare's answer, the wrappers
//          (how cudart reaches the driver).
// Round r runs one block of each arm, the arm order rotated by r. A launch block is
// LAUNCHES_PER_BLOCK launches of an empty kernel, timed as a whole (two clock reads), followed by
// an untimed cuStreamSynchronize; an alloc block is PAIRS_PER_BLOCK cuMemAlloc(1 MiB)+cuMemFree
// pairs. Per arm: the median over blocks of the per-block mean. Added cost of a wrapper =
// median(wrapper) - median(real), with a 95% bootstrap interval (resampling whole rounds, so the
// pairing is kept) and the median of the per-round paired differences. dlsym vs gpa is an A/A
// control when both routes give the same wrapper.
//
// Output: human-readable lines, "METRIC name value" and
//   "ROW <metric> <real> <wrapper> <added> <ci_lo> <ci_hi> <paired_median_diff>"
// lines read by bench/run.sh. Exit status 1 if the setup checks fail (library not loaded, real
// function not found or equal to the wrapper, ...).
//
// Build: nvcc -O2 -arch=sm_90 launch_alloc_bench.cu -o launch_alloc_bench -lcuda -ldl
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "elf_symbols.h"

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
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

const char* ErrName(CUresult r) {
  const char* n = nullptr;
  return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

#define CK(call)                                                                       \
  do {                                                                                 \
    CUresult r_ = (call);                                                              \
    if (r_ != CUDA_SUCCESS) {                                                          \
      std::fprintf(stderr, "%s failed: %s (line %d)\n", #call, ErrName(r_), __LINE__); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

struct Arm {
  const char* label;
  PFN_cuLaunchKernel_v4000 launch;
  PFN_cuMemAlloc_v3020 alloc;
  PFN_cuMemFree_v3020 free;
};

std::string Owner(const void* p, std::string* sym = nullptr) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  if (sym) *sym = info.dli_sname ? info.dli_sname : "(none)";
  return info.dli_fname;
}

std::string MappedGpushare() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t at = line.find("libgpushare");
    if (at != std::string::npos) {
      size_t slash = line.find('/');
      return slash != std::string::npos ? line.substr(slash) : line.substr(at);
    }
  }
  return "";
}

int g_setup_failures = 0;
void Setup(bool ok, const char* what, const std::string& detail) {
  std::printf("SETUP %s %s: %s\n", ok ? "PASS" : "FAIL", what, detail.c_str());
  if (!ok) ++g_setup_failures;
}

std::string Hex(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

// The driver's own definition of `name`, without dlsym.
void* RealDriverFunction(const elfsym::Module& cuda, const char* name, const void* wrapper) {
  elfsym::Symbol s;
  std::string how, err;
  if (!elfsym::Lookup(cuda, name, &s, &how, &err)) {
    Setup(false, name, "ELF lookup in libcuda failed: " + err);
    return nullptr;
  }
  void* p = reinterpret_cast<void*>(s.addr);
  std::string dsym;
  std::string owner = Owner(p, &dsym);
  const bool in_text = cuda.Contains(p, true);
  const bool is_func = s.type == STT_FUNC;
  const bool differs = p != wrapper;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "real %p (= bias %#lx + st_value %#lx, %s, %d def(s); dladdr: %s in %s) vs wrapper %p "
                "(dladdr: %s); in libcuda text=%s type=%s differs=%s",
                p, static_cast<unsigned long>(cuda.bias), static_cast<unsigned long>(s.value), how.c_str(),
                s.definitions, dsym.c_str(), elfsym::BaseName(owner.c_str()), wrapper,
                elfsym::BaseName(Owner(wrapper).c_str()), in_text ? "yes" : "NO",
                is_func ? "FUNC" : "NOT FUNC", differs ? "yes" : "NO");
  Setup(in_text && is_func && differs, name, buf);
  return in_text && is_func && differs ? p : nullptr;
}

// libc self-check of the ELF lookup on this machine: libc is not interposed, so the table lookup
// must give exactly what dlsym gives.
void ElfSelfCheck() {
  elfsym::Module libc;
  if (!elfsym::FindModule("libc.so", &libc)) {
    Setup(false, "elf_selfcheck", "libc not found by dl_iterate_phdr");
    return;
  }
  std::string detail;
  bool ok = true;
  for (const char* name : {"malloc", "free", "realpath"}) {
    elfsym::Symbol s;
    std::string how, err;
    void* want = dlsym(RTLD_DEFAULT, name);
    bool found = elfsym::Lookup(libc, name, &s, &how, &err);
    bool same = found && reinterpret_cast<void*>(s.addr) == want;
    ok = ok && same;
    char b[200];
    std::snprintf(b, sizeof b, "%s%s elf %#lx dlsym %p%s", detail.empty() ? "" : "; ", name,
                  static_cast<unsigned long>(s.addr), want, same ? "" : (" MISMATCH " + err).c_str());
    detail += b;
  }
  Setup(ok, "elf_selfcheck_libc", detail);
}

constexpr int kArms = 3;

struct Compare {
  double real_med, wrap_med, added, lo, hi, paired, plo, phi;
};

// Paired by round index: bootstrap resamples rounds.
Compare CompareArms(const std::vector<double>& real, const std::vector<double>& wrap) {
  Compare c{};
  c.real_med = Median(real);
  c.wrap_med = Median(wrap);
  c.added = c.wrap_med - c.real_med;
  std::vector<double> d(real.size());
  for (size_t i = 0; i < real.size(); ++i) d[i] = wrap[i] - real[i];
  c.paired = Median(d);
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<size_t> pick(0, real.size() - 1);
  std::vector<double> boots, pboots, ra(real.size()), wa(real.size()), da(real.size());
  const int kBoot = 2000;
  boots.reserve(kBoot);
  pboots.reserve(kBoot);
  for (int b = 0; b < kBoot; ++b) {
    for (size_t i = 0; i < real.size(); ++i) {
      size_t k = pick(rng);
      ra[i] = real[k];
      wa[i] = wrap[k];
      da[i] = d[k];
    }
    boots.push_back(Median(wa) - Median(ra));
    pboots.push_back(Median(da));
  }
  c.lo = Percentile(boots, 0.025);
  c.hi = Percentile(boots, 0.975);
  c.plo = Percentile(pboots, 0.025);
  c.phi = Percentile(pboots, 0.975);
  return c;
}

void Report(const char* metric, const char* what, const std::vector<double>& real,
            const std::vector<double>& wrap, const char* wrap_label) {
  Compare c = CompareArms(real, wrap);
  std::printf("%-22s real %9.1f ns | %-5s %9.1f ns | added %+7.1f ns (%+.2f%%), 95%% CI [%+.1f, %+.1f]; "
              "median paired diff %+.1f ns, 95%% CI [%+.1f, %+.1f]  [%s]\n",
              metric, c.real_med, wrap_label, c.wrap_med, c.added,
              c.real_med != 0 ? 100.0 * c.added / c.real_med : 0.0, c.lo, c.hi, c.paired, c.plo, c.phi, what);
  std::printf("ROW %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", metric, c.real_med, c.wrap_med, c.added, c.lo,
              c.hi, c.paired, c.plo, c.phi);
}

void Spread(const char* what, const Arm* arms, const std::vector<double>* v) {
  for (int a = 0; a < kArms; ++a)
    std::printf("  %-6s %-14s per-block mean ns: p10 %.1f  median %.1f  p90 %.1f  (n=%zu)\n", arms[a].label,
                what, Percentile(v[a], 0.1), Median(v[a]), Percentile(v[a], 0.9), v[a].size());
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const int blocks = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int per_block = argc > 2 ? std::atoi(argv[2]) : 200;
  const int alloc_blocks = argc > 3 ? std::atoi(argv[3]) : 200;
  const int pairs_per_block = argc > 4 ? std::atoi(argv[4]) : 20;
  if (blocks < 2 || per_block < 1 || alloc_blocks < 2 || pairs_per_block < 1) {
    std::fprintf(stderr, "usage: %s [BLOCKS>=2] [LAUNCHES_PER_BLOCK] [ALLOC_BLOCKS>=2] [PAIRS_PER_BLOCK]\n",
                 argv[0]);
    return 2;
  }

  // ---- setup checks ----------------------------------------------------------------------------
  const std::string gs = MappedGpushare();
  std::printf("LIBRARY %s: libgpushare %s; LD_PRELOAD=%s GPUSHARE_MEM_LIMIT=%s\n",
              gs.empty() ? "NOT LOADED" : "LOADED", gs.empty() ? "absent from /proc/self/maps" : gs.c_str(),
              getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)",
              getenv("GPUSHARE_MEM_LIMIT") ? getenv("GPUSHARE_MEM_LIMIT") : "(unset)");
  std::printf("METRIC preloaded %d\n", gs.empty() ? 0 : 1);
  Setup(!gs.empty(), "library_loaded", gs.empty() ? "libgpushare not in /proc/self/maps" : gs);
  ElfSelfCheck();

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

  // Wrappers: dlsym on libcuda's handle, and cuGetProcAddress_v2 (both answered by gpushare).
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) h = dlopen("libcuda.so.1", RTLD_NOW);
  if (h == nullptr) {
    std::fprintf(stderr, "dlopen(libcuda.so.1) failed: %s\n", dlerror());
    return 1;
  }
  auto by_dlsym = [&](const char* n) { return dlsym(h, n); };
  auto by_gpa = [&](const char* n) {
    void* p = nullptr;
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r = cuGetProcAddress_v2(n, &p, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &st);
    if (r != CUDA_SUCCESS || st != CU_GET_PROC_ADDRESS_SUCCESS) p = nullptr;
    return p;
  };
  struct Names {
    const char* symbol;  // exported name (dlsym, ELF)
    const char* api;     // cuGetProcAddress name
  } names[3] = {{"cuLaunchKernel", "cuLaunchKernel"}, {"cuMemAlloc_v2", "cuMemAlloc"}, {"cuMemFree_v2", "cuMemFree"}};
  void* wd[3];
  void* wg[3];
  for (int i = 0; i < 3; ++i) {
    wd[i] = by_dlsym(names[i].symbol);
    wg[i] = by_gpa(names[i].api);
    std::string od = Owner(wd[i]), og = Owner(wg[i]);
    bool ok = wd[i] && wg[i] && od.find("gpushare") != std::string::npos && og.find("gpushare") != std::string::npos;
    Setup(ok, (std::string("wrapper_") + names[i].symbol).c_str(),
          "dlsym " + Hex(wd[i]) + " (" + elfsym::BaseName(od.c_str()) + "), cuGetProcAddress_v2(" + names[i].api +
              ") " + Hex(wg[i]) + " (" + elfsym::BaseName(og.c_str()) + ")" +
              (wd[i] == wg[i] ? ", same function: dlsym vs gpa is an A/A control" : ""));
  }
  std::printf("linked symbols (PLT, interposed by LD_PRELOAD): cuLaunchKernel %p cuMemAlloc_v2 %p\n",
              reinterpret_cast<void*>(&cuLaunchKernel), reinterpret_cast<void*>(&cuMemAlloc_v2));

  elfsym::Module cuda;
  void* real[3] = {nullptr, nullptr, nullptr};
  if (!elfsym::FindModule("libcuda.so", &cuda)) {
    Setup(false, "libcuda_module", "libcuda.so* not found by dl_iterate_phdr");
  } else {
    std::printf("libcuda: %s bias %#lx mapped %#lx-%#lx (%zu PT_LOAD)\n", cuda.path.c_str(),
                static_cast<unsigned long>(cuda.bias), static_cast<unsigned long>(cuda.Lo()),
                static_cast<unsigned long>(cuda.Hi()), cuda.segments.size());
    for (int i = 0; i < 3; ++i) real[i] = RealDriverFunction(cuda, names[i].symbol, wd[i]);
  }
  std::printf("driver %d; CUDA_VERSION %d\n", drv, CUDA_VERSION);
  if (g_setup_failures > 0) {
    std::printf("SETUP FAILED (%d): no measurement\n", g_setup_failures);
    return 1;
  }

  const Arm arms[kArms] = {
      {"real", reinterpret_cast<PFN_cuLaunchKernel_v4000>(real[0]), reinterpret_cast<PFN_cuMemAlloc_v3020>(real[1]),
       reinterpret_cast<PFN_cuMemFree_v3020>(real[2])},
      {"dlsym", reinterpret_cast<PFN_cuLaunchKernel_v4000>(wd[0]), reinterpret_cast<PFN_cuMemAlloc_v3020>(wd[1]),
       reinterpret_cast<PFN_cuMemFree_v3020>(wd[2])},
      {"gpa", reinterpret_cast<PFN_cuLaunchKernel_v4000>(wg[0]), reinterpret_cast<PFN_cuMemAlloc_v3020>(wg[1]),
       reinterpret_cast<PFN_cuMemFree_v3020>(wg[2])},
  };

  // ---- launches --------------------------------------------------------------------------------
  auto launch_block = [&](const Arm& a, int n) {
    long long t0 = NowNs();
    for (int i = 0; i < n; ++i) {
      CUresult r = a.launch(fn, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr);
      if (__builtin_expect(r != CUDA_SUCCESS, 0)) {
        std::fprintf(stderr, "%s cuLaunchKernel failed: %s\n", a.label, ErrName(r));
        std::exit(1);
      }
    }
    long long t1 = NowNs();
    long long t2 = NowNs();
    CK(cuStreamSynchronize(s));
    long long t3 = NowNs();
    return std::make_pair(static_cast<double>(t1 - t0) / n, static_cast<double>(t3 - t2));
  };
  for (int w = 0; w < 5; ++w)
    for (const Arm& a : arms) launch_block(a, per_block);
  std::vector<double> lmean[kArms], lsync[kArms];
  long long tl0 = NowNs();
  for (int r = 0; r < blocks; ++r)
    for (int k = 0; k < kArms; ++k) {
      int a = (r + k) % kArms;
      auto [mean, sync] = launch_block(arms[a], per_block);
      lmean[a].push_back(mean);
      lsync[a].push_back(sync);
    }
  std::printf("launch: %d rounds x %d arms x %d launches of an empty kernel in %.2f s; sync after each "
              "block took median %.1f/%.1f/%.1f us (real/dlsym/gpa; large = the GPU fell behind)\n",
              blocks, kArms, per_block, (NowNs() - tl0) * 1e-9, Median(lsync[0]) / 1e3, Median(lsync[1]) / 1e3,
              Median(lsync[2]) / 1e3);
  Spread("cuLaunchKernel", arms, lmean);

  // ---- alloc + free ----------------------------------------------------------------------------
  const size_t sz = size_t{1} << 20;
  auto alloc_block = [&](const Arm& a, int n) {
    long long t0 = NowNs();
    for (int i = 0; i < n; ++i) {
      CUdeviceptr p = 0;
      CUresult ra = a.alloc(&p, sz);
      CUresult rf = ra == CUDA_SUCCESS ? a.free(p) : ra;
      if (__builtin_expect(ra != CUDA_SUCCESS || rf != CUDA_SUCCESS, 0)) {
        std::fprintf(stderr, "%s alloc/free failed: %s / %s\n", a.label, ErrName(ra), ErrName(rf));
        std::exit(1);
      }
    }
    return static_cast<double>(NowNs() - t0) / n;
  };
  for (int w = 0; w < 4; ++w)
    for (const Arm& a : arms) alloc_block(a, pairs_per_block);
  std::vector<double> amean[kArms];
  long long ta0 = NowNs();
  for (int r = 0; r < alloc_blocks; ++r)
    for (int k = 0; k < kArms; ++k) {
      int a = (r + k) % kArms;
      amean[a].push_back(alloc_block(arms[a], pairs_per_block));
    }
  std::printf("alloc: %d rounds x %d arms x %d cuMemAlloc(1 MiB)+cuMemFree pairs in %.2f s\n", alloc_blocks, kArms,
              pairs_per_block, (NowNs() - ta0) * 1e-9);
  Spread("alloc+free", arms, amean);

  // ---- results ---------------------------------------------------------------------------------
  std::printf("RESULTS (median of per-block means; added = wrapper - real; CI = bootstrap over rounds)\n");
  Report("launch_dlsym_ns", "cuLaunchKernel via dlsym(libcuda)", lmean[0], lmean[1], "dlsym");
  Report("launch_gpa_ns", "cuLaunchKernel via cuGetProcAddress_v2", lmean[0], lmean[2], "gpa");
  Report("alloc_free_dlsym_ns", "cuMemAlloc_v2+cuMemFree_v2 1 MiB via dlsym", amean[0], amean[1], "dlsym");
  Report("alloc_free_gpa_ns", "cuMemAlloc+cuMemFree 1 MiB via cuGetProcAddress_v2", amean[0], amean[2], "gpa");
  Compare aa = CompareArms(lmean[1], lmean[2]);
  std::printf("A/A-ish control, launch gpa - dlsym: %+.1f ns, 95%% CI [%+.1f, %+.1f]; paired %+.1f [%+.1f, %+.1f]%s\n",
              aa.added, aa.lo, aa.hi, aa.paired, aa.plo, aa.phi, wd[0] == wg[0] ? " (same function: pure noise)" : "");
  std::printf("METRIC launch_aa_ns %.2f\n", aa.added);

  CK(cuStreamSynchronize(s));
  cuStreamDestroy(s);
  cuModuleUnload(mod);
  cuDevicePrimaryCtxRelease(dev);
  return 0;
}
