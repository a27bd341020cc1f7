// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/cluster_occupancy.h"

#include <gtest/gtest.h>

namespace gpushare::sm {
namespace {

// The H100 (gpu-facts.md) with the fake driver's GPCs: bits 0-3 | 9-16 | 18-25 | 27-34 | 36-43 |
// 45-52 | 54-62 | 63-71, 2 SMs each (GPCs of 8, 16 (five) and 18 (two) SMs), and the 4 TPCs
// behind bits 75, 78, 81, 83 that never run cluster blocks.
TpcMap H100() {
  TpcMap m;
  for (unsigned b = 0; b < 72; ++b)
    if (!(b >= 4 && b <= 8) && b != 17 && b != 26 && b != 35 && b != 44 && b != 53) {
      m.live.Set(b);
      m.gpc_of_bit[b] = static_cast<uint8_t>(b / 9);
    }
  for (unsigned b : {75u, 78u, 81u, 83u}) {
    m.live.Set(b);
    m.gpc_of_bit[b] = kGpcUnclustered;
  }
  for (unsigned b = 0; b < kTpcBits; ++b) m.sms_per_bit[b] = m.live.Test(b) ? 2 : 0;
  m.sm_count = 132;
  return m;
}

TpcMask Bits(std::initializer_list<std::pair<unsigned, unsigned>> ranges) {
  TpcMask m;
  for (const auto& [lo, hi] : ranges)
    for (unsigned b = lo; b <= hi; ++b) m.Set(b);
  return m;
}

TEST(SliceClusters, TheWholeGpuHoldsWhatTheDriverSays) {
  const TpcMap m = H100();
  ASSERT_EQ(m.Check(), "");
  const SliceGeometry g = GeometryOf(m, m.live);
  EXPECT_EQ(g.slice_sms, 132u);
  EXPECT_EQ(g.cluster_sms_by_gpc, (std::vector<uint32_t>{8, 16, 16, 16, 16, 16, 18, 18}));
  // 2 blocks per SM, clusters of 8: 2 + 5 x 4 + 2 x 4 (18 SMs hold 4.5 clusters: 4).
  EXPECT_EQ(SliceClusters(g, 30, 2, 8), 30);
}

TEST(SliceClusters, WholeGpcs) {
  const SliceGeometry g = GeometryOf(H100(), Bits({{9, 16}, {18, 25}}));
  EXPECT_EQ(g.slice_sms, 32u);
  EXPECT_EQ(SliceClusters(g, 62, 1, 2), 16);
  EXPECT_EQ(SliceClusters(g, 30, 2, 8), 8);
}

TEST(SliceClusters, APartialGpcHoldsOnlyWholeClusters) {
  // 12 SMs in each of two GPCs: one cluster of 8 each, not the 3 that 24 SMs would suggest.
  const SliceGeometry g = GeometryOf(H100(), Bits({{9, 14}, {18, 23}}));
  EXPECT_EQ(g.slice_sms, 24u);
  EXPECT_EQ(SliceClusters(g, 15, 1, 8), 2);
  EXPECT_EQ(SliceClusters(g, 62, 1, 2), 12);
}

TEST(SliceClusters, UnclusteredTpcsCountForNothing) {
  const SliceGeometry g = GeometryOf(H100(), Bits({{0, 3}, {75, 75}, {78, 78}, {81, 81}, {83, 83}}));
  EXPECT_EQ(g.slice_sms, 16u);
  EXPECT_EQ(SliceClusters(g, 62, 1, 2), 4);
  const SliceGeometry only = GeometryOf(H100(), Bits({{75, 75}, {78, 78}}));
  EXPECT_EQ(SliceClusters(only, 62, 1, 2), 0);
}

TEST(SliceClusters, NeverMoreThanTheDriversAnswer) {
  // The driver may hold fewer (shared memory across a cluster, scheduling policy).
  const SliceGeometry g = GeometryOf(H100(), Bits({{9, 16}, {18, 25}}));
  EXPECT_EQ(SliceClusters(g, 3, 1, 2), 3);
  EXPECT_EQ(SliceClusters(g, 0, 1, 2), 0);
}

TEST(SliceClusters, UnknownGpcsScaleTheDriversAnswerBySmShare) {
  TpcMap m = H100();
  std::fill(std::begin(m.gpc_of_bit), std::end(m.gpc_of_bit), kGpcUnknown);
  const SliceGeometry half = GeometryOf(m, Bits({{0, 3}, {9, 16}, {18, 25}, {27, 34}, {36, 40}}));
  EXPECT_TRUE(half.cluster_sms_by_gpc.empty());
  EXPECT_EQ(half.slice_sms, 66u);
  EXPECT_EQ(SliceClusters(half, 30, 2, 8), 15);
  EXPECT_EQ(SliceClusters(half, 31, 2, 8), 15) << "rounded down";
  const SliceGeometry few = GeometryOf(m, Bits({{0, 3}}));
  EXPECT_EQ(SliceClusters(few, 30, 2, 8), 1);  // 30 x 8 / 132
}

TEST(SliceClusters, AnUnknownClusterOrOccupancyScalesToo) {
  const SliceGeometry g = GeometryOf(H100(), Bits({{9, 16}, {18, 25}}));
  EXPECT_EQ(SliceClusters(g, 66, 0, 2), 16);  // 66 x 32 / 132
  EXPECT_EQ(SliceClusters(g, 66, 2, 0), 16);
}

}  // namespace
}  // namespace gpushare::sm
