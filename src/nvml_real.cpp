// SPDX-License-Identifier: Apache-2.0
#include "src/nvml_real.h"

#include <dlfcn.h>

#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare {
namespace {

template <typename Fn>
void Resolve(void* handle, const char* name, Fn& slot) {
  slot = reinterpret_cast<Fn>(RealDlsym()(handle, name));
  if (slot == nullptr) GS_LOG_DEBUG("libnvidia-ml.so.1 has no {}", name);
}

}  // namespace

const RealNvml* RealNvmlApi() {
  static const RealNvml* const real = []() -> const RealNvml* {
    void* handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return nullptr;
    static RealNvml table{};
#define GS_NVML_HOOK(symbol, pfn) Resolve(handle, #symbol, table.symbol);
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
#define GS_NVML_CALL(symbol, pfn) Resolve(handle, #symbol, table.symbol);
#include "src/nvml_calls.inc"
#undef GS_NVML_CALL
    return &table;
  }();
  return real;
}

}  // namespace gpushare
