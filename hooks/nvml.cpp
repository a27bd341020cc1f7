// SPDX-License-Identifier: Apache-2.0
// NVML, as the tenant should see it (hooks/nvml_table.inc): memory figures of its quota, and
// only its own processes. Thin: src/nvml_view.cpp decides. NVML is never linked; the real
// functions come from src/nvml_real.cpp.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "hooks/export.h"
#include "src/nvml_real.h"
#include "src/nvml_view.h"

namespace gpushare {
namespace {

// Type checks: every row's wrapper has the type its PFN names.
#define GS_NVML_HOOK(symbol, pfn) static_assert(std::is_same_v<decltype(&::symbol), pfn>, #symbol);
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK

constexpr unsigned kMaxListed = 4096;

// Calls the real listing with a buffer of our own (growing it while NVML says it is too small),
// keeps the tenant's processes, and hands the caller as many as fit, NVML-style: *count is the
// number kept, and too small a buffer is NVML_ERROR_INSUFFICIENT_SIZE.
template <typename Info, typename Fn>
nvmlReturn_t ListTenantProcesses(Fn real, nvmlDevice_t device, unsigned int* count, Info* infos) {
  if (count == nullptr) return real(device, count, infos);
  const NvmlDeviceView view = ViewOfNvmlDevice(device, 0);
  if (view.status != kNvmlSuccess) return view.status;
  if (!view.limited) return real(device, count, infos);
  std::vector<Info> all(64);
  unsigned int listed = 0;
  nvmlReturn_t rc = kNvmlErrorInsufficientSize;
  while (rc == kNvmlErrorInsufficientSize && all.size() <= kMaxListed) {
    listed = static_cast<unsigned int>(all.size());
    rc = real(device, &listed, all.data());
    if (rc == kNvmlErrorInsufficientSize) all.resize(std::max<size_t>(all.size() * 2, listed + 16));
  }
  if (rc != kNvmlSuccess) return rc;
  const ProcessAttribution attribution;
  unsigned int kept = 0;
  for (unsigned int i = 0; i < listed && i < all.size(); ++i)
    if (attribution.Belongs(all[i].pid, view.processes)) all[kept++] = all[i];
  const unsigned int room = infos == nullptr ? 0 : *count;
  for (unsigned int i = 0; i < kept && i < room; ++i) infos[i] = all[i];
  *count = kept;
  return kept > room ? kNvmlErrorInsufficientSize : kNvmlSuccess;
}

template <typename Memory>
nvmlReturn_t ClampMemory(nvmlDevice_t device, Memory* memory) {
  const NvmlDeviceView view = ViewOfNvmlDevice(device, memory->total);
  if (view.status != kNvmlSuccess) return view.status;
  if (!view.limited) return kNvmlSuccess;
  const NvmlMemoryFigures shown = ClampNvmlMemory(view, {memory->total, memory->free, memory->used});
  memory->total = shown.total;
  memory->free = shown.free;
  memory->used = shown.used;
  // The driver's own reservation belongs to the device, not to the tenant's quota.
  if constexpr (requires { memory->reserved; }) memory->reserved = 0;
  return kNvmlSuccess;
}

}  // namespace
}  // namespace gpushare

using gpushare::kNvmlErrorLibraryNotFound;
using gpushare::kNvmlSuccess;

#define GS_NVML_REAL_OR_FAIL(symbol)                                                \
  const gpushare::RealNvml* real = gpushare::RealNvmlApi();                                \
  if (real == nullptr) return kNvmlErrorLibraryNotFound;                            \
  if (real->symbol == nullptr) return gpushare::kNvmlErrorFunctionNotFound

GS_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  GS_NVML_REAL_OR_FAIL(nvmlDeviceGetMemoryInfo);
  const nvmlReturn_t rc = real->nvmlDeviceGetMemoryInfo(device, memory);
  if (rc != kNvmlSuccess || memory == nullptr) return rc;
  return gpushare::ClampMemory(device, memory);
}

GS_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  GS_NVML_REAL_OR_FAIL(nvmlDeviceGetMemoryInfo_v2);
  const nvmlReturn_t rc = real->nvmlDeviceGetMemoryInfo_v2(device, memory);
  if (rc != kNvmlSuccess || memory == nullptr) return rc;
  return gpushare::ClampMemory(device, memory);
}

#define GS_NVML_PROCESS_LIST(symbol, Info)                                                  \
  GS_EXPORT nvmlReturn_t symbol(nvmlDevice_t device, unsigned int* infoCount, Info* infos) { \
    const gpushare::RealNvml* real = gpushare::RealNvmlApi();                                      \
    if (real == nullptr) return kNvmlErrorLibraryNotFound;                                  \
    if (real->symbol == nullptr) return gpushare::kNvmlErrorFunctionNotFound;               \
    return gpushare::ListTenantProcesses<Info>(real->symbol, device, infoCount, infos);      \
  }
GS_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, nvmlProcessInfo_v1_t)
GS_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v2, nvmlProcessInfo_v2_t)
GS_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v3, nvmlProcessInfo_v2_t)
GS_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, nvmlProcessInfo_v1_t)
GS_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v2, nvmlProcessInfo_v2_t)
GS_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v3, nvmlProcessInfo_v2_t)
#undef GS_NVML_PROCESS_LIST

// The list-in-a-struct form (R550+): the same filtering through a list of our own.
GS_EXPORT nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(nvmlDevice_t device, nvmlProcessDetailList_v1_t* plist) {
  GS_NVML_REAL_OR_FAIL(nvmlDeviceGetRunningProcessDetailList);
  if (plist == nullptr) return real->nvmlDeviceGetRunningProcessDetailList(device, plist);
  auto list_as_count = [&](nvmlDevice_t dev, unsigned int* count, nvmlProcessDetail_v1_t* infos) {
    nvmlProcessDetailList_v1_t ours = *plist;
    ours.numProcArrayEntries = *count;
    ours.procArray = infos;
    const nvmlReturn_t rc = real->nvmlDeviceGetRunningProcessDetailList(dev, &ours);
    *count = ours.numProcArrayEntries;
    return rc;
  };
  return gpushare::ListTenantProcesses<nvmlProcessDetail_v1_t>(list_as_count, device,
                                                               &plist->numProcArrayEntries, plist->procArray);
}
