// SPDX-License-Identifier: Apache-2.0
#include "src/quantity.h"

#include <array>
#include <utility>

namespace gpushare {
namespace {

__extension__ typedef unsigned __int128 u128;
constexpr u128 kMax = UINT64_MAX;

std::optional<u128> SuffixMultiplier(std::string_view s) {
  static constexpr std::array<std::pair<std::string_view, u128>, 13> kSuffixes{{
      {"", 1},
      {"Ki", u128{1} << 10}, {"Mi", u128{1} << 20}, {"Gi", u128{1} << 30},
      {"Ti", u128{1} << 40}, {"Pi", u128{1} << 50}, {"Ei", u128{1} << 60},
      {"k", 1000}, {"M", 1000'000}, {"G", 1000'000'000}, {"T", 1000'000'000'000},
      {"P", 1000'000'000'000'000}, {"E", 1000'000'000'000'000'000},
  }};
  for (const auto& [name, mult] : kSuffixes)
    if (s == name) return mult;
  return std::nullopt;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<uint64_t> ParseQuantity(std::string_view text) {
  size_t i = 0;
  u128 mantissa = 0;
  int fraction_digits = 0;
  int digits = 0;
  auto take_digits = [&](bool fraction) {
    for (; i < text.size() && IsDigit(text[i]); ++i, ++digits) {
      if (mantissa > (kMax * 10)) return false;  // far past any representable byte count
      mantissa = mantissa * 10 + static_cast<unsigned>(text[i] - '0');
      if (fraction) ++fraction_digits;
    }
    return true;
  };
  if (!take_digits(false)) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const int before = digits;
    if (!take_digits(true) || digits == before) return std::nullopt;
  }
  if (digits == 0) return std::nullopt;

  // Decimal exponent ("1e9"), which Kubernetes accepts in place of a suffix.
  int exponent = 0;
  std::string_view suffix = text.substr(i);
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E') && IsDigit(suffix[1])) {
    for (size_t j = 1; j < suffix.size(); ++j) {
      if (!IsDigit(suffix[j]) || exponent > 30) return std::nullopt;
      exponent = exponent * 10 + (suffix[j] - '0');
    }
    suffix = {};
  }
  const std::optional<u128> mult = SuffixMultiplier(suffix);
  if (!mult) return std::nullopt;

  u128 value = mantissa;
  for (int e = 0; e < exponent; ++e) {
    if (value > kMax * 10) return std::nullopt;
    value *= 10;
  }
  if (value != 0 && *mult > (~u128{0}) / value) return std::nullopt;
  value *= *mult;
  u128 divisor = 1;
  for (int f = 0; f < fraction_digits; ++f) divisor *= 10;
  const u128 bytes = (value + divisor - 1) / divisor;
  if (bytes > kMax) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

}  // namespace gpushare
