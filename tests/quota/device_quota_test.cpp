#include "quota/device_quota.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "quota/charge.h"

namespace gpushare::quota {
namespace {

DeviceQuota MakeQuota(uint64_t limit, uint64_t physical = 16ull << 30) {
  return DeviceQuota(0, CUuuid{}, physical, limit);
}

TEST(DeviceQuota, ChargesUpToTheLimitAndNoFurther) {
  DeviceQuota q = MakeQuota(100);
  EXPECT_TRUE(q.TryCharge(60));
  EXPECT_TRUE(q.TryCharge(40));
  EXPECT_FALSE(q.TryCharge(1));
  EXPECT_EQ(q.used_bytes(), 100u);
  EXPECT_EQ(q.headroom_bytes(), 0u);
  q.Uncharge(50);
  EXPECT_EQ(q.headroom_bytes(), 50u);
  EXPECT_FALSE(q.TryCharge(UINT64_MAX)) << "no overflow past the limit";
}

TEST(DeviceQuota, ShowsTheSmallerOfLimitAndPhysical) {
  EXPECT_EQ(MakeQuota(8, 16).visible_total_bytes(), 8u);
  EXPECT_EQ(MakeQuota(32, 16).visible_total_bytes(), 16u);
}

TEST(DeviceQuota, ForcedChargesMayPassTheLimitButHeadroomNeverGoesNegative) {
  DeviceQuota q = MakeQuota(100);
  q.ForceCharge(150);
  EXPECT_EQ(q.headroom_bytes(), 0u);
  q.Uncharge(1000);
  EXPECT_EQ(q.used_bytes(), 0u) << "uncharging saturates";
}

TEST(DeviceQuota, ConcurrentChargesNeverExceedTheLimit) {
  DeviceQuota q = MakeQuota(1000);
  std::vector<std::thread> threads;
  std::atomic<uint64_t> granted{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (q.TryCharge(7)) granted += 7;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), q.used_bytes());
  EXPECT_LE(granted.load(), 1000u);
  EXPECT_GT(granted.load(), 1000u - 7);
}

TEST(Charge, IsReturnedUnlessKept) {
  DeviceQuota q = MakeQuota(100);
  {
    Charge c = Charge::Try(&q, 70);
    ASSERT_TRUE(c);
    EXPECT_EQ(q.used_bytes(), 70u);
  }
  EXPECT_EQ(q.used_bytes(), 0u);
  Charge kept = Charge::Try(&q, 30);
  EXPECT_EQ(kept.Keep(), 30u);
  EXPECT_EQ(q.used_bytes(), 30u);
}

TEST(Charge, ResizesToWhatTheDriverTook) {
  DeviceQuota q = MakeQuota(100);
  Charge c = Charge::Try(&q, 50);
  EXPECT_TRUE(c.Resize(60));
  EXPECT_EQ(q.used_bytes(), 60u);
  EXPECT_TRUE(c.Resize(20));
  EXPECT_EQ(q.used_bytes(), 20u);
  EXPECT_FALSE(c.Resize(101));
  EXPECT_EQ(q.used_bytes(), 20u) << "a failed resize changes nothing";
  EXPECT_FALSE(Charge::Try(&q, 81)) << "denied";
  EXPECT_FALSE(Charge::Try(nullptr, 1));
}

}  // namespace
}  // namespace gpushare::quota
