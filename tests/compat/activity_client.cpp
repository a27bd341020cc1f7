// SPDX-License-Identifier: Apache-2.0
// A CUDA program for the activity tests (activity_test.cpp), run with LD_PRELOAD=libgpushare.so
// against the fake driver (linked to it directly, so that the preloaded wrappers, where there
// are any, come first). Usage:
//   activity_client graphs BYTES SECONDS
//       holds BYTES, then for SECONDS only replays a CUDA graph (cuGraphLaunch every 20 ms, as a
//       server decoding with graphs does); prints "held", then "replays N" and exits 0
//   activity_client entries INDEX COUNT
//       for every launch-like entry point i with i % COUNT == INDEX: calls it, and prints
//       "<name> moved" when its process slot's last-active time in the ledger
//       (include/gpushare/ledger_abi.h) then moves, "<name> still" when it does not within 600 ms
//       (twice); a call that fails prints "<name> rc <code>"
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>

#include "include/gpushare/ledger_abi.h"
#include "tests/fake_driver/fake_cuda_control.h"

extern "C" __attribute__((visibility("default"), used)) void activity_noop(const fakecuda_launch*) {}

namespace {

constexpr char kImage[] = ".entry activity_noop(\n";
constexpr size_t kMiB = 1 << 20;

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

[[noreturn]] void Fail(const char* what, CUresult rc) {
  std::printf("setup_failed %s %d\n", what, static_cast<int>(rc));
  std::exit(2);
}

#define CHECK(call)                              \
  do {                                           \
    const CUresult check_rc_ = (call);           \
    if (check_rc_ != CUDA_SUCCESS) Fail(#call, check_rc_); \
  } while (0)

struct Setup {
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUdeviceptr buffer = 0;  // 1 MiB: flags for the memory operations at its start
  CUfunction kernel = nullptr;
  CUgraphExec exec = nullptr;
};

Setup Start() {
  Setup s;
  CHECK(cuInit(0));
  CUdevice dev = 0;
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&s.ctx, dev));
  CHECK(cuCtxSetCurrent(s.ctx));
  CHECK(cuStreamCreate(&s.stream, CU_STREAM_NON_BLOCKING));
  CHECK(cuMemAlloc_v2(&s.buffer, kMiB));
  CHECK(cuMemsetD8_v2(s.buffer, 0, kMiB));
  CUmodule module = nullptr;
  CHECK(cuModuleLoadData(&module, kImage));
  CHECK(cuModuleGetFunction(&s.kernel, module, "activity_noop"));
  CUgraph graph = nullptr;
  CHECK(cuGraphCreate(&graph, 0));
  CUDA_KERNEL_NODE_PARAMS_v2 node{};
  node.func = s.kernel;
  node.gridDimX = node.gridDimY = node.gridDimZ = 1;
  node.blockDimX = 32;
  node.blockDimY = node.blockDimZ = 1;
  CUgraphNode added = nullptr;
  CHECK(cuGraphAddKernelNode_v2(&added, graph, nullptr, 0, &node));
  CHECK(cuGraphInstantiateWithFlags(&s.exec, graph, 0));
  return s;
}

// ---- graphs: a server whose only work after start-up is replaying a graph
int ReplayGraphs(uint64_t bytes, double seconds) {
  Setup s = Start();
  std::vector<CUdeviceptr> held;
  for (uint64_t got = 0; got + 64 * kMiB <= bytes; got += 64 * kMiB) {
    CUdeviceptr p = 0;
    CHECK(cuMemAlloc_v2(&p, 64 * kMiB));
    held.push_back(p);
  }
  std::printf("held %llu\n", static_cast<unsigned long long>(bytes));
  std::fflush(stdout);
  const int rounds = static_cast<int>(seconds * 50);
  int replays = 0;
  for (int i = 0; i < rounds; ++i) {
    if (cuGraphLaunch(s.exec, s.stream) == CUDA_SUCCESS) ++replays;
    cuStreamSynchronize(s.stream);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("replays %d\n", replays);
  return 0;
}

// ---- entries: this process's last-active time, read from its slot in the ledger
uint64_t LastActiveNs() {
  const char* dir_path = std::getenv("GPUSHARE_LEDGER_DIR");
  DIR* dir = dir_path != nullptr ? opendir(dir_path) : nullptr;
  if (dir == nullptr) return 0;
  std::string path;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".ledger") == 0) path = std::string(dir_path) + "/" + name;
  }
  closedir(dir);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st {};
  fstat(fd, &st);
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return 0;
  const auto* header = static_cast<const GsLedgerHeader*>(map);
  uint64_t found = 0;
  if (std::memcmp(header->magic, GS_LEDGER_MAGIC, 8) == 0 && header->process_slot_bytes == sizeof(GsLedgerProcess)) {
    const auto* slots = reinterpret_cast<const GsLedgerProcess*>(static_cast<const char*>(map) +
                                                                  header->process_slots_offset);
    for (uint32_t i = 0; i < header->process_slot_count; ++i) {
      if (__atomic_load_n(&slots[i].state, __ATOMIC_ACQUIRE) == GS_SLOT_ACTIVE &&
          slots[i].pid == static_cast<uint32_t>(getpid()))
        found = __atomic_load_n(&slots[i].last_active_ns, __ATOMIC_RELAXED);
    }
  }
  munmap(map, static_cast<size_t>(st.st_size));
  return found;
}

