// SPDX-License-Identifier: Apache-2.0
// Behaves as LLVM OpenMP's libomp does with its weak ompt_start_tool: it asks dlsym(RTLD_NEXT)
// for a tool's definition later in the search order and calls it. Asked relative to another
// object, the answer is this very function, and libomp recurses until the stack overflows (seen
// at `import torch`); here the recursion is reported instead of taken.
#include <dlfcn.h>

#define COMPAT_EXPORT extern "C" __attribute__((visibility("default")))
#define COMPAT_LOCAL extern "C" __attribute__((visibility("hidden")))

using StartToolFn = void* (*)(unsigned, const char*);

namespace {
char recursed;
}

COMPAT_LOCAL void* compat_ompt_start_tool(unsigned omp_version, const char* runtime_version) {
  auto next = reinterpret_cast<StartToolFn>(dlsym(RTLD_NEXT, "ompt_start_tool"));
  if (next == &compat_ompt_start_tool) return &recursed;
  return next != nullptr ? next(omp_version, runtime_version) : nullptr;
}

COMPAT_EXPORT void* ompt_start_tool(unsigned, const char*) __attribute__((weak, alias("compat_ompt_start_tool")));

// For the test: the library's own look-ups, its own definition and the recursion marker.
COMPAT_EXPORT void* compat_ompt_next() { return dlsym(RTLD_NEXT, "ompt_start_tool"); }
COMPAT_EXPORT void* compat_ompt_default() { return dlsym(RTLD_DEFAULT, "ompt_start_tool"); }
COMPAT_EXPORT void* compat_ompt_own() { return reinterpret_cast<void*>(&compat_ompt_start_tool); }
COMPAT_EXPORT void* compat_ompt_recursed() { return &recursed; }
COMPAT_EXPORT void* compat_ompt_start() { return compat_ompt_start_tool(201611, "compat"); }
