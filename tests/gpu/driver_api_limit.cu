// SPDX-License-Identifier: Apache-2.0
// GPU check of gpushare's memory limit through the CUDA driver API.
//
// Usage:
//   driver_api_limit LIMIT_BYTES        expect total == LIMIT_BYTES (limit below physical memory),
//                                       every allocation API to fail with
//                                       CUDA_ERROR_OUT_OF_MEMORY past the limit and work under it
//   driver_api_limit --expect-error     expect some CUDA call (cuInit, context creation or the
//                                       first allocation) to fail (malformed GPUSHARE_MEM_LIMIT)
//
// Prints one "CHECK PASS|FAIL name: detail" line per expectation and a final "SUMMARY: ..." line
// with the key figures. Exits 0 iff every expectation held. Never aborts half-way on a failed
// check; only a failure to set up CUDA at all ends it early (exit 2).
//
// Build: nvcc -O2 -arch=sm_90 driver_api_limit.cu -o driver_api_limit -lcuda -ldl
#include <cuda.h>
#include <dlfcn.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kStep = 256 * kMiB;

int g_failed = 0;
std::string g_failed_names;

const char* ErrName(CUresult r) {
  const char* name = nullptr;
  if (cuGetErrorName(r, &name) != CUDA_SUCCESS || name == nullptr) return "UNKNOWN_CUresult";
  return name;
}

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

