// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/slice.h"

#include <gtest/gtest.h>

namespace gpushare::sm {
namespace {

// The H100's map (gpu-facts.md): 66 live bits of 128, 2 SMs each.
TpcMap H100() {
  TpcMap m;
  for (unsigned b = 0; b < 72; ++b)
    if (!(b >= 4 && b <= 8) && b != 17 && b != 26 && b != 35 && b != 44 && b != 53) m.live.Set(b);
  for (unsigned b : {75u, 78u, 81u, 83u}) m.live.Set(b);
  for (unsigned b = 0; b < kTpcBits; ++b) m.sms_per_bit[b] = m.live.Test(b) ? 2 : 0;
  m.sm_count = 132;
  return m;
}

// The same with GPCs as the fake driver's default: bit / 9 below 72, the bits above in GPC 0,
// so GPCs of 8, 8, 8, 8, 8, 8, 9 and 9 TPCs (16 or 18 SMs).
TpcMap H100WithGpcs() {
  TpcMap m = H100();
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (m.live.Test(b)) m.gpc_of_bit[b] = static_cast<uint8_t>(b < 72 ? b / 9 : 0);
  return m;
}

TEST(TpcMap, TheH100MapChecksOut) {
  const TpcMap m = H100();
  EXPECT_EQ(m.live.Count(), 66u);
  EXPECT_EQ(m.Check(), "");
  EXPECT_EQ(m.Granularity(), 2u);
  EXPECT_EQ(DescribeBits(m.live), "0-3,9-16,18-25,27-34,36-43,45-52,54-71,75,78,81,83");
}

TEST(TpcMap, InconsistentMapsAreRefused) {
  TpcMap m = H100();
  m.sm_count = 130;
  EXPECT_NE(m.Check().find("hold 132 SMs, the GPU has 130"), std::string::npos);
  m = H100();
  m.sms_per_bit[0] = 0;
  EXPECT_NE(m.Check().find("live bit 0 has no SM"), std::string::npos);
  m = H100();
  m.sms_per_bit[4] = 2;
  EXPECT_NE(m.Check().find("dead bit 4"), std::string::npos);
  EXPECT_NE(TpcMap{}.Check(), "");
}

TEST(SmAsk, APercentRoundsUp) {
  EXPECT_EQ(AskedSms({GS_SM_ASK_COUNT, 32}, 132), 32u);
  EXPECT_EQ(AskedSms({GS_SM_ASK_PERCENT, 25}, 132), 33u);
  EXPECT_EQ(AskedSms({GS_SM_ASK_PERCENT, 50}, 132), 66u);
  EXPECT_EQ(AskedSms({GS_SM_ASK_PERCENT, 100}, 132), 132u);
  EXPECT_EQ(AskedSms({}, 132), 0u);
  EXPECT_EQ(DescribeAsk({GS_SM_ASK_PERCENT, 25}), "25% of the SMs");
}

TEST(ChooseSlice, RoundsUpToWholeLiveTpcsSkippingDeadBits) {
  const TpcMap m = H100();
  const uint8_t none[kTpcBits] = {};
  const SliceChoice c = ChooseSlice(m, none, 9, false);  // 9 SMs: 5 TPCs = 10 SMs
  ASSERT_EQ(c.error, "");
  EXPECT_EQ(c.sms, 10u);
  EXPECT_EQ(DescribeBits(c.mask), "0-3,9") << "bits 4-8 are dead";
  EXPECT_FALSE(c.overlaps);
  EXPECT_EQ(m.SmsOf(c.mask), 10u);
}

TEST(ChooseSlice, SlicesAreDisjointFromWhatOthersHold) {
  const TpcMap m = H100();
  uint8_t holders[kTpcBits] = {};
  const SliceChoice a = ChooseSlice(m, holders, 64, false);
  ASSERT_EQ(a.error, "");
  for (unsigned b = 0; b < kTpcBits; ++b) holders[b] += a.mask.Test(b);
  const SliceChoice b = ChooseSlice(m, holders, 64, false);
  ASSERT_EQ(b.error, "");
  EXPECT_FALSE((a.mask & b.mask).Any());
  EXPECT_EQ(a.sms + b.sms, 128u);
  for (unsigned bit = 0; bit < kTpcBits; ++bit) holders[bit] += b.mask.Test(bit);
  const SliceChoice c = ChooseSlice(m, holders, 8, false);  // 4 SMs left
  EXPECT_NE(c.error.find("other tenants hold 128 of the GPU's 132 SMs: only 4 are free"), std::string::npos) << c.error;
  EXPECT_FALSE(c.mask.Any());
}

TEST(ChooseSlice, OverlapTakesFreeBitsThenTheLeastShared) {
  const TpcMap m = H100();
  uint8_t holders[kTpcBits] = {};
  for (unsigned b = 0; b < 60; ++b) holders[b] = 2;   // twice taken
  for (unsigned b = 60; b < 70; ++b) holders[b] = 1;  // once taken
  const SliceChoice c = ChooseSlice(m, holders, 20, true);  // free: 70, 71, 75, 78, 81, 83 = 12 SMs
  ASSERT_EQ(c.error, "");
  EXPECT_TRUE(c.overlaps);
  EXPECT_EQ(c.sms, 20u);
  EXPECT_EQ(DescribeBits(c.mask), "60-63,70-71,75,78,81,83");
}

TEST(ChooseSlice, AskingPastTheGpuOrForNothingIsRefused) {
  const uint8_t none[kTpcBits] = {};
  EXPECT_NE(ChooseSlice(H100(), none, 133, true).error.find("133 SMs asked, the GPU has 132"), std::string::npos);
  EXPECT_NE(ChooseSlice(H100(), none, 0, true).error, "");
  EXPECT_EQ(ChooseSlice(H100(), none, 132, false).sms, 132u);
}

TEST(ChooseSlice, WithoutGpcsBitsGoInOrder) {
  const TpcMap m = H100();
  EXPECT_FALSE(m.HasGpcs());
  EXPECT_EQ(m.GpcsOf(m.live), 0u);
  const uint8_t none[kTpcBits] = {};
  EXPECT_EQ(DescribeBits(ChooseSlice(m, none, 16, false, Placement::kSpread).mask), "0-3,9-12");
}

TEST(ChooseSlice, HalvesTakeWholeGpcs) {
  const TpcMap m = H100WithGpcs();
  ASSERT_TRUE(m.HasGpcs());
  EXPECT_EQ(m.Gpcs().size(), 8u);
  uint8_t holders[kTpcBits] = {};
  // 66 SMs: four whole GPCs add up exactly (16 + 16 + 16 + 18), fewest GPCs among equals.
  const SliceChoice a = ChooseSlice(m, holders, 66, false);
  EXPECT_EQ(a.sms, 66u);
  EXPECT_EQ(m.GpcsOf(a.mask), 4u);
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (a.mask.Test(b)) holders[b] = 1;
  const SliceChoice b = ChooseSlice(m, holders, 66, false);
  EXPECT_EQ(b.sms, 66u);
  EXPECT_EQ(m.GpcsOf(b.mask), 4u);
  EXPECT_FALSE((a.mask & b.mask).Any());
  // Every GPC is wholly one tenant's.
  for (const TpcMask& g : m.Gpcs()) EXPECT_TRUE((g & a.mask) == g || (g & b.mask) == g) << DescribeBits(g);
}

TEST(ChooseSlice, TheRemainderComesFromAGpcOthersAlreadyShare) {
  const TpcMap m = H100WithGpcs();
  uint8_t holders[kTpcBits] = {};
  // 20 SMs: one whole GPC of 18 and one TPC more, from the smallest GPC that covers it.
  const SliceChoice a = ChooseSlice(m, holders, 20, false);
  EXPECT_EQ(a.sms, 20u);
  EXPECT_EQ(m.GpcsOf(a.mask), 2u);
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (a.mask.Test(b)) holders[b] = 1;
  // 14 SMs: no whole GPC fits under it; the GPC that a already broke into has 14 free.
  const SliceChoice b = ChooseSlice(m, holders, 14, false);
  EXPECT_EQ(b.sms, 14u);
  EXPECT_EQ(m.GpcsOf(b.mask), 1u);
  EXPECT_EQ(m.GpcsOf(a.mask | b.mask), 2u) << "b filled the GPC a had broken into";
}

TEST(ChooseSlice, UnclusteredTpcsAreSharedOutInProportion) {
  TpcMap m = H100WithGpcs();
  for (unsigned b : {75u, 78u, 81u, 83u}) m.gpc_of_bit[b] = kGpcUnclustered;
  EXPECT_EQ(DescribeBits(m.Unclustered()), "75,78,81,83");
  EXPECT_EQ(m.Gpcs().size(), 8u);
  uint8_t holders[kTpcBits] = {};
  const SliceChoice a = ChooseSlice(m, holders, 66, false);
  EXPECT_EQ(a.sms, 66u);
  EXPECT_EQ((a.mask & m.Unclustered()).Count(), 2u);
  for (unsigned b = 0; b < kTpcBits; ++b)
    if (a.mask.Test(b)) holders[b] = 1;
  const SliceChoice b = ChooseSlice(m, holders, 66, false);
  EXPECT_EQ(b.sms, 66u);
  EXPECT_EQ((b.mask & m.Unclustered()).Count(), 2u);
  // A small slice gets none (8 SMs of 132: 0.48 unclustered SMs rounds to 0), unless nothing else is free.
  const uint8_t none[kTpcBits] = {};
  EXPECT_FALSE((ChooseSlice(m, none, 8, false).mask & m.Unclustered()).Any());
  EXPECT_EQ(ChooseSlice(m, none, 132, false).sms, 132u);
}

TEST(ChooseSlice, SpreadTakesTheSameShareOfEveryGpc) {
  const TpcMap m = H100WithGpcs();
  const uint8_t none[kTpcBits] = {};
  const SliceChoice s = ChooseSlice(m, none, 32, false, Placement::kSpread);
  EXPECT_EQ(s.sms, 32u);
  EXPECT_EQ(m.GpcsOf(s.mask), 8u);
  for (const TpcMask& g : m.Gpcs()) EXPECT_EQ((g & s.mask).Count(), 2u) << DescribeBits(g);
}

TEST(ChooseSlice, GpcPlacementStillRefusesAndOverlapsAsBefore) {
  const TpcMap m = H100WithGpcs();
  uint8_t holders[kTpcBits] = {};
  for (unsigned b = 0; b < 60; ++b) holders[b] = 1;
  const SliceChoice refused = ChooseSlice(m, holders, 40, false);
  EXPECT_FALSE(refused.error.empty());
  const SliceChoice shared = ChooseSlice(m, holders, 40, true);
  EXPECT_EQ(shared.sms, 40u);
  EXPECT_TRUE(shared.overlaps);
}

TEST(TpcMask, SetAlgebra) {
  TpcMask a, b;
  a.Set(0), a.Set(127), b.Set(127);
  EXPECT_EQ((a & b).Count(), 1u);
  EXPECT_EQ((a | b).Count(), 2u);
  EXPECT_EQ((~a).Count(), 126u);
  EXPECT_TRUE((~a).Test(64));
  EXPECT_EQ(DescribeBits(TpcMask{}), "-");
}

}  // namespace
}  // namespace gpushare::sm
