// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/slice.h"

#include <fmt/format.h>

#include <algorithm>
#include <bitset>
#include <memory>

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

bool TpcMap::HasGpcs() const {
  if (!live.Any()) return false;
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (live.Test(b) && gpc_of_bit[b] == kGpcUnknown) return false;
  return true;
}

unsigned TpcMap::GpcsOf(const TpcMask& mask) const {
  if (!HasGpcs()) return 0;
  std::bitset<256> seen;
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (mask.Test(b) && live.Test(b) && gpc_of_bit[b] != kGpcUnclustered) seen.set(gpc_of_bit[b]);
  return static_cast<unsigned>(seen.count());
}

TpcMask TpcMap::Unclustered() const {
  TpcMask m;
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (live.Test(b) && gpc_of_bit[b] == kGpcUnclustered) m.Set(b);
  return m;
}

std::vector<TpcMask> TpcMap::Gpcs() const {
  std::vector<TpcMask> gpcs;
  if (!HasGpcs()) return gpcs;
  for (unsigned b = 0; b < kTpcBits; ++b) {
    if (!live.Test(b) || gpc_of_bit[b] == kGpcUnclustered) continue;
    if (gpc_of_bit[b] >= gpcs.size()) gpcs.resize(gpc_of_bit[b] + 1u);
    gpcs[gpc_of_bit[b]].Set(b);
  }
  return gpcs;
}

