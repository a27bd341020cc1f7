// SPDX-License-Identifier: Apache-2.0
// Library start-up: options, logging and the real driver, once, at the first CUDA call.
// Every wrapper starts with GS_ENSURE_INIT(); its fast path is one acquire load and a compare.
#pragma once
#include <atomic>

#include "src/cuda_api.h"
#include "src/options.h"

namespace gpushare {
namespace detail {

enum InitState : int { kNotYet = 0, kReady = 1, kRefused = 2 };
extern std::atomic<int> g_init_state;
[[gnu::cold, gnu::noinline]] CUresult InitSlow();

}  // namespace detail

// CUDA_SUCCESS once the library is ready. Otherwise the error every wrapper returns:
// CUDA_ERROR_NOT_PERMITTED when the configuration is malformed (fail closed: no CUDA work runs
// unconstrained), CUDA_ERROR_NOT_INITIALIZED when no driver can be loaded.
inline CUresult EnsureInit() {
  if (__builtin_expect(detail::g_init_state.load(std::memory_order_acquire) == detail::kReady, 1))
    return CUDA_SUCCESS;
  return detail::InitSlow();
}

// Valid once EnsureInit() has returned CUDA_SUCCESS.
const Options& Opts();

// The options alone, parsed once, without loading the driver (NVML hooks need no CUDA); a
// malformed variable is printed to stderr then, and stays in errors().
const Options& ParsedOptions();

}  // namespace gpushare

#define GS_ENSURE_INIT()                                              \
  do {                                                                \
    const CUresult gs_init_rc_ = ::gpushare::EnsureInit();            \
    if (__builtin_expect(gs_init_rc_ != CUDA_SUCCESS, 0)) return gs_init_rc_; \
  } while (0)
