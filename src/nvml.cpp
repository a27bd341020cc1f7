// SPDX-License-Identifier: Apache-2.0
#include "src/nvml.h"

#include <dlfcn.h>

#include "src/nvml_api.h"
#include "src/real_driver.h"

namespace gpushare {
namespace {

// nvmlProcessInfo_t of nvmlDeviceGetComputeRunningProcesses_v3 (NVML 11.5+).
struct NvmlProcessInfo {
  unsigned int pid;
  unsigned long long used_gpu_memory;
  unsigned int gpu_instance_id;
  unsigned int compute_instance_id;
};

constexpr nvmlReturn_t kNvmlInsufficientSize = 7;
// Processes the list is asked for at most: a ledger holds GS_LEDGER_PROCESS_SLOTS (512) of ours,
// and others may share the GPU.
constexpr unsigned kMaxProcesses = 1024;

struct Nvml {
  nvmlReturn_t (*get_handle_by_uuid)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_memory_info)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*get_processes)(nvmlDevice_t, unsigned int*, NvmlProcessInfo*) = nullptr;
  bool ok = false;
};

template <typename Fn>
void Resolve(void* handle, const char* name, Fn& slot) {
  slot = reinterpret_cast<Fn>(RealDlsym()(handle, name));
}

const Nvml& TheNvml() {
  static const Nvml nvml = [] {
    Nvml n;
    void* handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return n;
    nvmlReturn_t (*init)() = nullptr;
    Resolve(handle, "nvmlInit_v2", init);
    Resolve(handle, "nvmlDeviceGetHandleByUUID", n.get_handle_by_uuid);
    Resolve(handle, "nvmlDeviceGetMemoryInfo", n.get_memory_info);
    Resolve(handle, "nvmlDeviceGetComputeRunningProcesses_v3", n.get_processes);
    n.ok = init != nullptr && n.get_handle_by_uuid != nullptr && init() == kNvmlSuccess;
    return n;
  }();
  return nvml;
}

nvmlDevice_t DeviceByUuid(const Nvml& nvml, const char* uuid) {
  nvmlDevice_t device = nullptr;
  if (!nvml.ok || nvml.get_handle_by_uuid(uuid, &device) != kNvmlSuccess) return nullptr;
  return device;
}

}  // namespace

bool NvmlDeviceUsedBytes(const char* uuid, uint64_t& used) {
  const Nvml& nvml = TheNvml();
  nvmlDevice_t device = DeviceByUuid(nvml, uuid);
  nvmlMemory_t memory{};
  if (device == nullptr || nvml.get_memory_info == nullptr ||
      nvml.get_memory_info(device, &memory) != kNvmlSuccess)
    return false;
  used = memory.used;
  return true;
}

bool NvmlDeviceProcesses(const char* uuid, std::vector<NvmlProcessUse>& out) {
  out.clear();
  const Nvml& nvml = TheNvml();
  nvmlDevice_t device = DeviceByUuid(nvml, uuid);
  if (device == nullptr || nvml.get_processes == nullptr) return false;
  // The list may grow between asking its size and reading it: ask again with the new size. On
  // NVML_ERROR_INSUFFICIENT_SIZE NVML writes only the count, never the entries.
  std::vector<NvmlProcessInfo> infos(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    unsigned int count = static_cast<unsigned int>(infos.size());
    const nvmlReturn_t rc = nvml.get_processes(device, &count, infos.data());
    if (rc == kNvmlSuccess) {
      for (unsigned int i = 0; i < count && i < infos.size(); ++i)
        out.push_back({infos[i].pid, infos[i].used_gpu_memory});
      return true;
    }
    if (rc != kNvmlInsufficientSize || count > kMaxProcesses) return false;
    infos.resize(count + 16);
  }
  return false;
}

bool NvmlProcessUsedBytes(const char* uuid, unsigned int pid, uint64_t& used) {
  std::vector<NvmlProcessUse> processes;
  if (!NvmlDeviceProcesses(uuid, processes)) return false;
  for (const NvmlProcessUse& p : processes) {
    if (p.pid == pid && p.used_bytes != kNvmlUsedUnknown) {
      used = p.used_bytes;
      return true;
    }
  }
  return false;
}

}  // namespace gpushare
