// SPDX-License-Identifier: Apache-2.0
// The real definition that dlsym_shim.cpp's compat_layered forwards to: a library the test
// program links, so it comes after every preloaded object in the search order.
#define COMPAT_EXPORT extern "C" __attribute__((visibility("default")))

COMPAT_EXPORT int compat_layered() { return 1; }
