// SPDX-License-Identifier: Apache-2.0
#include "src/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "src/printable.h"

namespace gpushare {
namespace detail {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kWarn)};

namespace {

spdlog::logger& Logger() {
  // Never registered in spdlog's registry: the host program may use spdlog itself, and ours is a
  // separate, hidden copy. Leaked on purpose so that logging works during exit.
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger("gpushare", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("gpushare[%P] %l: %v");
    l->set_level(spdlog::level::trace);  // filtered by g_log_level before formatting
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

}  // namespace

// Lines carry names other processes wrote into the ledger (victims, requesters): printed through
// Printable, a hostile name cannot write escapes or extra lines to a tenant's stderr.
void WriteLog(LogLevel level, std::string_view line) {
  Logger().log(static_cast<spdlog::level::level_enum>(level), Printable(line));
}

}  // namespace detail

void SetLogLevel(LogLevel level) {
  detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace gpushare