void CUDA_CB HostNoop(void*) {}
void CUDA_CB CallbackNoop(CUstream, CUresult, void*) {}

struct Entry {
  const char* name;
  std::function<CUresult(const Setup&)> call;
};

std::vector<Entry> Entries() {
  auto flag = [](const Setup& s) { return s.buffer; };
  std::vector<Entry> e = {
      {"cuLaunchKernel", [](const Setup& s) { return cuLaunchKernel(s.kernel, 1, 1, 1, 32, 1, 1, 0, s.stream, nullptr, nullptr); }},
      {"cuLaunchKernel_ptsz", [](const Setup& s) { return cuLaunchKernel_ptsz(s.kernel, 1, 1, 1, 32, 1, 1, 0, s.stream, nullptr, nullptr); }},
      {"cuLaunchKernelEx", [](const Setup& s) {
         CUlaunchConfig c{};
         c.gridDimX = c.gridDimY = c.gridDimZ = 1;
         c.blockDimX = 32;
         c.blockDimY = c.blockDimZ = 1;
         c.hStream = s.stream;
         return cuLaunchKernelEx(&c, s.kernel, nullptr, nullptr);
       }},
      {"cuLaunchKernelEx_ptsz", [](const Setup& s) {
         CUlaunchConfig c{};
         c.gridDimX = c.gridDimY = c.gridDimZ = 1;
         c.blockDimX = 32;
         c.blockDimY = c.blockDimZ = 1;
         c.hStream = s.stream;
         return cuLaunchKernelEx_ptsz(&c, s.kernel, nullptr, nullptr);
       }},
      {"cuLaunchCooperativeKernel", [](const Setup& s) { return cuLaunchCooperativeKernel(s.kernel, 1, 1, 1, 32, 1, 1, 0, s.stream, nullptr); }},
      {"cuLaunchCooperativeKernel_ptsz", [](const Setup& s) { return cuLaunchCooperativeKernel_ptsz(s.kernel, 1, 1, 1, 32, 1, 1, 0, s.stream, nullptr); }},
      {"cuLaunchCooperativeKernelMultiDevice", [](const Setup& s) {
         CUDA_LAUNCH_PARAMS p{};
         p.function = s.kernel;
         p.gridDimX = p.gridDimY = p.gridDimZ = 1;
         p.blockDimX = 32;
         p.blockDimY = p.blockDimZ = 1;
         p.hStream = s.stream;
         return cuLaunchCooperativeKernelMultiDevice(&p, 1, 0);
       }},
      {"cuLaunch", [](const Setup& s) { return cuLaunch(s.kernel); }},
      {"cuLaunchGrid", [](const Setup& s) { return cuLaunchGrid(s.kernel, 1, 1); }},
      {"cuLaunchGridAsync", [](const Setup& s) { return cuLaunchGridAsync(s.kernel, 1, 1, s.stream); }},
      {"cuGraphLaunch", [](const Setup& s) { return cuGraphLaunch(s.exec, s.stream); }},
      {"cuGraphLaunch_ptsz", [](const Setup& s) { return cuGraphLaunch_ptsz(s.exec, s.stream); }},
      {"cuLaunchHostFunc", [](const Setup& s) { return cuLaunchHostFunc(s.stream, HostNoop, nullptr); }},
      {"cuLaunchHostFunc_ptsz", [](const Setup& s) { return cuLaunchHostFunc_ptsz(s.stream, HostNoop, nullptr); }},
      {"cuStreamAddCallback", [](const Setup& s) { return cuStreamAddCallback(s.stream, CallbackNoop, nullptr, 0); }},
      {"cuStreamAddCallback_ptsz", [](const Setup& s) { return cuStreamAddCallback_ptsz(s.stream, CallbackNoop, nullptr, 0); }},
      {"cuMemcpyDtoDAsync_v2", [](const Setup& s) { return cuMemcpyDtoDAsync_v2(s.buffer + 4096, s.buffer + 8192, 64, s.stream); }},
      {"cuMemsetD32Async", [](const Setup& s) { return cuMemsetD32Async(s.buffer + 4096, 0, 16, s.stream); }},
  };
  // Each stream memory operation on the buffer's first words: waits are already satisfied.
#define ACTIVITY_MEMOP(sym, offset, value, flags) \
  e.push_back({#sym, [=](const Setup& s) { return sym(s.stream, flag(s) + (offset), (value), (flags)); }});
  ACTIVITY_MEMOP(cuStreamWriteValue32, 0, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue32_ptsz, 0, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue32_v2, 0, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue32_v2_ptsz, 0, 1, 0)
  ACTIVITY_MEMOP(cuStreamWaitValue32, 0, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue32_ptsz, 0, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue32_v2, 0, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue32_v2_ptsz, 0, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWriteValue64, 8, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue64_ptsz, 8, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue64_v2, 8, 1, 0)
  ACTIVITY_MEMOP(cuStreamWriteValue64_v2_ptsz, 8, 1, 0)
  ACTIVITY_MEMOP(cuStreamWaitValue64, 8, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue64_ptsz, 8, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue64_v2, 8, 1, CU_STREAM_WAIT_VALUE_GEQ)
  ACTIVITY_MEMOP(cuStreamWaitValue64_v2_ptsz, 8, 1, CU_STREAM_WAIT_VALUE_GEQ)
#undef ACTIVITY_MEMOP
#define ACTIVITY_BATCH(sym)                                    \
  e.push_back({#sym, [=](const Setup& s) {                     \
                 CUstreamBatchMemOpParams op{};                \
                 op.writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32; \
                 op.writeValue.address = flag(s) + 16;          \
                 op.writeValue.value = 1;                       \
                 return sym(s.stream, 1, &op, 0);               \
               }});
  ACTIVITY_BATCH(cuStreamBatchMemOp)
  ACTIVITY_BATCH(cuStreamBatchMemOp_ptsz)
  ACTIVITY_BATCH(cuStreamBatchMemOp_v2)
  ACTIVITY_BATCH(cuStreamBatchMemOp_v2_ptsz)
#undef ACTIVITY_BATCH
  return e;
}

// The watcher (quota/watcher.cpp) ticks every 100 ms: it moves the coarse clock activity is
// stamped with, then copies this process's latest activity into the ledger.
void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Whether the ledger's time moves past `before` within `ms` (polled).
bool MovesPast(uint64_t before, int ms, uint64_t* now) {
  for (int waited = 0;; waited += 20) {
    *now = LastActiveNs();
    if (*now > before || waited >= ms) return *now > before;
    Sleep(20);
  }
}

int CallEntries(size_t index, size_t count) {
  const Setup s = Start();
  CHECK(cuFuncSetBlockShape(s.kernel, 32, 1, 1));  // for cuLaunch / cuLaunchGrid
  CHECK(cuParamSetSize(s.kernel, 0));
  CHECK(cuStreamSynchronize(s.stream));
  Sleep(300);
  uint64_t before = LastActiveNs();
  if (before == 0) Fail("no process slot of this process in the ledger", CUDA_ERROR_UNKNOWN);
  const std::vector<Entry> entries = Entries();
  for (size_t i = index; i < entries.size(); i += count) {
    // Two tries: 300 ms apart from the last activity, the coarse clock has moved on (a second
    // try covers a watcher delayed by a loaded machine); the ledger then shows the call.
    bool moved = false;
    CUresult rc = CUDA_SUCCESS;
    for (int attempt = 0; attempt < 2 && !moved && rc == CUDA_SUCCESS; ++attempt) {
      Sleep(300);
      rc = entries[i].call(s);
      uint64_t now = 0;
      moved = MovesPast(before, 600, &now);
      before = now;
    }
    if (rc != CUDA_SUCCESS) {
      Say(std::string(entries[i].name) + " rc " + std::to_string(rc));
    } else {
      Say(std::string(entries[i].name) + (moved ? " moved" : " still"));
    }
  }
  Say("entries_done " + std::to_string(entries.size()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  if (scenario == "graphs" && argc == 4) return ReplayGraphs(std::strtoull(argv[2], nullptr, 10), std::atof(argv[3]));
  if (scenario == "entries" && argc == 4)
    return CallEntries(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10));
  std::fprintf(stderr, "usage: activity_client graphs BYTES SECONDS | entries INDEX COUNT\n");
  return 2;
}
