// SPDX-License-Identifier: Apache-2.0
#include "src/runtime.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare {
namespace detail {

std::atomic<int> g_init_state{kNotYet};

namespace {

Options g_options;
CUresult g_refusal = CUDA_SUCCESS;

void ParseOnce() {
  g_options = ParseOptions([](const char* name) { return std::getenv(name); });
  if (!g_options.errors.empty()) {
    // Written directly, not through the logger: GPUSHARE_LOG_LEVEL may be the bad one, or off.
    for (const std::string& error : g_options.errors)
      fmt::print(stderr, "gpushare: {}; CUDA calls will fail until it is fixed\n", error);
    std::fflush(stderr);
    return;
  }
  SetLogLevel(g_options.log_level);
  for (const std::string& note : g_options.notes) GS_LOG_INFO("{}", note);
}

void InitOnce() {
  if (!ParsedOptions().errors.empty()) {
    g_refusal = CUDA_ERROR_NOT_PERMITTED;
    g_init_state.store(kRefused, std::memory_order_release);
    return;
  }
  if (!LoadRealDriver()) {
    g_refusal = CUDA_ERROR_NOT_INITIALIZED;
    g_init_state.store(kRefused, std::memory_order_release);
    return;
  }
  GS_LOG_DEBUG("initialised");
  g_init_state.store(kReady, std::memory_order_release);
}

}  // namespace

CUresult InitSlow() {
  static std::once_flag once;
  std::call_once(once, InitOnce);
  return g_init_state.load(std::memory_order_acquire) == kReady ? CUDA_SUCCESS : g_refusal;
}

}  // namespace detail

const Options& Opts() { return detail::g_options; }

const Options& ParsedOptions() {
  static std::once_flag once;
  std::call_once(once, detail::ParseOnce);
  return detail::g_options;
}

}  // namespace gpushare
