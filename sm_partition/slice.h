// SPDX-License-Identifier: Apache-2.0
// SM slices: which launch-descriptor TPC bits a tenant may run on. Pure decisions, no driver and
// no ledger: the ledger (quota/ledger_sm.cpp) calls ChooseSlice under its lock, and the tests
// call it directly.
//
// Granularity: one mask bit, i.e. one TPC (2 SMs on the H100: 66 live bits of 128, each an
// even/odd SM pair). A slice asked in SMs is rounded UP to whole live bits, so a tenant never
// gets fewer SMs than it asked for. Green contexts would round to 8 SMs; the mask is finer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "gpushare/ledger_abi.h"

namespace gpushare::sm {

inline constexpr unsigned kTpcBits = GS_SM_TPC_BITS;
inline constexpr uint8_t kGpcUnknown = GS_SM_GPC_UNKNOWN;
// TPCs that never run blocks of a cluster (on the H100, the 4 TPCs behind bits 75, 78, 81, 83):
// their GPC cannot be told, and cluster kernels (cuBLAS's GEMMs) cannot use them.
inline constexpr uint8_t kGpcUnclustered = GS_SM_GPC_UNCLUSTERED;

// A set of mask bits (bit b lives in word b / 32, as in the launch descriptor).
struct TpcMask {
  uint32_t words[4] = {0, 0, 0, 0};

  bool Test(unsigned bit) const { return (words[bit / 32] >> (bit % 32)) & 1u; }
  void Set(unsigned bit) { words[bit / 32] |= 1u << (bit % 32); }
  bool Any() const { return (words[0] | words[1] | words[2] | words[3]) != 0; }
  unsigned Count() const;
  TpcMask operator&(const TpcMask& o) const;
  TpcMask operator|(const TpcMask& o) const;
  TpcMask operator~() const;
  bool operator==(const TpcMask& o) const = default;
};

// "0-3,9,12-15": the set bits as ranges (for messages and gpushare-smi); "-" when empty.
std::string DescribeBits(const TpcMask& mask);

// The GPU's map, as measured by the sweep (sm_partition/tpc_map.cpp) and cached in the ledger.
struct TpcMap {
  uint32_t sm_count = 0;        // the GPU's SMs
  TpcMask live;                 // bits with a live TPC
  uint8_t sms_per_bit[kTpcBits] = {};
  // The GPC of each live bit's TPC (kGpcUnknown for dead bits, or for all when not measured).
  uint8_t gpc_of_bit[kTpcBits];
  uint32_t qmd_version = 0;     // the launch descriptor's version byte seen while mapping
  int32_t driver_version = 0;   // cuDriverGetVersion while mapping

  // SMs behind the live bits of `mask`.
  uint32_t SmsOf(const TpcMask& mask) const;
  // The smallest number of SMs one live bit adds (the rounding step).
  uint32_t Granularity() const;
  // Why the map cannot be used (empty when it can): every live bit has SMs, they add up.
  std::string Check() const;
  // Every live bit's GPC is known.
  bool HasGpcs() const;
  // Distinct GPCs among the live bits of `mask` (0 when GPCs are unknown).
  unsigned GpcsOf(const TpcMask& mask) const;
  // The live bits whose TPC never ran a cluster.
  TpcMask Unclustered() const;

  // The live bits of each GPC, by GPC number (empty when GPCs are unknown; without Unclustered()).
  std::vector<TpcMask> Gpcs() const;

  TpcMap() { std::fill(std::begin(gpc_of_bit), std::end(gpc_of_bit), kGpcUnknown); }
};

// What a tenant asks for: GPUSHARE_SM as GS_SM_ASK_COUNT (SMs) or GS_SM_ASK_PERCENT.
struct SmAsk {
  uint32_t kind = GS_SM_ASK_NONE;
  uint32_t value = 0;
  bool any() const { return kind != GS_SM_ASK_NONE; }
};
// "32 SMs", "25% of the SMs"
std::string DescribeAsk(const SmAsk& ask);
// The SMs `ask` means on a GPU of sm_count SMs (a percent rounds up); 0 for none.
uint32_t AskedSms(const SmAsk& ask, uint32_t sm_count);

struct SliceChoice {
  TpcMask mask;            // the bits the tenant may run on
  uint32_t sms = 0;        // SMs behind them (>= the asked SMs)
  bool overlaps = false;   // some bits are other tenants' too
  std::string error;       // non-empty: refused, and why
};

// Where free bits are taken from when the map knows each bit's GPC (else: lowest bit first).
enum class Placement {
  // Whole free GPCs whose SMs add up as closely as possible to the ask without passing it, the
  // rest from one GPC, preferring one other tenants already hold part of: slices share as few
  // GPCs (their crossbar ports and L1.5/cluster resources) as possible. Unclustered TPCs are
  // shared out in proportion to the ask, so no slice gets more than its part of them.
  kGpc,
  // The same share of every GPC: round robin over GPCs.
  kSpread,
};

// Picks live bits for `asked_sms` SMs. Free bits first (by `placement`); with too few and
// allow_overlap, the bits held by the fewest other tenants (holders[b]); else refused.
SliceChoice ChooseSlice(const TpcMap& map, const uint8_t holders[kTpcBits], uint32_t asked_sms,
                        bool allow_overlap, Placement placement = Placement::kGpc);

}  // namespace gpushare::sm