namespace {

// The free live bits of one GPC.
struct GpcBits {
  unsigned bits[kTpcBits];
  unsigned count = 0;
  uint32_t sms = 0;
  bool whole = true;  // no other tenant holds any of its bits
};

// Free bits in the order `placement` takes them; returns how many.
unsigned FreeBitOrder(const TpcMap& map, const uint8_t holders[kTpcBits], uint32_t asked_sms,
                      Placement placement, unsigned order[kTpcBits]) {
  unsigned n = 0;
  if (!map.HasGpcs()) {
    for (unsigned b = 0; b < kTpcBits; ++b)
      if (map.live.Test(b) && holders[b] == 0) order[n++] = b;
    return n;
  }
  static constexpr unsigned kGpcs = 256;
  auto gpcs = std::make_unique<GpcBits[]>(kGpcs);
  // Unclustered TPCs first, in proportion to the ask (rounded to nearest); the GPCs then cover the rest.
  const TpcMask unclustered = map.Unclustered();
  if (placement == Placement::kGpc && unclustered.Any()) {
    const uint64_t share = (uint64_t{asked_sms} * map.SmsOf(unclustered) + map.sm_count / 2) / map.sm_count;
    uint64_t sms = 0;
    for (unsigned b = 0; b < kTpcBits && sms < share; ++b) {
      if (!unclustered.Test(b) || holders[b] != 0) continue;
      order[n++] = b;
      sms += map.sms_per_bit[b];
    }
    asked_sms = sms < asked_sms ? asked_sms - static_cast<uint32_t>(sms) : 0;
  }
  const unsigned ahead = n;
  for (unsigned b = 0; b < kTpcBits; ++b) {
    if (!map.live.Test(b)) continue;
    if (placement == Placement::kGpc && unclustered.Test(b)) continue;
    GpcBits& g = gpcs[map.gpc_of_bit[b]];
    if (holders[b] != 0) {
      g.whole = false;
      continue;
    }
    g.bits[g.count++] = b;
    g.sms += map.sms_per_bit[b];
  }
  unsigned ids[kGpcs];
  unsigned id_count = 0;
  for (unsigned i = 0; i < kGpcs; ++i)
    if (gpcs[i].count > 0) ids[id_count++] = i;

  if (placement == Placement::kSpread) {
    for (unsigned rank = 0; n < kTpcBits; ++rank) {
      const unsigned before = n;
      for (unsigned k = 0; k < id_count; ++k)
        if (rank < gpcs[ids[k]].count) order[n++] = gpcs[ids[k]].bits[rank];
      if (n == before) break;
    }
    return n;
  }

  // Whole free GPCs: the subset whose SMs come closest to the ask from below (fewest GPCs among
  // equals). Exhaustive over up to 20 GPCs (every GPU so far has at most 16), else largest first.
  unsigned whole[kGpcs];
  unsigned whole_count = 0;
  for (unsigned k = 0; k < id_count; ++k)
    if (gpcs[ids[k]].whole) whole[whole_count++] = ids[k];
  uint64_t best = 0;
  if (whole_count <= 20) {
    uint64_t best_sms = 0;
    int best_size = 0;
    for (uint64_t subset = 1; subset < (uint64_t{1} << whole_count); ++subset) {
      uint64_t sms = 0;
      for (unsigned k = 0; k < whole_count; ++k)
        if ((subset >> k) & 1u) sms += gpcs[whole[k]].sms;
      const int size = __builtin_popcountll(subset);
      if (sms > asked_sms) continue;
      if (sms > best_sms || (sms == best_sms && size < best_size)) {
        best = subset;
        best_sms = sms;
        best_size = size;
      }
    }
  } else {
    std::sort(whole, whole + whole_count, [&](unsigned a, unsigned b) { return gpcs[a].sms > gpcs[b].sms; });
    uint64_t sms = 0;
    for (unsigned k = 0; k < 20; ++k) {
      if (sms + gpcs[whole[k]].sms > asked_sms) continue;
      sms += gpcs[whole[k]].sms;
      best |= uint64_t{1} << k;
    }
  }
  bool used[kGpcs] = {};
  uint64_t taken = 0;
  auto take = [&](unsigned id) {
    for (unsigned i = 0; i < gpcs[id].count; ++i) order[n++] = gpcs[id].bits[i];
    taken += gpcs[id].sms;
    used[id] = true;
  };
  for (unsigned k = 0; k < whole_count && k < 64; ++k)
    if ((best >> k) & 1u) take(whole[k]);
  // The rest: best fit (the fewest free SMs that still cover it), GPCs already shared first;
  // if no single GPC covers it, the largest remaining shared ones, then whole ones.
  std::sort(ids, ids + id_count, [&](unsigned a, unsigned b) {
    if (gpcs[a].whole != gpcs[b].whole) return !gpcs[a].whole;
    return gpcs[a].sms < gpcs[b].sms;
  });
  const uint64_t rest = asked_sms > taken ? asked_sms - taken : 0;
  if (rest > 0) {
    for (unsigned k = 0; k < id_count; ++k)
      if (!used[ids[k]] && gpcs[ids[k]].sms >= rest) {
        take(ids[k]);
        break;
      }
  }
  for (const bool whole_pass : {false, true})
    for (unsigned k = id_count; k-- > 0;)
      if (!used[ids[k]] && gpcs[ids[k]].whole == whole_pass) take(ids[k]);
  // Unclustered TPCs beyond the proportional part come last.
  for (unsigned b = 0; b < kTpcBits; ++b) {
    if (!unclustered.Test(b) || holders[b] != 0) continue;
    if (std::find(order, order + ahead, b) == order + ahead) order[n++] = b;
  }
  return n;
}

}  // namespace

SliceChoice ChooseSlice(const TpcMap& map, const uint8_t holders[kTpcBits], uint32_t asked_sms,
                        bool allow_overlap, Placement placement) {
  SliceChoice c;
  if (asked_sms == 0) {
    c.error = "a slice of 0 SMs";
    return c;
  }
  if (asked_sms > map.sm_count) {
    c.error = fmt::format("{} SMs asked, the GPU has {}", asked_sms, map.sm_count);
    return c;
  }
  unsigned order[kTpcBits];
  const unsigned free_bits = FreeBitOrder(map, holders, asked_sms, placement, order);
  for (unsigned i = 0; i < free_bits && c.sms < asked_sms; ++i) {
    c.mask.Set(order[i]);
    c.sms += map.sms_per_bit[order[i]];
  }
  // Then, if allowed, the bits held by the fewest other tenants, lowest bit first among equals.
  for (unsigned level = 1; allow_overlap && level <= 255 && c.sms < asked_sms; ++level) {
    for (unsigned b = 0; b < kTpcBits && c.sms < asked_sms; ++b) {
      if (!map.live.Test(b) || holders[b] != level) continue;
      c.mask.Set(b);
      c.sms += map.sms_per_bit[b];
      c.overlaps = true;
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
