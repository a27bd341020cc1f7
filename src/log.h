// SPDX-License-Identifier: Apache-2.0
// Logging: to stderr through spdlog (src/log.cpp, the only file that includes it), level from
// GPUSHARE_LOG_LEVEL (default warn). The macros test the level before formatting, so a disabled
// line costs a load and a compare. Never log on a hot path at the default level.
#pragma once
#include <fmt/format.h>

#include <atomic>
#include <string_view>

namespace gpushare {

// spdlog's levels, in its order (spdlog::level::level_enum).
enum class LogLevel : int { kTrace = 0, kDebug, kInfo, kWarn, kError, kCritical, kOff };

namespace detail {
extern std::atomic<int> g_log_level;
void WriteLog(LogLevel level, std::string_view line);
}  // namespace detail

inline bool ShouldLog(LogLevel level) {
  return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}
void SetLogLevel(LogLevel level);

}  // namespace gpushare

#define GS_LOG_AT(lvl, ...)                                                               \
  do {                                                                                   \
    if (::gpushare::ShouldLog(lvl)) ::gpushare::detail::WriteLog(lvl, fmt::format(__VA_ARGS__)); \
  } while (0)
#define GS_LOG_TRACE(...) GS_LOG_AT(::gpushare::LogLevel::kTrace, __VA_ARGS__)
#define GS_LOG_DEBUG(...) GS_LOG_AT(::gpushare::LogLevel::kDebug, __VA_ARGS__)
#define GS_LOG_INFO(...) GS_LOG_AT(::gpushare::LogLevel::kInfo, __VA_ARGS__)
#define GS_LOG_WARN(...) GS_LOG_AT(::gpushare::LogLevel::kWarn, __VA_ARGS__)
#define GS_LOG_ERROR(...) GS_LOG_AT(::gpushare::LogLevel::kError, __VA_ARGS__)
