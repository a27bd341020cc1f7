// SPDX-License-Identifier: Apache-2.0
// A CUDA program for the end-to-end tests, run with LD_PRELOAD=libgpushare.so against the fake
// driver. Usage: cuda_client MODE SCENARIO, MODE in link|dlsym|gpa. It prints "key value" lines
// the tests assert on, and exits 0 unless the driver could not be reached at all.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/driver_api.h"

#ifdef E2E_WITH_SPDLOG
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#endif

namespace {

constexpr uint64_t kMiB = 1ull << 20;
e2e::DriverApi api;

void Print(const char* key, uint64_t value) { std::printf("%s %llu\n", key, static_cast<unsigned long long>(value)); }
void PrintRc(const char* key, CUresult rc) { std::printf("%s %d\n", key, static_cast<int>(rc)); }

bool Start(CUcontext& ctx) {
  CUresult rc = api.cuInit(0);
  PrintRc("init_rc", rc);
  if (rc != CUDA_SUCCESS) return false;
  CUdevice dev = 0;
  api.cuDeviceGet(&dev, 0);
  rc = api.cuDevicePrimaryCtxRetain(&ctx, dev);
  PrintRc("retain_rc", rc);
  if (rc != CUDA_SUCCESS) return false;
  api.cuCtxSetCurrent(ctx);
  return true;
}

void PrintMemInfo(const char* prefix) {
  size_t free = 0, total = 0;
  const CUresult rc = api.cuMemGetInfo(&free, &total);
  std::printf("%s_rc %d\n%s_free %zu\n%s_total %zu\n", prefix, rc, prefix, free, prefix, total);
}

// Allocates `step` bytes at a time until refused; prints what it got and the refusal.
void FillWithMemAlloc(uint64_t step) {
  std::vector<CUdeviceptr> held;
  CUresult rc = CUDA_SUCCESS;
  while (true) {
    CUdeviceptr p = 0;
    rc = api.cuMemAlloc(&p, step);
    if (rc != CUDA_SUCCESS) break;
    held.push_back(p);
  }
  Print("filled_bytes", held.size() * step);
  PrintRc("fill_stop_rc", rc);
  PrintMemInfo("full");
  for (CUdeviceptr p : held) api.cuMemFree(p);
}

// Each family: one allocation of `bytes`, freed at once. Prints <name>_rc.
void TryFamilies(uint64_t bytes) {
  CUdevice dev = 0;
  api.cuDeviceGet(&dev, 0);
  {
    CUdeviceptr p = 0;
    size_t pitch = 0;
    const CUresult rc = api.cuMemAllocPitch(&p, &pitch, bytes / 1024, 1024, 4);
    PrintRc("pitch_rc", rc);
    if (rc == CUDA_SUCCESS) Print("pitch_bytes", pitch);
    if (rc == CUDA_SUCCESS) api.cuMemFree(p);
  }
  {
    CUdeviceptr p = 0;
    const CUresult rc = api.cuMemAllocManaged(&p, bytes, CU_MEM_ATTACH_GLOBAL);
    PrintRc("managed_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuMemFree(p);
  }
  {
    CUdeviceptr p = 0;
    const CUresult rc = api.cuMemAllocAsync(&p, bytes, nullptr);
    PrintRc("async_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuMemFreeAsync(p, nullptr);
    api.cuStreamSynchronize(nullptr);
    CUmemoryPool pool = nullptr;
    api.cuDeviceGetMemPool(&pool, dev);
    api.cuMemPoolTrimTo(pool, 0);
  }
  {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t granularity = 0;
    api.cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    const size_t size = (bytes + granularity - 1) / granularity * granularity;
    CUmemGenericAllocationHandle handle = 0;
    const CUresult rc = api.cuMemCreate(&handle, size, &prop, 0);
    PrintRc("vmm_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuMemRelease(handle);
  }
  {
    CUDA_ARRAY_DESCRIPTOR d{};
    d.Width = 1024;
    d.Height = bytes / (1024 * 4);
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    CUarray a = nullptr;
    const CUresult rc = api.cuArrayCreate(&a, &d);
    PrintRc("array_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuArrayDestroy(a);
  }
  {
    CUDA_ARRAY3D_DESCRIPTOR d{};
    d.Width = 256;
    d.Height = 256;
    d.Depth = bytes / (256 * 256 * 4);
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    CUarray a = nullptr;
    const CUresult rc = api.cuArray3DCreate(&a, &d);
    PrintRc("array3d_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuArrayDestroy(a);
  }
  {
    CUDA_ARRAY3D_DESCRIPTOR d{};
    d.Width = 1024;
    d.Height = bytes / (1024 * 4 * 2);
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    CUmipmappedArray m = nullptr;
    const CUresult rc = api.cuMipmappedArrayCreate(&m, &d, 4);
    PrintRc("mipmap_rc", rc);
    if (rc == CUDA_SUCCESS) api.cuMipmappedArrayDestroy(m);
  }
  {
    CUgraph graph = nullptr;
    api.cuGraphCreate(&graph, 0);
    CUDA_MEM_ALLOC_NODE_PARAMS params{};
    params.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    params.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    params.poolProps.location.id = dev;
    params.bytesize = bytes;
    CUgraphNode node = nullptr;
    const CUresult rc = api.cuGraphAddMemAllocNode(&node, graph, nullptr, 0, &params);
    PrintRc("graph_node_rc", rc);
    if (rc == CUDA_SUCCESS) {
      CUgraphExec exec = nullptr;
      api.cuGraphInstantiateWithFlags(&exec, graph, 0);
      PrintRc("graph_launch_rc", api.cuGraphLaunch(exec, nullptr));
      api.cuStreamSynchronize(nullptr);
      PrintMemInfo("graph");
      // A graph allocation without a free node outlives the launch until the program frees it.
      api.cuMemFreeAsync(params.dptr, nullptr);
      api.cuStreamSynchronize(nullptr);
      api.cuGraphExecDestroy(exec);
      api.cuDeviceGraphMemTrim(dev);
    }
    api.cuGraphDestroy(graph);
  }
}

// Fills until refused, then asks again for the same block as a caching allocator does after
// freeing its cache: under GPUSHARE_WAIT_MODE=retry the first refusal is immediate and the
// retry waits.
void FillThenRetry() {
  uint64_t got = 0;
  for (CUdeviceptr p = 0; api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS;) got += 64 * kMiB;
  Print("first_refusal_after", got);
  std::fflush(stdout);
  CUdeviceptr p = 0;
  const CUresult rc = api.cuMemAlloc(&p, 64 * kMiB);
  PrintRc("retry_rc", rc);
}

// Every device in turn: its own quota, shown and enforced (multi-GPU processes).
void EachDevice() {
  for (int d = 0; d < 2; ++d) {
    CUcontext ctx = nullptr;
    if (api.cuDevicePrimaryCtxRetain(&ctx, d) != CUDA_SUCCESS) continue;
    api.cuCtxSetCurrent(ctx);
    size_t free = 0, total = 0;
    api.cuMemGetInfo(&free, &total);
    uint64_t got = 0;
    for (CUdeviceptr p = 0; api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS;) got += 64 * kMiB;
    std::printf("dev%d_total %zu\ndev%d_filled %llu\n", d, total, d, static_cast<unsigned long long>(got));
  }
}

// Takes up to `bytes` in 64 MiB blocks and holds them until killed (multi-process tests).
void Hold(uint64_t bytes) {
  uint64_t held = 0;
  for (CUdeviceptr p = 0; held < bytes && api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS;) held += 64 * kMiB;
  Print("held", held);
  std::fflush(stdout);
  for (;;) pause();
}

// SIGUSR1 and SIGUSR2 wait for sigwait() in every thread, the library's included (blocked
// before cuInit, so its threads inherit the mask).
sigset_t g_commands;
void BlockCommands() {
  sigemptyset(&g_commands);
  sigaddset(&g_commands, SIGUSR1);
  sigaddset(&g_commands, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &g_commands, nullptr);
}

// Holds `bytes`, then for each SIGUSR1 (round n) takes up to `grow` more in 64 MiB blocks and
// prints grown<n>; SIGUSR2 frees what it grew and prints freed<n>. Until killed.
void HoldAndGrow(uint64_t bytes, uint64_t grow) {
  std::vector<CUdeviceptr> grown;
  uint64_t held = 0;
  for (CUdeviceptr p = 0; held < bytes && api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS;) held += 64 * kMiB;
  Print("held", held);
  std::fflush(stdout);
  for (int round = 1;; ++round) {
    int sig = 0;
    sigwait(&g_commands, &sig);
    if (sig == SIGUSR1) {
      uint64_t got = 0;
      for (CUdeviceptr p = 0; got < grow && api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS; got += 64 * kMiB) grown.push_back(p);
      std::printf("grown%d %llu\n", round, static_cast<unsigned long long>(got));
    } else {
      for (CUdeviceptr p : grown) api.cuMemFree(p);
      grown.clear();
      std::printf("freed%d 1\n", round);
    }
    std::fflush(stdout);
  }
}

// A program with its own SIGBUS handler (installed before or after the library's): a fault in a
// file it maps itself must still reach it.
sigjmp_buf g_fault_jump;
volatile void* g_fault_addr = nullptr;
void OnOwnSigbus(int, siginfo_t* info, void*) {
  g_fault_addr = info->si_addr;
  siglongjmp(g_fault_jump, 1);
}
void InstallOwnSigbus() {
  struct sigaction sa {};
  sa.sa_sigaction = OnOwnSigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
}
// Maps a page of its own file, truncates the file and touches the page: 1 when its own handler
// caught the fault at that address.
int OwnFault() {
  char path[] = "/tmp/gs_e2e_sigbusXXXXXX";
  const int fd = mkstemp(path);
  unlink(path);
  if (fd < 0 || ftruncate(fd, 4096) != 0) return 0;
  auto* page = static_cast<volatile char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (page == MAP_FAILED || ftruncate(fd, 0) != 0) return 0;
  int caught = 0;
  g_fault_addr = nullptr;
  if (sigsetjmp(g_fault_jump, 1) == 0) {
    page[0] = 1;
  } else {
    caught = g_fault_addr == page ? 1 : 0;
  }
  munmap(const_cast<char*>(page), 4096);
  close(fd);
  return caught;
}
// Holds 64 MiB; each SIGUSR1 (round n) prints own_fault<n>.
void HoldWithOwnSigbus(bool install_after) {
  if (install_after) InstallOwnSigbus();
  CUdeviceptr p = 0;
  Print("held", api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS ? 64 * kMiB : 0);
  std::fflush(stdout);
  for (int round = 1;; ++round) {
    int sig = 0;
    sigwait(&g_commands, &sig);
    std::printf("own_fault%d %d\n", round, OwnFault());
    std::fflush(stdout);
  }
}

// 8 threads race to allocate 64 MiB blocks; the total granted must stay under the limit.
void Race() {
  CUcontext ctx = nullptr;
  std::vector<std::thread> threads;
  std::vector<uint64_t> granted(8, 0);
  api.cuDevicePrimaryCtxRetain(&ctx, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, ctx, &granted] {
      api.cuCtxSetCurrent(ctx);
      for (int i = 0; i < 64; ++i) {
        CUdeviceptr p = 0;
        if (api.cuMemAlloc(&p, 64 * kMiB) == CUDA_SUCCESS) granted[t] += 64 * kMiB;
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t sum = 0;
  for (uint64_t g : granted) sum += g;
  Print("race_granted", sum);
}

}  // namespace

// A "kernel" for the fake driver: cuModuleGetFunction finds it by name in this program.
int g_kernel_runs = 0;
extern "C" __attribute__((visibility("default"), used)) void e2e_count_kernel(const void*) { ++g_kernel_runs; }

void LaunchKernels() {
  CUmodule module = nullptr;
  CUfunction fn = nullptr;
  static const char kImage[] = "e2e module";
  PrintRc("module_rc", api.cuModuleLoadData(&module, kImage));
  PrintRc("function_rc", api.cuModuleGetFunction(&fn, module, "e2e_count_kernel"));
  for (int i = 0; i < 10; ++i) api.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr);
  Print("kernel_runs", static_cast<uint64_t>(g_kernel_runs));
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: cuda_client link|dlsym|gpa SCENARIO\n");
    return 2;
  }
#ifdef E2E_WITH_SPDLOG
  // The host program's own spdlog and fmt (shared libraries), with a logger of our name.
  auto host_logger = spdlog::stdout_logger_mt("gpushare");
  host_logger->info("host spdlog {}", SPDLOG_VER_MAJOR);
  std::printf("host_fmt %s\n", fmt::format("{:>4}", 7).c_str());
#endif
  // A server that ignores SIGTERM, for the priority resolver's grace period.
  if (std::getenv("GS_CLIENT_IGNORE_SIGTERM") != nullptr) signal(SIGTERM, SIG_IGN);
  const std::string scenario = argv[2];
  if (scenario == "grow" || scenario == "sigbus") BlockCommands();
  if (scenario == "sigbus" && argc > 3 && std::string(argv[3]) == "before") InstallOwnSigbus();
  if (!e2e::LoadDriverApi(argv[1], api)) return 3;
  // Processes that must start together (concurrent starts) wait for this file to appear.
  if (const char* go = std::getenv("GS_CLIENT_START_FILE"); go != nullptr)
    while (access(go, F_OK) != 0) usleep(1000);
  CUcontext ctx = nullptr;
  if (!Start(ctx)) return 0;
  CUdevice dev = 0;
  api.cuDeviceGet(&dev, 0);
  size_t total = 0;
  PrintRc("total_mem_rc", api.cuDeviceTotalMem(&total, dev));
  Print("device_total", total);
  PrintMemInfo("start");
  if (scenario == "fill") FillWithMemAlloc(64 * kMiB);
  if (scenario == "families") TryFamilies(argc > 3 ? std::stoull(argv[3]) : 64 * kMiB);
  if (scenario == "race") Race();
  if (scenario == "hold") Hold(argc > 3 ? std::stoull(argv[3]) : 64 * kMiB);
  if (scenario == "grow") HoldAndGrow(std::stoull(argv[3]), std::stoull(argv[4]));
  if (scenario == "sigbus") HoldWithOwnSigbus(argc > 3 && std::string(argv[3]) == "after");
  if (scenario == "launch") LaunchKernels();
  if (scenario == "devices") EachDevice();
  if (scenario == "retry") FillThenRetry();
  if (scenario == "context") {
    CUcontext extra = nullptr;
    PrintRc("ctx_create_rc", api.cuCtxCreate(&extra, nullptr, 0, dev));
    PrintMemInfo("with_ctx");
    if (extra != nullptr) api.cuCtxDestroy(extra);
    api.cuCtxSetCurrent(ctx);
    PrintMemInfo("ctx_gone");
  }
  PrintMemInfo("end");
  return 0;
}
