// SPDX-License-Identifier: Apache-2.0
// How programs find the driver's entry points, answered with our wrappers: our own
// cuGetProcAddress / cuGetProcAddress_v2 (how cudart 11.3+ gets nearly every entry point), and the
// name-to-wrapper table our dlsym answers from (hooks/dlsym.cpp). Both are derived from
// hooks/hook_table.inc (and hooks/nvml_table.inc).
#include "hooks/proc_address.h"

#include <cstring>

#include "hooks/export.h"
#include "src/log.h"
#include "src/nvml_api.h"

namespace gpushare {
namespace {

struct Row {
  const char* name;
  int since;
  StreamFlavour stream;
  const char* symbol;
  void* wrapper;
};

// Built on first use rather than at load: dlsym can be called before our constructors run.
const Row* Rows(size_t& count) {
  static const Row kRows[] = {
#define GS_HOOK(name, since, stream, symbol, pfn) \
  {#name, since, stream, #symbol, reinterpret_cast<void*>(&::symbol)},
#include "hooks/hook_table.inc"
#undef GS_HOOK
  };
  count = sizeof kRows / sizeof kRows[0];
  return kRows;
}

void* WrapperForSymbol(const char* symbol) {
  size_t count = 0;
  const Row* rows = Rows(count);
  for (size_t i = 0; i < count; ++i)
    if (std::strcmp(rows[i].symbol, symbol) == 0) return rows[i].wrapper;
  return nullptr;
}

// NVML's intercepted entry points (hooks/nvml_table.inc), for look-ups on libnvidia-ml's handle.
void* NvmlWrapperForSymbol(const char* symbol) {
#define GS_NVML_HOOK(sym, pfn) \
  if (std::strcmp(symbol, #sym) == 0) return reinterpret_cast<void*>(&::sym);
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
  return nullptr;
}

}  // namespace

void* WrapperOfExport(const char* symbol) {
  if (symbol[0] == 'c' && symbol[1] == 'u') return WrapperForSymbol(symbol);
  if (std::strncmp(symbol, "nvml", 4) == 0) return NvmlWrapperForSymbol(symbol);
  return nullptr;
}

namespace {

// The row cuGetProcAddress(name, version, flags) means: the right stream flavour, and the
// highest `since` not above the requested version.
const Row* RowForRequest(const char* name, int version, cuuint64_t flags) {
  const StreamFlavour wanted =
      (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0 ? kPerThread : kLegacy;
  size_t count = 0;
  const Row* rows = Rows(count);
  const Row* best = nullptr;
  for (size_t i = 0; i < count; ++i) {
    const Row& r = rows[i];
    if (r.since > version || std::strcmp(r.name, name) != 0) continue;
    if (r.stream != kAnyStream && r.stream != wanted) continue;
    if (best == nullptr || r.since > best->since) best = &r;
  }
  return best;
}

// The real function of a row, to compare with what the driver answered.
void* RealForSymbol(const char* symbol) {
#define GS_HOOK(name, since, stream, sym, pfn) \
  if (std::strcmp(symbol, #sym) == 0) return reinterpret_cast<void*>(Real().sym);
#include "hooks/hook_table.inc"
#undef GS_HOOK
  return nullptr;
}

// The driver decides whether the symbol exists at that version (and fills symbolStatus); we
// only swap in our wrapper of the same ABI. Past the CUDA version our table was written for, a
// name may have gained a new ABI we do not know: wrap only if the driver answered the very
// function we wrap, else pass it through.
void SubstituteWrapper(const char* symbol, void** pfn, int version, cuuint64_t flags) {
  const Row* row = RowForRequest(symbol, version, flags);
  if (row == nullptr) return;
  if (version > CUDA_VERSION && *pfn != RealForSymbol(row->symbol)) {
    GS_LOG_DEBUG("{} at version {}: unknown ABI, passed through", symbol, version);
    return;
  }
  *pfn = row->wrapper;
}

}  // namespace
}  // namespace gpushare

using gpushare::Real;

GS_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                       cuuint64_t flags,
                                       CUdriverProcAddressQueryResult* symbolStatus) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, symbolStatus);
  if (rc == CUDA_SUCCESS && symbol != nullptr && pfn != nullptr && *pfn != nullptr)
    gpushare::SubstituteWrapper(symbol, pfn, cudaVersion, flags);
  return rc;
}

GS_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion,
                                    cuuint64_t flags) {
  GS_ENSURE_INIT();
  // A driver without the v1 entry answers through v2, which takes the same arguments.
  const CUresult rc = Real().cuGetProcAddress != nullptr
                          ? Real().cuGetProcAddress(symbol, pfn, cudaVersion, flags)
                          : Real().cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nullptr);
  if (rc == CUDA_SUCCESS && symbol != nullptr && pfn != nullptr && *pfn != nullptr)
    gpushare::SubstituteWrapper(symbol, pfn, cudaVersion, flags);
  return rc;
}
