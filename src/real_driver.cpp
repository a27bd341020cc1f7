// SPDX-License-Identifier: Apache-2.0
#include "src/real_driver.h"

#include <dlfcn.h>

#include <mutex>

#include "src/log.h"

namespace gpushare {

RealDriver detail::g_real_driver{};

namespace {

RealDriver& g_real = detail::g_real_driver;
bool g_loaded = false;

// Resolve one symbol from the driver's own handle: a handle-scoped lookup never sees our
// LD_PRELOADed definitions, so a wrapper cannot end up calling itself.
template <typename Fn>
void Resolve(void* handle, const char* name, Fn& slot, int& missing) {
  slot = reinterpret_cast<Fn>(RealDlsym()(handle, name));
  if (slot == nullptr) {
    ++missing;
    GS_LOG_DEBUG("the driver has no {}", name);
  }
}

void LoadOnce() {
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    GS_LOG_ERROR("cannot load the CUDA driver libcuda.so.1: {}", dlerror());
    return;
  }
  int missing = 0;
#define GS_HOOK(name, since, stream, symbol, pfn) Resolve(handle, #symbol, g_real.symbol, missing);
#include "hooks/hook_table.inc"
#undef GS_HOOK
#define GS_CALL(symbol, pfn) Resolve(handle, #symbol, g_real.symbol, missing);
#include "src/driver_calls.inc"
#undef GS_CALL
  if (g_real.cuInit == nullptr || g_real.cuGetProcAddress_v2 == nullptr) {
    GS_LOG_ERROR("libcuda.so.1 lacks cuInit or cuGetProcAddress_v2: driver too old (need CUDA 12+)");
    return;
  }
  if (missing > 0) GS_LOG_INFO("{} driver entry points are absent (older driver); their hooks pass through", missing);
  g_loaded = true;
}

}  // namespace

bool LoadRealDriver() {
  static std::once_flag once;
  std::call_once(once, LoadOnce);
  return g_loaded;
}

DlsymFn RealDlsym() {
  // dlsym can be called before our constructors run: resolve on first use, not at load.
  static DlsymFn real = [] {
    auto fn = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34"));
    if (fn == nullptr) fn = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5"));
    return fn;
  }();
  return real;
}

}  // namespace gpushare
