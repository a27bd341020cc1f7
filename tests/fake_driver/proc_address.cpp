// SPDX-License-Identifier: Apache-2.0
// cuGetProcAddress (v1 and v2) answered from proc_table.inc, and cuGetExportTable.
// The table holds the fake's own function addresses (bound inside the library by
// -Bsymbolic-functions), so an LD_PRELOADed wrapper of the same name is never returned.
#include <cstring>

#include "tests/fake_driver/fake_cuda_control.h"
#include "tests/fake_driver/state.h"

namespace {

enum Flavour { kAnyStream, kLegacy, kPerThread };

struct ProcRow {
  const char* name;
  int since;
  Flavour stream;
  void* fn;
};

#define FAKE_PROC(name, since, stream, symbol) {#name, since, stream, reinterpret_cast<void*>(&symbol)},
const ProcRow kProcs[] = {
#include "tests/fake_driver/proc_table.inc"
};
#undef FAKE_PROC

// Best row of one flavour class: highest `since` not above `version`.
const ProcRow* pick(const char* name, int version, bool per_thread) {
  const ProcRow* best = nullptr;
  for (const ProcRow& r : kProcs) {
    if ((r.stream == kPerThread) != per_thread || r.since > version) continue;
    if (std::strcmp(r.name, name) != 0) continue;
    if (best == nullptr || r.since > best->since) best = &r;
  }
  return best;
}

bool name_known(const char* name) {
  for (const ProcRow& r : kProcs) {
    if (std::strcmp(r.name, name) == 0) return true;
  }
  return false;
}

struct ExportTable {
  uint64_t size;
  uint64_t magic;
};
constexpr ExportTable kExportTable = {sizeof(ExportTable), 0x6c6261747066736bull};
constexpr unsigned char kExportTableId[16] = FAKECUDA_EXPORT_TABLE_UUID;

}  // namespace

FAKE_API CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int version,
                                      cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const cuuint64_t known_flags =
      CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if ((flags & ~known_flags) != 0) return CUDA_ERROR_INVALID_VALUE;
  const ProcRow* row = nullptr;
  if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0) {
    row = pick(symbol, version, true);
  }
  if (row == nullptr) row = pick(symbol, version, false);
  if (row == nullptr) {
    *pfn = nullptr;
    if (status != nullptr) {
      *status = name_known(symbol) ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                                   : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    }
    return CUDA_ERROR_NOT_FOUND;
  }
  *pfn = row->fn;
  if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuGetProcAddress(const char* symbol, void** pfn, int version,
                                   cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, pfn, version, flags, nullptr);
}

// Works before cuInit, as the real driver's does (the CUDA runtime asks for tables early).
FAKE_API CUresult cuGetExportTable(const void** table, const CUuuid* id) {
  if (table == nullptr || id == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (const void* callbacks = fakecuda::launch_callback_table(id)) {
    *table = callbacks;
    return CUDA_SUCCESS;
  }
  if (std::memcmp(id->bytes, kExportTableId, sizeof(kExportTableId)) != 0) {
    *table = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *table = &kExportTable;
  return CUDA_SUCCESS;
}
