// SPDX-License-Identifier: Apache-2.0
#include "src/hami_grammar.h"

namespace gpushare {
namespace {

__extension__ typedef unsigned __int128 u128;
constexpr u128 kMax = UINT64_MAX;
// Fraction digits kept exactly: 10^27 << 30 still fits 128 bits. More is refused (no one writes
// a limit to 10^-27 of a GiB).
constexpr int kMaxFractionDigits = 27;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// isspace in the C locale, which is what HAMi-core trims.
bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsBlank(text.back())) text.remove_suffix(1);
  return text;
}

void SkipBlanks(std::string_view text, size_t& i) {
  while (i < text.size() && IsBlank(text[i])) ++i;
}

// digits [ "." digits ], base 10: a leading zero is not octal, "0x" is not hex, no sign.
struct Decimal {
  u128 whole = 0;
  u128 fraction = 0;  // the digits after the point, as an integer
  int fraction_digits = 0;
};

std::optional<Decimal> TakeDecimal(std::string_view text, size_t& i) {
  Decimal d;
  const size_t start = i;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    d.whole = d.whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (d.whole > kMax) return std::nullopt;
  }
  if (i == start) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t fraction_start = i;
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      if (++d.fraction_digits > kMaxFractionDigits) return std::nullopt;
      d.fraction = d.fraction * 10 + static_cast<unsigned>(text[i] - '0');
    }
    if (i == fraction_start) return std::nullopt;  // "4.G"
  }
  return d;
}

// "" → 0; k, m, g (either case), then an optional "i", then an optional "b" → 10, 20, 30.
std::optional<int> UnitShift(std::string_view unit) {
  if (unit.empty()) return 0;
  int shift = 0;
  switch (Lower(unit[0])) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    default: return std::nullopt;
  }
  unit.remove_prefix(1);
  if (!unit.empty() && Lower(unit[0]) == 'i') unit.remove_prefix(1);
  if (!unit.empty() && Lower(unit[0]) == 'b') unit.remove_prefix(1);
  if (!unit.empty()) return std::nullopt;
  return shift;
}

u128 Pow10(int n) {
  u128 p = 1;
  for (int k = 0; k < n; ++k) p *= 10;
  return p;
}

}  // namespace

std::optional<uint64_t> ParseHamiBytes(std::string_view text) {
  text = Trim(text);
  size_t i = 0;
  const std::optional<Decimal> number = TakeDecimal(text, i);
  if (!number) return std::nullopt;
  SkipBlanks(text, i);
  const std::optional<int> shift = UnitShift(text.substr(i));
  if (!shift) return std::nullopt;
  if (number->fraction_digits > 0 && *shift == 0) return std::nullopt;  // a fraction of a byte
  const u128 bytes = (number->whole << *shift) + ((number->fraction << *shift) / Pow10(number->fraction_digits));
  if (bytes > kMax) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::optional<uint64_t> ParseHamiPercent(std::string_view text) {
  text = Trim(text);
  size_t i = 0;
  const std::optional<Decimal> number = TakeDecimal(text, i);
  if (!number) return std::nullopt;
  SkipBlanks(text, i);
  if (i < text.size() && text[i] == '%') ++i;
  if (i != text.size()) return std::nullopt;
  return static_cast<uint64_t>(number->whole);
}

std::optional<uint32_t> ParseHamiPriority(std::string_view text) {
  text = Trim(text);
  size_t i = 0;
  const std::optional<Decimal> number = TakeDecimal(text, i);
  if (!number || number->fraction_digits > 0 || i != text.size() || number->whole > INT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(number->whole);
}

HamiCorePolicy ParseHamiCorePolicy(std::string_view text, bool* recognised) {
  HamiCorePolicy policy = HamiCorePolicy::kDefault;
  bool known = text == "default" || text == "DEFAULT";
  if (text == "force" || text == "FORCE") {
    policy = HamiCorePolicy::kForce;
    known = true;
  } else if (text == "disable" || text == "DISABLE") {
    policy = HamiCorePolicy::kDisable;
    known = true;
  }
  if (recognised != nullptr) *recognised = known;
  return policy;
}

}  // namespace gpushare
