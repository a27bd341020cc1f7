// SPDX-License-Identifier: Apache-2.0
// Completeness check: every driver symbol gpushare wraps (hooks/hook_table.inc) or calls
// (src/driver_calls.inc) must be defined by the fake with NVIDIA's PFN type. A missing one
// fails the link (--no-undefined); a wrong signature fails the static_assert.
#include <type_traits>

#include "tests/fake_driver/state.h"

#define GS_HOOK(name, since, stream, symbol, pfn) \
  static_assert(std::is_same_v<decltype(&symbol), pfn>, #symbol " does not match " #pfn);
#define GS_CALL(symbol, pfn) \
  static_assert(std::is_same_v<decltype(&symbol), pfn>, #symbol " does not match " #pfn);
#include "hooks/hook_table.inc"
#include "src/driver_calls.inc"
#undef GS_HOOK
#undef GS_CALL

namespace fakecuda {

#define GS_HOOK(name, since, stream, symbol, pfn) reinterpret_cast<void*>(&symbol),
#define GS_CALL(symbol, pfn) reinterpret_cast<void*>(&symbol),
// Referenced from the exported table below, so the linker must resolve every symbol.
extern void* const kCoveredSymbols[];
void* const kCoveredSymbols[] = {
#include "hooks/hook_table.inc"
#include "src/driver_calls.inc"
};
#undef GS_HOOK
#undef GS_CALL

}  // namespace fakecuda

// How many driver symbols the coverage check references (used by the fake's own tests).
FAKE_API int fakecuda_covered_symbol_count(void) {
  return static_cast<int>(sizeof(fakecuda::kCoveredSymbols) / sizeof(void*));
}
