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
