#include "src/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace gpushare {

spdlog::logger& Logger() {
  // Never registered in spdlog's registry: the host program may use spdlog itself, and ours is a
  // separate, hidden copy. Leaked on purpose so that logging works during exit.
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger("gpushare", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("gpushare[%P] %l: %v");
    l->set_level(spdlog::level::warn);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

void SetLogLevel(spdlog::level::level_enum level) { Logger().set_level(level); }

}  // namespace gpushare