// Which shared object answers a global lookup of `sym` (shows whether the preload is active).
std::string Provider(const char* sym) {
  void* p = dlsym(RTLD_DEFAULT, sym);
  if (p == nullptr) return "(unresolved)";
  Dl_info info{};
  if (dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  return info.dli_fname;
}

bool MemInfo(size_t* free_b, size_t* total_b) {
  CUresult r = cuMemGetInfo(free_b, total_b);
  if (r != CUDA_SUCCESS) {
    std::printf("cuMemGetInfo failed: %s\n", ErrName(r));
    *free_b = *total_b = 0;
    return false;
  }
  return true;
}

size_t AlignDown(size_t v, size_t a) { return v / a * a; }
size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Holds cuMemAlloc memory so that only about `headroom` bytes of the limit stay free.
struct Filler {
  std::vector<CUdeviceptr> ptrs;
  size_t bytes = 0;
  bool ok = false;
  explicit Filler(size_t headroom) {
    size_t f = 0, t = 0;
    if (!MemInfo(&f, &t) || f <= headroom + 2 * kMiB) return;
    size_t want = AlignDown(f - headroom, 2 * kMiB);
    // Several pieces: one huge request is not what we are testing here.
    while (bytes < want) {
      size_t piece = want - bytes < kStep ? want - bytes : kStep;
      CUdeviceptr p = 0;
      CUresult r = cuMemAlloc(&p, piece);
      if (r != CUDA_SUCCESS) {
        std::printf("filler: cuMemAlloc(%zu) failed after %.1f MiB: %s\n", piece, MiB(bytes),
                    ErrName(r));
        return;
      }
      ptrs.push_back(p);
      bytes += piece;
    }
    ok = true;
  }
  ~Filler() {
    for (CUdeviceptr p : ptrs) cuMemFree(p);
  }
};

int ExpectErrorMode() {
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) {
    Check(true, "bad_env_rejected", "cuInit failed: %s", ErrName(r));
    std::printf("SUMMARY: rejected at cuInit (%s)\n", ErrName(r));
    return 0;
  }
  CUdevice dev = 0;
  r = cuDeviceGet(&dev, 0);
  CUcontext ctx = nullptr;
  if (r == CUDA_SUCCESS) r = cuDevicePrimaryCtxRetain(&ctx, dev);
  if (r == CUDA_SUCCESS) r = cuCtxSetCurrent(ctx);
  if (r != CUDA_SUCCESS) {
    Check(true, "bad_env_rejected", "context setup failed: %s", ErrName(r));
    std::printf("SUMMARY: rejected at context setup (%s)\n", ErrName(r));
    return 0;
  }
  CUdeviceptr p = 0;
  r = cuMemAlloc(&p, kMiB);
  if (r != CUDA_SUCCESS) {
    Check(true, "bad_env_rejected", "cuMemAlloc(1 MiB) failed: %s", ErrName(r));
    std::printf("SUMMARY: rejected at cuMemAlloc (%s)\n", ErrName(r));
    return 0;
  }
  cuMemFree(p);
  Check(false, "bad_env_rejected", "cuInit, context and cuMemAlloc all succeeded");
  std::printf("SUMMARY: NOT rejected\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LIMIT_BYTES | --expect-error\n", argv[0]);
    return 2;
  }
  std::printf("cuMemAlloc_v2 resolves to: %s\n", Provider("cuMemAlloc_v2").c_str());
  std::printf("GPUSHARE_MEM_LIMIT=%s GPUSHARE_MEM_LIMIT_0=%s\n",
              std::getenv("GPUSHARE_MEM_LIMIT") ? std::getenv("GPUSHARE_MEM_LIMIT") : "(unset)",
              std::getenv("GPUSHARE_MEM_LIMIT_0") ? std::getenv("GPUSHARE_MEM_LIMIT_0") : "(unset)");
  if (std::strcmp(argv[1], "--expect-error") == 0) return ExpectErrorMode();

  const size_t limit = std::strtoull(argv[1], nullptr, 10);
  std::printf("expected limit: %zu bytes (%.1f MiB)\n", limit, MiB(limit));

  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) {
    Check(false, "cuInit", "%s", ErrName(r));
    std::printf("SUMMARY: cuInit failed (%s) failed=%s\n", ErrName(r), g_failed_names.c_str());
    return 2;
  }
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  r = cuDeviceGet(&dev, 0);
  if (r == CUDA_SUCCESS) r = cuDevicePrimaryCtxRetain(&ctx, dev);
  if (r == CUDA_SUCCESS) r = cuCtxSetCurrent(ctx);
  if (r != CUDA_SUCCESS) {
    Check(false, "context", "%s", ErrName(r));
    std::printf("SUMMARY: context setup failed (%s) failed=%s\n", ErrName(r),
                g_failed_names.c_str());
    return 2;
  }
  Check(Provider("cuMemAlloc_v2").find("gpushare") != std::string::npos, "preload_active",
        "cuMemAlloc_v2 from %s", Provider("cuMemAlloc_v2").c_str());

  // ---- reported sizes -------------------------------------------------------------------------
  size_t free0 = 0, total0 = 0;
  MemInfo(&free0, &total0);
  size_t dev_total = 0;
  CUresult rt = cuDeviceTotalMem(&dev_total, dev);
  std::printf("cuMemGetInfo: free=%zu (%.1f MiB) total=%zu (%.1f MiB)\n", free0, MiB(free0),
              total0, MiB(total0));
  std::printf("cuDeviceTotalMem: %zu (%.1f MiB) [%s]\n", dev_total, MiB(dev_total), ErrName(rt));
  Check(total0 == limit, "meminfo_total", "total=%zu limit=%zu", total0, limit);
  Check(free0 <= limit && free0 <= total0, "meminfo_free_le_limit", "free=%zu limit=%zu", free0,
        limit);
  Check(rt == CUDA_SUCCESS && dev_total == limit, "device_total_mem", "cuDeviceTotalMem=%zu (%s)",
        dev_total, ErrName(rt));
  Check(free0 + 16 * kMiB <= limit, "ctx_overhead_counted",
        "limit-free=%.1f MiB at start (context overhead, expected >= 16 MiB)",
        MiB(limit > free0 ? limit - free0 : 0));

  // ---- cuMemAlloc in 256 MiB steps until failure ----------------------------------------------
  std::vector<CUdeviceptr> ptrs;
  size_t got = 0;
  CUresult stop = CUDA_SUCCESS;
  const size_t max_steps = (limit + 4096 * kMiB) / kStep;  // don't eat the whole GPU if unlimited
  for (size_t i = 0; i < max_steps; ++i) {
    CUdeviceptr p = 0;
    stop = cuMemAlloc(&p, kStep);
    if (stop != CUDA_SUCCESS) break;
    ptrs.push_back(p);
    got += kStep;
  }
  size_t free_peak = 0, total_peak = 0;
  MemInfo(&free_peak, &total_peak);
  std::printf("cuMemAlloc 256 MiB steps: got %zu bytes (%.1f MiB, %zu steps), stopped with %s; "
              "free at peak=%.1f MiB\n",
              got, MiB(got), ptrs.size(), ErrName(stop), MiB(free_peak));
  Check(stop == CUDA_ERROR_OUT_OF_MEMORY, "alloc_steps_oom", "stopped with %s", ErrName(stop));
  Check(got <= limit, "alloc_steps_le_limit", "got=%.1f MiB limit=%.1f MiB", MiB(got), MiB(limit));
  Check(got + kStep + 64 * kMiB >= free0, "alloc_steps_reach_free",
        "got=%.1f MiB, free at start=%.1f MiB (expect got >= free-320 MiB)", MiB(got), MiB(free0));
  Check(free_peak < kStep + 64 * kMiB, "meminfo_free_at_peak", "free=%.1f MiB", MiB(free_peak));
  for (CUdeviceptr p : ptrs) cuMemFree(p);
  ptrs.clear();
  size_t free1 = 0, total1 = 0;
  MemInfo(&free1, &total1);
  Check(free1 + 8 * kMiB >= free0, "free_returns", "free after freeing all=%.1f MiB (start %.1f)",
        MiB(free1), MiB(free0));
  const size_t over = AlignUp(limit + kStep, 2 * kMiB);  // one request past the whole limit

  // ---- cuMemAllocPitch ------------------------------------------------------------------------
  {
    CUdeviceptr p = 0;
    size_t pitch = 0;
    r = cuMemAllocPitch(&p, &pitch, kMiB, 256, 16);
    Check(r == CUDA_SUCCESS, "pitch_under", "256 MiB: %s", ErrName(r));
    if (r == CUDA_SUCCESS) cuMemFree(p);
    p = 0;
    r = cuMemAllocPitch(&p, &pitch, kMiB, over / kMiB, 16);
    Check(r == CUDA_ERROR_OUT_OF_MEMORY, "pitch_over", "%.1f MiB: %s", MiB(over), ErrName(r));
    if (r == CUDA_SUCCESS) cuMemFree(p);
    Filler fill(kStep);
    if (fill.ok) {
      p = 0;
      r = cuMemAllocPitch(&p, &pitch, kMiB, 512, 16);
      Check(r == CUDA_ERROR_OUT_OF_MEMORY, "pitch_over_with_filler",
            "512 MiB with only ~256 MiB left: %s", ErrName(r));
      if (r == CUDA_SUCCESS) cuMemFree(p);
    } else {
      Check(false, "pitch_over_with_filler", "could not place filler");
    }
  }

  // ---- cuMemAllocManaged ----------------------------------------------------------------------
  {
    CUdeviceptr p = 0;
    r = cuMemAllocManaged(&p, kStep, CU_MEM_ATTACH_GLOBAL);
    if (r == CUDA_SUCCESS) {
      CUresult rs = cuMemsetD8(p, 1, kStep);
      CUresult ry = cuCtxSynchronize();
      std::printf("managed memset/sync: %s / %s\n", ErrName(rs), ErrName(ry));
      cuMemFree(p);
    }
    Check(r == CUDA_SUCCESS, "managed_under", "256 MiB: %s", ErrName(r));
    p = 0;
    r = cuMemAllocManaged(&p, over, CU_MEM_ATTACH_GLOBAL);
    Check(r == CUDA_ERROR_OUT_OF_MEMORY, "managed_over", "%.1f MiB: %s", MiB(over), ErrName(r));
    if (r == CUDA_SUCCESS) cuMemFree(p);
    Filler fill(kStep);
    if (fill.ok) {
      p = 0;
      r = cuMemAllocManaged(&p, 512 * kMiB, CU_MEM_ATTACH_GLOBAL);
      Check(r == CUDA_ERROR_OUT_OF_MEMORY, "managed_over_with_filler",
            "512 MiB with only ~256 MiB left: %s", ErrName(r));
      if (r == CUDA_SUCCESS) cuMemFree(p);
    } else {
      Check(false, "managed_over_with_filler", "could not place filler");
    }
  }

  // ---- cuMemAllocAsync (device default pool) --------------------------------------------------
  {
    CUstream s = nullptr;
    r = cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    if (r != CUDA_SUCCESS) {
      Check(false, "async_stream", "cuStreamCreate: %s", ErrName(r));
    } else {
      CUdeviceptr p = 0;
      r = cuMemAllocAsync(&p, kStep, s);
      if (r == CUDA_SUCCESS) {
        cuMemsetD8Async(p, 1, kStep, s);
        cuMemFreeAsync(p, s);
      }
      CUresult ry = cuStreamSynchronize(s);
      Check(r == CUDA_SUCCESS && ry == CUDA_SUCCESS, "async_under", "256 MiB: %s (sync %s)",
            ErrName(r), ErrName(ry));
      p = 0;
      r = cuMemAllocAsync(&p, over, s);
      if (r == CUDA_SUCCESS) cuMemFreeAsync(p, s);
      ry = cuStreamSynchronize(s);
      Check(r == CUDA_ERROR_OUT_OF_MEMORY, "async_over", "%.1f MiB: %s (sync %s)", MiB(over),
            ErrName(r), ErrName(ry));
      {
        Filler fill(kStep);
        if (fill.ok) {
          p = 0;
          r = cuMemAllocAsync(&p, 512 * kMiB, s);
          if (r == CUDA_SUCCESS) cuMemFreeAsync(p, s);
          cuStreamSynchronize(s);
          Check(r == CUDA_ERROR_OUT_OF_MEMORY, "async_over_with_filler",
                "512 MiB with only ~256 MiB left: %s", ErrName(r));
        } else {
          Check(false, "async_over_with_filler", "could not place filler");
        }
      }
      CUmemoryPool pool = nullptr;
      if (cuDeviceGetDefaultMemPool(&pool, dev) == CUDA_SUCCESS) cuMemPoolTrimTo(pool, 0);
      cuStreamDestroy(s);
    }
  }

  // ---- VMM: cuMemCreate + cuMemMap ------------------------------------------------------------
  {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t gran = 0;
    r = cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (r != CUDA_SUCCESS || gran == 0) gran = 2 * kMiB;
    std::printf("VMM granularity: %zu\n", gran);

    // Under the limit: create, reserve, map, set access, touch, tear down.
    const size_t sz = AlignUp(kStep, gran);
    CUmemGenericAllocationHandle h = 0;
    CUdeviceptr va = 0;
    r = cuMemCreate(&h, sz, &prop, 0);
    CUresult rr = CUDA_ERROR_UNKNOWN, rm = CUDA_ERROR_UNKNOWN, ra = CUDA_ERROR_UNKNOWN,
             rs = CUDA_ERROR_UNKNOWN;
    if (r == CUDA_SUCCESS) {
      rr = cuMemAddressReserve(&va, sz, 0, 0, 0);
      if (rr == CUDA_SUCCESS) {
        rm = cuMemMap(va, sz, 0, h, 0);
        if (rm == CUDA_SUCCESS) {
          CUmemAccessDesc acc{};
          acc.location = prop.location;
          acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
          ra = cuMemSetAccess(va, sz, &acc, 1);
          if (ra == CUDA_SUCCESS) {
            rs = cuMemsetD8(va, 1, sz);
            if (rs == CUDA_SUCCESS) rs = cuCtxSynchronize();
          }
          cuMemUnmap(va, sz);
        }
        cuMemAddressFree(va, sz);
      }
      cuMemRelease(h);
    }
    Check(r == CUDA_SUCCESS && rr == CUDA_SUCCESS && rm == CUDA_SUCCESS && ra == CUDA_SUCCESS &&
              rs == CUDA_SUCCESS,
          "vmm_under", "256 MiB create=%s reserve=%s map=%s access=%s memset=%s", ErrName(r),
          ErrName(rr), ErrName(rm), ErrName(ra), ErrName(rs));

    h = 0;
    r = cuMemCreate(&h, AlignUp(over, gran), &prop, 0);
    Check(r == CUDA_ERROR_OUT_OF_MEMORY, "vmm_over", "%.1f MiB: %s", MiB(AlignUp(over, gran)),
          ErrName(r));
    if (r == CUDA_SUCCESS) cuMemRelease(h);

    // Past the limit in pieces: several 256 MiB handles mapped into one reservation.
    {
      const size_t n = limit / sz + 2;
      CUdeviceptr base = 0;
      std::vector<CUmemGenericAllocationHandle> hs;
      std::vector<size_t> mapped;
      CUresult stop_v = CUDA_SUCCESS;
      rr = cuMemAddressReserve(&base, n * sz, 0, 0, 0);
      if (rr == CUDA_SUCCESS) {
        for (size_t i = 0; i < n; ++i) {
          CUmemGenericAllocationHandle hi = 0;
          stop_v = cuMemCreate(&hi, sz, &prop, 0);
          if (stop_v != CUDA_SUCCESS) break;
          hs.push_back(hi);
          stop_v = cuMemMap(base + i * sz, sz, 0, hi, 0);
          if (stop_v != CUDA_SUCCESS) break;
          mapped.push_back(i);
        }
        for (size_t i : mapped) cuMemUnmap(base + i * sz, sz);
        for (auto hi : hs) cuMemRelease(hi);
        cuMemAddressFree(base, n * sz);
      }
      std::printf("VMM pieces: created %zu x %.0f MiB, stopped with %s\n", hs.size(), MiB(sz),
                  ErrName(stop_v));
      Check(rr == CUDA_SUCCESS && stop_v == CUDA_ERROR_OUT_OF_MEMORY && hs.size() * sz <= limit,
            "vmm_pieces_oom", "created %.1f MiB in %.0f MiB handles, stopped with %s",
            MiB(hs.size() * sz), MiB(sz), ErrName(stop_v));
    }
  }

  // ---- everything released? -------------------------------------------------------------------
  size_t free_end = 0, total_end = 0;
  MemInfo(&free_end, &total_end);
  Check(free_end + 16 * kMiB >= free0, "free_at_end", "free=%.1f MiB (start %.1f MiB)",
        MiB(free_end), MiB(free0));
  CUdeviceptr p = 0;
  r = cuMemAlloc(&p, 1024 * kMiB > free_end ? free_end / 2 : 1024 * kMiB);
  Check(r == CUDA_SUCCESS, "alloc_after_oom", "%s", ErrName(r));
  if (r == CUDA_SUCCESS) cuMemFree(p);

  cuDevicePrimaryCtxRelease(dev);
  std::printf("SUMMARY: total=%.1fMiB devtotal=%.1fMiB free0=%.1fMiB ctx_overhead=%.1fMiB "
              "got=%.1fMiB stop=%s%s%s\n",
              MiB(total0), MiB(dev_total), MiB(free0), MiB(limit > free0 ? limit - free0 : 0),
              MiB(got), ErrName(stop), g_failed ? " failed=" : "", g_failed_names.c_str());
  return g_failed == 0 ? 0 : 1;
}
