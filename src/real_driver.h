// SPDX-License-Identifier: Apache-2.0
// The only code that talks to the real libcuda: it finds the driver at run time (no link-time
// dependency), once, and holds a pointer to every real function the library wraps or calls.
#pragma once
#include "src/cuda_api.h"

namespace gpushare {

struct RealDriver {
#define GS_HOOK(name, since, stream, symbol, pfn) pfn symbol;
#include "hooks/hook_table.inc"
#undef GS_HOOK
#define GS_CALL(symbol, pfn) pfn symbol;
#include "src/driver_calls.inc"
#undef GS_CALL
};

namespace detail {
extern RealDriver g_real_driver;
}

// Filled by LoadRealDriver(); read-only afterwards. Inline: a wrapper's arguments stay in their
// registers on the way to the real function (an out-of-line call would make it save all of them).
inline const RealDriver& Real() { return detail::g_real_driver; }

// dlopen("libcuda.so.1") and resolve every row; thread-safe, runs once. Returns false (and
// logs why) when no driver is found; wrappers then return CUDA_ERROR_NOT_INITIALIZED.
bool LoadRealDriver();

// glibc's dlsym, found with dlvsym so that our exported dlsym never calls itself.
using DlsymFn = void* (*)(void*, const char*);
DlsymFn RealDlsym();

}  // namespace gpushare
