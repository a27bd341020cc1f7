// SPDX-License-Identifier: Apache-2.0
// A plugin the test dlopens with RTLD_LOCAL. Its dependency (dlsym_plugin_dep.cpp) is loaded
// with it, so it is in the plugin's local scope only: glibc finds what it defines for the
// plugin's RTLD_NEXT and RTLD_DEFAULT look-ups, and for nobody else's. It also needs libcuda
// (tests/compat/CMakeLists.txt), as a CUDA plugin would.
#include <dlfcn.h>

#define COMPAT_EXPORT extern "C" __attribute__((visibility("default")))

COMPAT_EXPORT void* compat_plugin_next(const char* name) { return dlsym(RTLD_NEXT, name); }
COMPAT_EXPORT void* compat_plugin_default(const char* name) { return dlsym(RTLD_DEFAULT, name); }
