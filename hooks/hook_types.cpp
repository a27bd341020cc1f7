// SPDX-License-Identifier: Apache-2.0
// Every row of hook_table.inc: our wrapper has exactly the driver's PFN type for that ABI.
#include <type_traits>

#include "hooks/export.h"

#define GS_HOOK(name, since, stream, symbol, pfn) \
  static_assert(std::is_same_v<decltype(&::symbol), pfn>, #symbol " does not match " #pfn);
#include "hooks/hook_table.inc"
#undef GS_HOOK
