#include "sm_partition/slice.h"

#include <fmt/format.h>

namespace gpushare::sm {

unsigned TpcMask::Count() const {
  return static_cast<unsigned>(__builtin_popcount(words[0]) + __builtin_popcount(words[1]) +
                               __builtin_popcount(words[2]) + __builtin_popcount(words[3]));
}

TpcMask TpcMask::operator&(const TpcMask& o) const {
  TpcMask r;
  for (int i = 0; i < 4; ++i) r.words[i] = words[i] & o.words[i];
  return r;
}

TpcMask TpcMask::operator|(const TpcMask& o) const {
  TpcMask r;
  for (int i = 0; i < 4; ++i) r.words[i] = words[i] | o.words[i];
  return r;
}

TpcMask TpcMask::operator~() const {
  TpcMask r;
  for (int i = 0; i < 4; ++i) r.words[i] = ~words[i];
  return r;
}

std::string DescribeBits(const TpcMask& mask) {
  std::string out;
  for (unsigned b = 0; b < kTpcBits;) {
    if (!mask.Test(b)) {
      ++b;
      continue;
    }
    unsigned end = b;
    while (end + 1 < kTpcBits && mask.Test(end + 1)) ++end;
    if (!out.empty()) out += ',';
    out += end == b ? fmt::format("{}", b) : fmt::format("{}-{}", b, end);
    b = end + 1;
  }
  return out.empty() ? "-" : out;
}

uint32_t TpcMap::SmsOf(const TpcMask& mask) const {
  uint32_t sms = 0;
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (mask.Test(b) && live.Test(b)) sms += sms_per_bit[b];
  return sms;
}

uint32_t TpcMap::Granularity() const {
  uint32_t step = 0;
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (live.Test(b) && (step == 0 || sms_per_bit[b] < step)) step = sms_per_bit[b];
  return step;
}

std::string TpcMap::Check() const {
  if (!live.Any()) return "no live TPC bit";
  for (unsigned b = 0; b < kTpcBits; ++b) {
    if (live.Test(b) && sms_per_bit[b] == 0) return fmt::format("live bit {} has no SM", b);
    if (!live.Test(b) && sms_per_bit[b] != 0) return fmt::format("dead bit {} has SMs", b);
  }
  if (SmsOf(live) != sm_count)
    return fmt::format("the live bits hold {} SMs, the GPU has {}", SmsOf(live), sm_count);
  return {};
}

std::string DescribeAsk(const SmAsk& ask) {
  switch (ask.kind) {
    case GS_SM_ASK_COUNT: return fmt::format("{} SMs", ask.value);
    case GS_SM_ASK_PERCENT: return fmt::format("{}% of the SMs", ask.value);
    default: return "every SM";
  }
}

uint32_t AskedSms(const SmAsk& ask, uint32_t sm_count) {
  switch (ask.kind) {
    case GS_SM_ASK_COUNT: return ask.value;
    case GS_SM_ASK_PERCENT:
      return static_cast<uint32_t>((uint64_t{ask.value} * sm_count + 99) / 100);
    default: return 0;
  }
}

SliceChoice ChooseSlice(const TpcMap& map, const uint8_t holders[kTpcBits], uint32_t asked_sms,
                        bool allow_overlap) {
  SliceChoice c;
  if (asked_sms == 0) {
    c.error = "a slice of 0 SMs";
    return c;
  }
  if (asked_sms > map.sm_count) {
    c.error = fmt::format("{} SMs asked, the GPU has {}", asked_sms, map.sm_count);
    return c;
  }
  // Fewest holders first (0: free), lowest bit first among equals.
  for (unsigned level = 0; level <= 255 && c.sms < asked_sms; ++level) {
    if (level > 0 && !allow_overlap) break;
    for (unsigned b = 0; b < kTpcBits && c.sms < asked_sms; ++b) {
      if (!map.live.Test(b) || holders[b] != level) continue;
      c.mask.Set(b);
      c.sms += map.sms_per_bit[b];
      c.overlaps = c.overlaps || level > 0;
    }
  }
  if (c.sms < asked_sms) {
    uint32_t free_sms = 0;
    for (unsigned b = 0; b < kTpcBits; ++b)
      if (map.live.Test(b) && holders[b] == 0) free_sms += map.sms_per_bit[b];
    c.error = fmt::format("{} SMs asked, but other tenants hold {} of the GPU's {} SMs: only {} are "
                          "free (set GPUSHARE_SM_CONFLICT=overlap to share TPCs instead)",
                          asked_sms, map.sm_count - free_sms, map.sm_count, free_sms);
    c.mask = TpcMask{};
    c.sms = 0;
  }
  return c;
}

}  // namespace gpushare::sm
