// SPDX-License-Identifier: Apache-2.0
// A CUDA program for the swap end-to-end tests, run with LD_PRELOAD=libgpushare.so against the
// fake driver (linked to it directly). Usage: swap_client SCENARIO [args]
//   attrs            one swappable allocation: pointer attributes, address range, memsets,
//                    copies, the charge rounded to the granularity, the free
//   work BYTES ITERS THREADS
//                    allocates BYTES in 16 MiB blocks (plus an odd-sized one), fills them, then
//                    THREADS threads each bump their blocks ITERS times with a kernel (every
//                    word + 1) and a memset-free copy check; prints progress, then checks every
//                    word and every address: bitexact, addresses_kept, errors; then waits to
//                    be killed
//   capture MS       (with work's arguments after) holds a stream capture open for MS while
//                    working; prints capture_rc
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/driver_api.h"
#include "tests/fake_driver/fake_cuda_control.h"

namespace {

constexpr uint64_t kMiB = 1ull << 20;
std::mutex g_print_mu;

void Print(const std::string& key, long long value) {
  std::lock_guard lock(g_print_mu);
  std::printf("%s %lld\n", key.c_str(), value);
  std::fflush(stdout);
}

// The kernels: swap_bump(uint32_t* p, uint64_t words) adds 1 to every word; swap_fill(uint32_t*
// p, uint64_t words, uint32_t seed) writes seed + i.
extern "C" __attribute__((visibility("default"), used)) void swap_bump(const fakecuda_launch* l) {
  auto* p = reinterpret_cast<uint32_t*>(*static_cast<CUdeviceptr*>(l->params[0]));
  const uint64_t n = *static_cast<uint64_t*>(l->params[1]);
  for (uint64_t i = 0; i < n; ++i) p[i] += 1;
}

extern "C" __attribute__((visibility("default"), used)) void swap_fill(const fakecuda_launch* l) {
  auto* p = reinterpret_cast<uint32_t*>(*static_cast<CUdeviceptr*>(l->params[0]));
  const uint64_t n = *static_cast<uint64_t*>(l->params[1]);
  const uint32_t seed = *static_cast<uint32_t*>(l->params[2]);
  for (uint64_t i = 0; i < n; ++i) p[i] = seed + static_cast<uint32_t>(i);
}

CUfunction g_bump = nullptr, g_fill = nullptr;

struct Block {
  CUdeviceptr ptr = 0;
  uint64_t bytes = 0;
  uint32_t seed = 0;
};

void Attrs(CUcontext ctx) {
  const uint64_t bytes = 5 * kMiB + 1;
  size_t free_before = 0, total = 0, free_after = 0;
  cuMemGetInfo_v2(&free_before, &total);
  CUdeviceptr p = 0;
  Print("alloc_rc", cuMemAlloc_v2(&p, bytes));
  cuMemGetInfo_v2(&free_after, &total);
  Print("charged", static_cast<long long>(free_before - free_after));
  Print("aligned_2mib", p % (2 * kMiB) == 0);
  CUcontext owner = nullptr;
  Print("context_rc", cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, p + 100));
  Print("context_is_current", owner == ctx);
  unsigned type = 0;
  cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p);
  Print("memory_type", type);
  CUdeviceptr start = 0, dptr = 0;
  size_t range = 0;
  cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p + 4096);
  cuPointerGetAttribute(&range, CU_POINTER_ATTRIBUTE_RANGE_SIZE, p + 4096);
  cuPointerGetAttribute(&dptr, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p + 8);
  Print("range_start_ok", start == p);
  Print("range_size", static_cast<long long>(range));
  Print("device_pointer_ok", dptr == p + 8);
  int ordinal = -1;
  cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p);
  Print("ordinal", ordinal);
  void* host = reinterpret_cast<void*>(1);
  Print("host_pointer_rc", cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, p));
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                 CU_POINTER_ATTRIBUTE_HOST_POINTER, CU_POINTER_ATTRIBUTE_IS_MANAGED};
  CUcontext a_ctx = nullptr;
  unsigned a_type = 0;
  void* a_host = reinterpret_cast<void*>(1);
  bool a_managed = true;
  void* data[] = {&a_ctx, &a_type, &a_host, &a_managed};
  Print("attrs_rc", cuPointerGetAttributes(4, attrs, data, p));
  Print("attrs_ok", a_ctx == ctx && a_type == CU_MEMORYTYPE_DEVICE && a_host == nullptr && !a_managed);
  CUdeviceptr base = 0;
  size_t size = 0;
  Print("range_rc", cuMemGetAddressRange_v2(&base, &size, p + bytes - 1));
  Print("range_ok", base == p && size == bytes);
  Print("past_end_rc", cuMemGetAddressRange_v2(&base, &size, p + 6 * kMiB));
  // Every family of memset and copy on it.
  std::vector<uint8_t> h(bytes);
  Print("memset8_rc", cuMemsetD8_v2(p, 0x5a, bytes));
  Print("memset16_rc", cuMemsetD16Async(p, 0x1234, 8, nullptr));
  Print("memset32_rc", cuMemsetD32_v2(p + 16, 0xdeadbeef, 4));
  CUdeviceptr q = 0;
  cuMemAlloc_v2(&q, bytes);
  Print("dtod_rc", cuMemcpyDtoD_v2(q, p, bytes));
  Print("unified_rc", cuMemcpy(reinterpret_cast<CUdeviceptr>(h.data()), q, bytes));
  uint32_t word = 0;
  std::memcpy(&word, h.data() + 16, 4);
  Print("contents_ok", h[0] == 0x34 && h[1] == 0x12 && word == 0xdeadbeef && h[bytes - 1] == 0x5a);
  Print("free_rc", cuMemFree_v2(p));
  Print("free_q_rc", cuMemFree_v2(q));
  Print("after_free_rc", cuMemGetAddressRange_v2(&base, &size, p));
  size_t free_end = 0;
  cuMemGetInfo_v2(&free_end, &total);
  Print("released", free_end == free_before);
}

