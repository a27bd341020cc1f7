// SPDX-License-Identifier: Apache-2.0
// The behaviours HAMi-core's black-box test programs (its test/ folder) check, as one program of
// ours run under LD_PRELOAD=libgpushare.so with HAMi's variables against the fake driver. Their
// code is not copied; each scenario states the behaviour it checks.
//   hami_client SCENARIO      prints "key value" lines; exit 0 unless the driver is unreachable
#include <cuda.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;

void Print(const char* key, long long value) { std::printf("%s %lld\n", key, value); }

bool Start() {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
      cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
    Print("start_ok", 0);
    return false;
  }
  Print("start_ok", 1);
  return true;
}

long long FreeBytes() {
  size_t free = 0, total = 0;
  return cuMemGetInfo(&free, &total) == CUDA_SUCCESS ? static_cast<long long>(free) : -1;
}

// test_alloc: sizes 2<<k and 2<<k +- 1 allocated and freed one at a time all succeed, and the
// quota comes back exactly; allocations past the limit are refused with OUT_OF_MEMORY and
// charge nothing.
void OddSizes() {
  const long long before = FreeBytes();
  int failures = 0;
  for (int k = 0; k < 29; ++k)
    for (const size_t size : {size_t{2} << k, (size_t{2} << k) + 1, (size_t{2} << k) - 1}) {
      CUdeviceptr p = 0;
      if (cuMemAlloc(&p, size) != CUDA_SUCCESS) {
        ++failures;
        continue;
      }
      if (cuMemFree(p) != CUDA_SUCCESS) ++failures;
    }
  Print("odd_failures", failures);
  Print("odd_free_restored", FreeBytes() == before);
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    CUdeviceptr p = 0;
    const CUresult rc = cuMemAlloc(&p, (size_t{1} << 30) + 2);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) ++refused;
    if (rc == CUDA_SUCCESS) cuMemFree(p);
  }
  Print("oversize_refused", refused);
  Print("oversize_free_restored", FreeBytes() == before);
}

// test_alloc_host, test_host_alloc, test_host_register: page-locked host memory is not device
// memory: it is never charged to the quota.
void HostMemory() {
  const long long before = FreeBytes();
  int failures = 0;
  void* a = nullptr;
  void* b = nullptr;
  failures += cuMemAllocHost(&a, 256 * kMiB) != CUDA_SUCCESS;
  failures += cuMemHostAlloc(&b, 256 * kMiB, CU_MEMHOSTALLOC_DEVICEMAP) != CUDA_SUCCESS;
  void* c = std::malloc(256 * kMiB);
  failures += cuMemHostRegister(c, 256 * kMiB, CU_MEMHOSTREGISTER_DEVICEMAP) != CUDA_SUCCESS;
  Print("host_failures", failures);
  Print("host_charged", before - FreeBytes());
  cuMemFreeHost(a);
  cuMemFreeHost(b);
  cuMemHostUnregister(c);
  std::free(c);
}

// test_mem_create: four threads creating physical memory at once all succeed (no deadlock or
// lost charge in the VMM path), and releasing it gives the quota back.
void VmmThreads() {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t granularity = 0;
  cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  const size_t size = (64 * kMiB + granularity - 1) / granularity * granularity;
  CUcontext ctx = nullptr;
  cuCtxGetCurrent(&ctx);
  const long long before = FreeBytes();
  std::atomic<int> failures{0};
  std::vector<CUmemGenericAllocationHandle> handles(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      cuCtxSetCurrent(ctx);
      if (cuMemCreate(&handles[t], size, &prop, 0) != CUDA_SUCCESS) failures.fetch_add(1);
    });
  for (auto& th : threads) th.join();
  Print("vmm_failures", failures.load());
  Print("vmm_charged", before - FreeBytes());
  Print("vmm_size", static_cast<long long>(size));
  for (auto h : handles) cuMemRelease(h);
  Print("vmm_free_restored", FreeBytes() == before);
}

// The child's work in ForkChildren: ten 1 MiB allocations and frees; 0 iff all succeeded.
int ChildAllocations() {
  if (!Start()) return 1;
  for (int i = 0; i < 10; ++i) {
    CUdeviceptr p = 0;
    if (cuMemAlloc(&p, kMiB) != CUDA_SUCCESS || cuMemFree(p) != CUDA_SUCCESS) return 1;
  }
  return 0;
}

// test_alloc_concurrent: a parent that never used CUDA forks four children that each use it;
// every child's allocations succeed and every child finishes.
void ForkChildren() {
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = fork();
    if (pid == 0) _exit(ChildAllocations());
    kids.push_back(pid);
  }
  int ok = 0;
  for (pid_t pid : kids) {
    int status = 0;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  Print("children_ok", ok);
}

// test_fork_child_exit_cleanup: a child made by fork() or by a raw clone(SIGCHLD) (no atfork
// handlers run) that exits normally, running atexit handlers and destructors, must leave the
// parent's membership alone: the parent's charge stays, and it can still allocate.
void ChildExit(bool raw_clone) {
  if (!Start()) return;
  CUdeviceptr held = 0;
  cuMemAlloc(&held, 256 * kMiB);
  const long long before = FreeBytes();
  pid_t pid = raw_clone ? static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr))
                        : fork();
  if (pid == 0) std::exit(0);  // normal exit: atexit handlers and static destructors run
  int status = 0;
  waitpid(pid, &status, 0);
  Print("child_exited", WIFEXITED(status) && WEXITSTATUS(status) == 0);
  Print("parent_charge_kept", FreeBytes() == before);
  CUdeviceptr more = 0;
  Print("parent_allocates", cuMemAlloc(&more, 64 * kMiB) == CUDA_SUCCESS);
  cuMemFree(more);
  std::fflush(stdout);
  // Hold, so that the test can ask the ledger (gpushare-smi) whether this process is still alive.
  if (std::getenv("HAMI_CLIENT_HOLD_S") != nullptr) {
    std::printf("holding 1\n");
    std::fflush(stdout);
    sleep(static_cast<unsigned>(std::atoi(std::getenv("HAMI_CLIENT_HOLD_S"))));
  }
  cuMemFree(held);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hami_client odd_sizes|host|vmm_threads|fork_children|fork_exit|clone_exit\n");
    return 2;
  }
  const std::string scenario = argv[1];
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (scenario == "fork_children") {
    ForkChildren();
    return 0;
  }
  if (scenario == "fork_exit" || scenario == "clone_exit") {
    ChildExit(scenario == "clone_exit");
    return 0;
  }
  if (!Start()) return 0;
  if (scenario == "odd_sizes") OddSizes();
  if (scenario == "host") HostMemory();
  if (scenario == "vmm_threads") VmmThreads();
  return 0;
}
