// Logging: spdlog to stderr, level from GPUSHARE_LOG_LEVEL (default warn). The macros test the
// level before formatting, so a disabled line costs one load and a compare. Never log on a hot
// path at the default level.
#pragma once
#include <spdlog/spdlog.h>

namespace gpushare {

spdlog::logger& Logger();
void SetLogLevel(spdlog::level::level_enum level);

}  // namespace gpushare

#define GS_LOG_AT(lvl, ...)                                                       \
  do {                                                                           \
    auto& gs_logger_ = ::gpushare::Logger();                                     \
    if (gs_logger_.should_log(lvl)) gs_logger_.log(lvl, __VA_ARGS__);            \
  } while (0)
#define GS_LOG_TRACE(...) GS_LOG_AT(spdlog::level::trace, __VA_ARGS__)
#define GS_LOG_DEBUG(...) GS_LOG_AT(spdlog::level::debug, __VA_ARGS__)
#define GS_LOG_INFO(...) GS_LOG_AT(spdlog::level::info, __VA_ARGS__)
#define GS_LOG_WARN(...) GS_LOG_AT(spdlog::level::warn, __VA_ARGS__)
#define GS_LOG_ERROR(...) GS_LOG_AT(spdlog::level::err, __VA_ARGS__)