// `rows` rows of `pitch` bytes from device memory into host memory, with a 2D copy.
CUresult CopyRowsToHost(void* host, CUdeviceptr src, size_t pitch, size_t rows) {
  CUDA_MEMCPY2D c{};
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = src;
  c.srcPitch = pitch;
  c.dstMemoryType = CU_MEMORYTYPE_HOST;
  c.dstHost = host;
  c.dstPitch = pitch;
  c.WidthInBytes = pitch;
  c.Height = rows;
  return cuMemcpy2D_v2(&c);
}

void Work(CUcontext ctx, uint64_t bytes, int iters, int threads, long capture_ms) {
  std::vector<Block> blocks;
  const uint64_t kBlock = 16 * kMiB;
  std::atomic<int> errors{0};
  for (uint64_t got = 0; got + kBlock <= bytes; got += kBlock) {
    Block b{0, kBlock, static_cast<uint32_t>(blocks.size() * 7919u)};
    const CUresult rc = cuMemAlloc_v2(&b.ptr, b.bytes);
    if (rc != CUDA_SUCCESS) {
      Print("alloc_rc", rc);
      ++errors;
      break;
    }
    blocks.push_back(b);
  }
  Block odd{0, 3 * kMiB + 12, 4242};  // not a multiple of the granularity
  if (cuMemAlloc_v2(&odd.ptr, odd.bytes) == CUDA_SUCCESS) blocks.push_back(odd);
  Print("allocated", static_cast<long long>(blocks.size()));
  // Swappable too: thread 0 writes it with a 2D memset every iteration, and reads the largest
  // block with a 2D copy, while the tenant is swapped out and in (both go through the swap gate).
  constexpr size_t kPitch = 4096, kRows = 16;
  CUdeviceptr scratch = 0;
  const bool have_scratch = cuMemAlloc_v2(&scratch, kPitch * kRows) == CUDA_SUCCESS;
  std::vector<CUdeviceptr> addresses;
  for (Block& b : blocks) {
    uint64_t words = b.bytes / 4;
    void* args[] = {&b.ptr, &words, &b.seed};
    if (cuLaunchKernel(g_fill, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr) != CUDA_SUCCESS) ++errors;
    addresses.push_back(b.ptr);
  }
  Print("filled", 1);
  std::atomic<int> capture_rc{-1};
  std::thread capturer;
  if (capture_ms > 0) {
    capturer = std::thread([&] {
      cuCtxSetCurrent(ctx);
      CUstream s = nullptr;
      cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
      cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL);
      Print("capturing", 1);
      usleep(static_cast<useconds_t>(capture_ms) * 1000);
      CUgraph g = nullptr;
      capture_rc = cuStreamEndCapture(s, &g);
    });
  }
  std::vector<std::thread> workers;
  std::atomic<int> done_iters{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      cuCtxSetCurrent(ctx);
      for (int i = 0; i < iters; ++i) {
        if (t == 0 && have_scratch) {
          const CUresult rc = cuMemsetD2D32_v2(scratch, kPitch, static_cast<unsigned>(i), kPitch / 4, kRows);
          if (rc != CUDA_SUCCESS) {
            Print("memset2d_rc", rc);
            ++errors;
          }
        }
        if (t == 0 && !blocks.empty()) {
          std::vector<uint8_t> rows(kPitch * kRows);
          const CUresult rc = CopyRowsToHost(rows.data(), blocks[0].ptr, kPitch, kRows);
          if (rc != CUDA_SUCCESS) {
            Print("copy2d_rc", rc);
            ++errors;
          }
        }
        for (size_t k = t; k < blocks.size(); k += threads) {
          uint64_t words = blocks[k].bytes / 4;
          void* args[] = {&blocks[k].ptr, &words};
          const CUresult rc = cuLaunchKernel(g_bump, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr);
          if (rc != CUDA_SUCCESS) {
            Print("launch_rc", rc);
            ++errors;
          }
        }
        if (t == 0 && (i + 1) % 10 == 0) Print("iter", i + 1);
        done_iters.fetch_add(1);
        usleep(2000);
      }
    });
  }
  for (auto& w : workers) w.join();
  if (capturer.joinable()) capturer.join();
  if (capture_ms > 0) Print("capture_rc", capture_rc.load());
  bool exact = true;
  std::vector<uint32_t> host;
  for (size_t k = 0; k < blocks.size(); ++k) {
    const Block& b = blocks[k];
    host.assign(b.bytes / 4, 0);
    if (cuMemcpyDtoH_v2(host.data(), b.ptr, b.bytes) != CUDA_SUCCESS) ++errors;
    for (uint64_t i = 0; i < host.size(); ++i)
      if (host[i] != b.seed + static_cast<uint32_t>(i) + static_cast<uint32_t>(iters)) {
        exact = false;
        break;
      }
  }
  bool kept = true;
  for (size_t k = 0; k < blocks.size(); ++k) {
    CUdeviceptr base = 0;
    size_t size = 0;
    kept = kept && cuMemGetAddressRange_v2(&base, &size, blocks[k].ptr) == CUDA_SUCCESS &&
           base == addresses[k] && size == blocks[k].bytes;
  }
  if (have_scratch) {
    std::vector<uint32_t> rows(kPitch / 4 * kRows, 0);
    const CUresult rc = CopyRowsToHost(rows.data(), scratch, kPitch, kRows);
    bool ok = rc == CUDA_SUCCESS;
    for (uint32_t w : rows) ok = ok && w == static_cast<uint32_t>(iters - 1);
    Print("memset2d_ok", ok);
  }
  Print("bitexact", exact);
  Print("addresses_kept", kept);
  Print("errors", errors.load());
  Print("sync_rc", cuCtxSynchronize());
  Print("done", 1);
  for (;;) pause();  // stays a tenant (its ledger records readable) until the test kills it
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: swap_client attrs | work BYTES ITERS THREADS | capture MS BYTES ITERS THREADS\n");
    return 2;
  }
  const std::string scenario = argv[1];
  Print("init_rc", cuInit(0));
  CUcontext ctx = nullptr;
  Print("retain_rc", cuDevicePrimaryCtxRetain(&ctx, 0));
  cuCtxSetCurrent(ctx);
  CUmodule module = nullptr;
  cuModuleLoadData(&module, "swap kernels");
  cuModuleGetFunction(&g_bump, module, "swap_bump");
  cuModuleGetFunction(&g_fill, module, "swap_fill");
  if (scenario == "attrs") Attrs(ctx);
  if (scenario == "work" && argc >= 5)
    Work(ctx, std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3]), std::atoi(argv[4]), 0);
  if (scenario == "capture" && argc >= 6)
    Work(ctx, std::strtoull(argv[3], nullptr, 10), std::atoi(argv[4]), std::atoi(argv[5]), std::atol(argv[2]));
  return 0;
}
