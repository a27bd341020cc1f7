// SPDX-License-Identifier: Apache-2.0
// An NVML program for the end-to-end tests (an nvidia-smi stand-in), run with
// LD_PRELOAD=libgpushare.so against the fake NVML. Usage: nvml_client MODE, MODE in
//   link    calls the functions it is linked with
//   dlsym   dlsym(RTLD_DEFAULT, name)
//   dlopen  dlsym(dlopen("libnvidia-ml.so.1"), name), as pynvml (ctypes) does
// For each device d it prints "dev<d>_<key> value" lines: memory through v1 and v2, and the
// compute processes through every listing entry point (comma-separated pids).
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/nvml_api.h"

extern "C" {
nvmlReturn_t nvmlInit_v2();
nvmlReturn_t nvmlShutdown();
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device);
}

namespace {

struct Api {
  PFN_nvmlDeviceGetMemoryInfo memory_v1;
  PFN_nvmlDeviceGetMemoryInfo_v2 memory_v2;
  PFN_nvmlDeviceGetComputeRunningProcesses procs_v1;
  PFN_nvmlDeviceGetComputeRunningProcesses_v2 procs_v2;
  PFN_nvmlDeviceGetComputeRunningProcesses_v3 procs_v3;
  PFN_nvmlDeviceGetMPSComputeRunningProcesses_v3 mps_v3;
  PFN_nvmlDeviceGetRunningProcessDetailList detail;
};

template <typename Fn>
void Find(void* handle, const char* name, Fn& slot) {
  slot = reinterpret_cast<Fn>(dlsym(handle, name));
  if (slot == nullptr) std::printf("missing %s\n", name);
}

Api Resolve(const std::string& mode) {
  if (mode == "link")
    return {&nvmlDeviceGetMemoryInfo, &nvmlDeviceGetMemoryInfo_v2, &nvmlDeviceGetComputeRunningProcesses,
            &nvmlDeviceGetComputeRunningProcesses_v2, &nvmlDeviceGetComputeRunningProcesses_v3,
            &nvmlDeviceGetMPSComputeRunningProcesses_v3, &nvmlDeviceGetRunningProcessDetailList};
  void* handle = mode == "dlsym" ? RTLD_DEFAULT : dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  Api api{};
  Find(handle, "nvmlDeviceGetMemoryInfo", api.memory_v1);
  Find(handle, "nvmlDeviceGetMemoryInfo_v2", api.memory_v2);
  Find(handle, "nvmlDeviceGetComputeRunningProcesses", api.procs_v1);
  Find(handle, "nvmlDeviceGetComputeRunningProcesses_v2", api.procs_v2);
  Find(handle, "nvmlDeviceGetComputeRunningProcesses_v3", api.procs_v3);
  Find(handle, "nvmlDeviceGetMPSComputeRunningProcesses_v3", api.mps_v3);
  Find(handle, "nvmlDeviceGetRunningProcessDetailList", api.detail);
  return api;
}

// Asks for the count first (no buffer), then lists; prints the probe and the pids.
template <typename Info, typename Fn>
void PrintProcesses(unsigned d, const char* key, Fn list, nvmlDevice_t device) {
  unsigned int count = 0;
  const nvmlReturn_t probe = list(device, &count, nullptr);
  std::printf("dev%u_%s_probe_rc %d\ndev%u_%s_probe_count %u\n", d, key, probe, d, key, count);
  std::vector<Info> infos(count + 4);
  unsigned int n = static_cast<unsigned int>(infos.size());
  const nvmlReturn_t rc = list(device, &n, infos.data());
  std::string pids;
  unsigned long long used = 0;
  for (unsigned int i = 0; rc == 0 && i < n; ++i) {
    pids += (pids.empty() ? "" : ",") + std::to_string(infos[i].pid);
    used += infos[i].usedGpuMemory;
  }
  std::printf("dev%u_%s_rc %d\ndev%u_%s %s\ndev%u_%s_used %llu\n", d, key, rc, d, key,
              pids.empty() ? "none" : pids.c_str(), d, key, used);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const Api api = Resolve(argv[1]);
  if (nvmlInit_v2() != 0) return 3;
  unsigned int count = 0;
  nvmlDeviceGetCount_v2(&count);
  std::printf("devices %u\n", count);
  for (unsigned int d = 0; d < count; ++d) {
    nvmlDevice_t device = nullptr;
    nvmlDeviceGetHandleByIndex_v2(d, &device);
    nvmlMemory_t m1{};
    const nvmlReturn_t rc1 = api.memory_v1(device, &m1);
    std::printf("dev%u_v1_rc %d\ndev%u_v1_total %llu\ndev%u_v1_free %llu\ndev%u_v1_used %llu\n", d, rc1, d,
                m1.total, d, m1.free, d, m1.used);
    nvmlMemory_v2_t m2{};
    m2.version = sizeof(nvmlMemory_v2_t) | (2u << 24);
    const nvmlReturn_t rc2 = api.memory_v2(device, &m2);
    std::printf("dev%u_v2_rc %d\ndev%u_v2_total %llu\ndev%u_v2_free %llu\ndev%u_v2_used %llu\n", d, rc2, d,
                m2.total, d, m2.free, d, m2.used);
    PrintProcesses<nvmlProcessInfo_v1_t>(d, "procs_v1", api.procs_v1, device);
    PrintProcesses<nvmlProcessInfo_v2_t>(d, "procs_v2", api.procs_v2, device);
    PrintProcesses<nvmlProcessInfo_v2_t>(d, "procs_v3", api.procs_v3, device);
    PrintProcesses<nvmlProcessInfo_v2_t>(d, "mps_v3", api.mps_v3, device);
    auto detail = [&](nvmlDevice_t dev, unsigned int* n, nvmlProcessDetail_v1_t* infos) {
      nvmlProcessDetailList_v1_t list{};
      list.version = sizeof(nvmlProcessDetailList_v1_t) | (1u << 24);
      list.mode = 0;
      list.numProcArrayEntries = *n;
      list.procArray = infos;
      const nvmlReturn_t rc = api.detail(dev, &list);
      *n = list.numProcArrayEntries;
      return rc;
    };
    PrintProcesses<nvmlProcessDetail_v1_t>(d, "detail", detail, device);
  }
  nvmlShutdown();
  return 0;
}
