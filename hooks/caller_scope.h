// SPDX-License-Identifier: Apache-2.0
// glibc answers dlsym(RTLD_NEXT, name) with the first definition in an object loaded after the
// caller's. Our dlsym forwards every other look-up to glibc with the caller intact (hooks/dlsym.cpp);
// for the driver's entry points, which it answers itself, this finds that definition with public
// interfaces only: the caller's object from its return address (dladdr1), the objects after it
// read under dl_iterate_phdr's lock, then a look-up on each one's own handle.
#pragma once

namespace gpushare {

struct NextDefinition {
  void* address = nullptr;      // the first definition after the caller's object, or null
  bool in_our_namespace = true;  // false: the caller is in another dlmopen namespace (not searched)
};

NextDefinition FindNextDefinition(const void* caller_address, const char* symbol);

}  // namespace gpushare
