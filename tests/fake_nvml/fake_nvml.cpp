// SPDX-License-Identifier: Apache-2.0
// A fake libnvidia-ml.so.1 for the tests: the devices of the fake CUDA driver (same sizes from
// GPUSHARE_FAKE_DEVICES, same UUIDs), with the device-wide use and the process list a test sets:
//   GPUSHARE_FAKE_DEVICES         comma list of device sizes (16Gi, 512Mi, bytes; default 16Gi)
//   GPUSHARE_FAKE_NVML_USED       comma list of bytes used per device (default 0)
//   GPUSHARE_FAKE_NVML_PROCESSES  comma list of device:pid:bytes, the running compute processes
//   GPUSHARE_FAKE_NVML_LIVE=1     add the fake driver's processes (GPUSHARE_FAKE_STATE_DIR, read at
//                                 every query) to both: each one's memory in the device's used
//                                 memory, and each process with a finished context in the list,
//                                 with its memory, as the real NVML shows every process
//   GPUSHARE_FAKE_NVML_PID_OFFSET added to those pids (as a container's processes show to NVML
//                                 with host pids)
// Read at nvmlInit. Implements every row of hooks/nvml_table.inc (the build fails otherwise) and
// what gpushare and the test clients call besides.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "src/nvml_api.h"
#include "tests/fake_driver/phys_file.h"

#define FAKE_API extern "C" __attribute__((visibility("default")))

namespace {

constexpr nvmlReturn_t kUninitialized = 1;
constexpr nvmlReturn_t kInvalidArgument = 2;
constexpr nvmlReturn_t kNotFound = 6;
constexpr nvmlReturn_t kInsufficientSize = 7;
constexpr nvmlReturn_t kArgumentVersionMismatch = 25;

struct Process {
  unsigned int pid;
  unsigned long long used;
};
struct Device {
  unsigned int index;
  unsigned long long total;
  unsigned long long used;
  char uuid[64];
  std::vector<Process> processes;
};
std::vector<Device> g_devices;
int g_init_count = 0;
std::string g_live_dir;  // GPUSHARE_FAKE_STATE_DIR under GPUSHARE_FAKE_NVML_LIVE=1, else empty
unsigned int g_pid_offset = 0;

// The fake driver's live processes on a device (none when not live or not yet created).
std::vector<Process> LiveProcesses(unsigned int device, unsigned long long* used_sum) {
  std::vector<Process> out;
  *used_sum = 0;
  if (g_live_dir.empty()) return out;
  const int fd = open(fakecuda::phys_file::PathOf(g_live_dir, static_cast<int>(device)).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  static fakecuda::phys_file::SharedFile file;
  while (flock(fd, LOCK_SH) != 0 && errno == EINTR) {
  }
  const bool whole = pread(fd, &file, sizeof file, 0) == static_cast<ssize_t>(sizeof file);
  flock(fd, LOCK_UN);
  close(fd);
  if (!whole || file.magic != fakecuda::phys_file::kMagic) return out;
  for (const auto& slot : file.slots) {
    if (slot.pid == 0 || (kill(slot.pid, 0) != 0 && errno == ESRCH)) continue;
    *used_sum += slot.bytes;
    if (slot.contexts > 0) out.push_back({static_cast<unsigned int>(slot.pid) + g_pid_offset, slot.bytes});
  }
  return out;
}

uint64_t ParseBytes(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  const std::string suffix(end);
  if (suffix == "Ki") return v << 10;
  if (suffix == "Mi") return v << 20;
  if (suffix == "Gi") return v << 30;
  return v;
}

std::vector<std::string> Split(const char* text, char sep) {
  std::vector<std::string> parts;
  if (text == nullptr || *text == '\0') return parts;
  std::string s = text;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

void Load() {
  g_devices.clear();
  const char* live = std::getenv("GPUSHARE_FAKE_NVML_LIVE");
  const char* dir = std::getenv("GPUSHARE_FAKE_STATE_DIR");
  g_live_dir = live != nullptr && std::strcmp(live, "1") == 0 && dir != nullptr ? dir : "";
  const char* offset = std::getenv("GPUSHARE_FAKE_NVML_PID_OFFSET");
  g_pid_offset = offset != nullptr ? static_cast<unsigned int>(std::strtoul(offset, nullptr, 10)) : 0;
  std::vector<std::string> sizes = Split(std::getenv("GPUSHARE_FAKE_DEVICES"), ',');
  if (sizes.empty()) sizes.push_back("16Gi");
  const std::vector<std::string> used = Split(std::getenv("GPUSHARE_FAKE_NVML_USED"), ',');
  for (size_t i = 0; i < sizes.size(); ++i) {
    Device d{};
    d.index = static_cast<unsigned int>(i);
    d.total = ParseBytes(sizes[i]);
    d.used = i < used.size() ? ParseBytes(used[i]) : 0;
    // The fake CUDA driver's UUID bytes: "gsfk", zeros, the index last.
    std::snprintf(d.uuid, sizeof d.uuid, "GPU-6773666b-0000-0000-0000-0000000000%02x", static_cast<unsigned>(i));
    g_devices.push_back(d);
  }
  for (const std::string& entry : Split(std::getenv("GPUSHARE_FAKE_NVML_PROCESSES"), ',')) {
    const std::vector<std::string> f = Split(entry.c_str(), ':');
    if (f.size() != 3) continue;
    const size_t dev = std::strtoul(f[0].c_str(), nullptr, 10);
    if (dev < g_devices.size())
      g_devices[dev].processes.push_back({static_cast<unsigned int>(std::strtoul(f[1].c_str(), nullptr, 10)), ParseBytes(f[2])});
  }
}

Device* Lookup(nvmlDevice_t device) {
  if (g_init_count == 0) return nullptr;
  for (Device& d : g_devices)
    if (reinterpret_cast<nvmlDevice_t>(&d) == device) return &d;
  return nullptr;
}

template <typename Info>
nvmlReturn_t List(nvmlDevice_t device, unsigned int* count, Info* infos) {
  if (g_init_count == 0) return kUninitialized;
  const Device* d = Lookup(device);
  if (d == nullptr || count == nullptr) return kInvalidArgument;
  unsigned long long live_used = 0;
  std::vector<Process> processes = d->processes;
  for (const Process& p : LiveProcesses(d->index, &live_used)) processes.push_back(p);
  const unsigned int n = static_cast<unsigned int>(processes.size());
  if (*count < n || (n > 0 && infos == nullptr)) {
    *count = n;
    return kInsufficientSize;
  }
  for (unsigned int i = 0; i < n; ++i) {
    Info info{};
    info.pid = processes[i].pid;
    info.usedGpuMemory = processes[i].used;
    infos[i] = info;
  }
  *count = n;
  return 0;
}

template <typename Memory>
nvmlReturn_t MemoryInfo(nvmlDevice_t device, Memory* memory) {
  if (g_init_count == 0) return kUninitialized;
  const Device* d = Lookup(device);
  if (d == nullptr || memory == nullptr) return kInvalidArgument;
  unsigned long long live_used = 0;
  LiveProcesses(d->index, &live_used);
  const unsigned long long used = std::min(d->total, d->used + live_used);
  memory->total = d->total;
  memory->used = used;
  memory->free = d->total - used;
  return 0;
}

}  // namespace

FAKE_API nvmlReturn_t nvmlInit_v2() {
  if (g_init_count++ == 0) Load();
  return 0;
}
FAKE_API nvmlReturn_t nvmlInit() { return nvmlInit_v2(); }
FAKE_API nvmlReturn_t nvmlShutdown() {
  if (g_init_count == 0) return kUninitialized;
  --g_init_count;
  return 0;
}
FAKE_API const char* nvmlErrorString(nvmlReturn_t rc) { return rc == 0 ? "Success" : "fake NVML error"; }

FAKE_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (g_init_count == 0) return kUninitialized;
  *count = static_cast<unsigned int>(g_devices.size());
  return 0;
}
FAKE_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (g_init_count == 0) return kUninitialized;
  if (index >= g_devices.size() || device == nullptr) return kInvalidArgument;
  *device = reinterpret_cast<nvmlDevice_t>(&g_devices[index]);
  return 0;
}
FAKE_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  if (g_init_count == 0) return kUninitialized;
  for (Device& d : g_devices) {
    if (std::strcmp(d.uuid, uuid) == 0) {
      *device = reinterpret_cast<nvmlDevice_t>(&d);
      return 0;
    }
  }
  return kNotFound;
}
FAKE_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  const Device* d = Lookup(device);
  if (d == nullptr) return g_init_count == 0 ? kUninitialized : kInvalidArgument;
  if (length <= std::strlen(d->uuid)) return kInsufficientSize;
  std::strcpy(uuid, d->uuid);
  return 0;
}
FAKE_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  const Device* d = Lookup(device);
  if (d == nullptr) return g_init_count == 0 ? kUninitialized : kInvalidArgument;
  *index = d->index;
  return 0;
}

