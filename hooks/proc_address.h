// SPDX-License-Identifier: Apache-2.0
// The name-to-wrapper table of hooks/proc_address.cpp, for our dlsym (hooks/dlsym.cpp).
#pragma once

namespace gpushare {

// Our wrapper of the driver's (or NVML's) exported `symbol`, or null when we do not wrap it.
void* WrapperOfExport(const char* symbol);

}  // namespace gpushare