FAKE_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  return MemoryInfo(device, memory);
}
FAKE_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  if (memory != nullptr && memory->version != (sizeof(nvmlMemory_v2_t) | (2u << 24))) return kArgumentVersionMismatch;
  const nvmlReturn_t rc = MemoryInfo(device, memory);
  if (rc == 0) memory->reserved = 0;
  return rc;
}
FAKE_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v1_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v2_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v2_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v1_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v2_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* c, nvmlProcessInfo_v2_t* i) { return List(d, c, i); }
FAKE_API nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(nvmlDevice_t device, nvmlProcessDetailList_v1_t* plist) {
  if (plist == nullptr) return kInvalidArgument;
  if (plist->version != (sizeof(nvmlProcessDetailList_v1_t) | (1u << 24))) return kArgumentVersionMismatch;
  if (plist->mode == 1) {  // graphics: none
    plist->numProcArrayEntries = 0;
    return g_init_count == 0 ? kUninitialized : 0;
  }
  return List(device, &plist->numProcArrayEntries, plist->procArray);
}

// Completeness: every hooked NVML symbol is defined here with the type the table names.
#define GS_NVML_HOOK(symbol, pfn) static_assert(std::is_same_v<decltype(&::symbol), pfn>, #symbol);
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
#define GS_NVML_CALL(symbol, pfn) static_assert(std::is_same_v<decltype(&::symbol), pfn>, #symbol);
#include "src/nvml_calls.inc"
#undef GS_NVML_CALL

// Referenced, so a row without a definition here fails the link (-Wl,--no-undefined).
FAKE_API int fakenvml_covered_symbol_count() {
  static void* const kCovered[] = {
#define GS_NVML_HOOK(symbol, pfn) reinterpret_cast<void*>(&::symbol),
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
  };
  return static_cast<int>(sizeof kCovered / sizeof kCovered[0]);
}
