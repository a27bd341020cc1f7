// SPDX-License-Identifier: Apache-2.0
#include "quota/device_quota.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "quota/charge.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;

class DeviceQuotaTest : public ::testing::Test {
 protected:
  DeviceQuota Make(uint64_t request_mib, uint64_t limit_mib, uint64_t physical_mib = 1024,
                   bool show_request = false) {
    std::string error;
    auto session = LedgerSession::Open(dir_.path(), testing::kUuid, physical_mib * kMiB,
                                       testing::Tenant("t", request_mib, limit_mib), &error);
    EXPECT_NE(session, nullptr) << error;
    return DeviceQuota(0, CUuuid{}, physical_mib * kMiB, std::move(session), show_request);
  }
  testing::TempDir dir_;
};

TEST_F(DeviceQuotaTest, ChargesUpToTheLimitAndNoFurther) {
  DeviceQuota q = Make(100, 100);
  EXPECT_TRUE(q.TryCharge(60 * kMiB));
  EXPECT_TRUE(q.TryCharge(40 * kMiB));
  EXPECT_FALSE(q.TryCharge(1));
  EXPECT_EQ(q.used_bytes(), 100 * kMiB);
  EXPECT_EQ(q.headroom_bytes(), 0u);
  q.Uncharge(50 * kMiB);
  EXPECT_EQ(q.headroom_bytes(), 50 * kMiB);
  EXPECT_FALSE(q.TryCharge(UINT64_MAX)) << "no overflow past the limit";
}

TEST_F(DeviceQuotaTest, ShowsLimitOrRequestCappedByPhysical) {
  EXPECT_EQ(Make(64, 256).visible_total_bytes(), 256 * kMiB);
  EXPECT_EQ(Make(64, 256, 1024, /*show_request=*/true).visible_total_bytes(), 64 * kMiB);
  EXPECT_EQ(Make(64, 4096, 1024).visible_total_bytes(), 1024 * kMiB);
}

TEST_F(DeviceQuotaTest, UnseenMemoryReplacesItsPreviousFigure) {
  DeviceQuota q = Make(100, 100);
  q.SetUnseen(30 * kMiB);
  EXPECT_EQ(q.used_bytes(), 30 * kMiB);
  q.SetUnseen(10 * kMiB);
  EXPECT_EQ(q.used_bytes(), 10 * kMiB);
  q.SetUnseen(0);
  EXPECT_EQ(q.used_bytes(), 0u);
}

TEST_F(DeviceQuotaTest, ARefusedDeviceDeniesEverything) {
  DeviceQuota q(0, CUuuid{}, 1024 * kMiB, nullptr, false);
  EXPECT_TRUE(q.refused());
  EXPECT_FALSE(q.TryCharge(1));
  EXPECT_EQ(q.headroom_bytes(), 0u);
}

TEST_F(DeviceQuotaTest, ConcurrentChargesNeverExceedTheLimit) {
  DeviceQuota q = Make(512, 1000);
  std::vector<std::thread> threads;
  std::atomic<uint64_t> granted{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (q.TryCharge(7 * kMiB)) granted += 7 * kMiB;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), q.used_bytes());
  EXPECT_LE(granted.load(), 1000 * kMiB);
  EXPECT_GT(granted.load(), 1000 * kMiB - 7 * kMiB);
}

TEST_F(DeviceQuotaTest, ChargeIsReturnedUnlessKept) {
  DeviceQuota q = Make(100, 100);
  {
    Charge c = Charge::Try(&q, 70 * kMiB);
    ASSERT_TRUE(c);
    EXPECT_EQ(q.used_bytes(), 70 * kMiB);
  }
  EXPECT_EQ(q.used_bytes(), 0u);
  Charge kept = Charge::Try(&q, 30 * kMiB);
  EXPECT_EQ(kept.Keep(), 30 * kMiB);
  EXPECT_EQ(q.used_bytes(), 30 * kMiB);
}

TEST_F(DeviceQuotaTest, ChargeResizesToWhatTheDriverTook) {
  DeviceQuota q = Make(100, 100);
  Charge c = Charge::Try(&q, 50 * kMiB);
  EXPECT_TRUE(c.Resize(60 * kMiB));
  EXPECT_EQ(q.used_bytes(), 60 * kMiB);
  EXPECT_TRUE(c.Resize(20 * kMiB));
  EXPECT_EQ(q.used_bytes(), 20 * kMiB);
  EXPECT_FALSE(c.Resize(101 * kMiB));
  EXPECT_EQ(q.used_bytes(), 20 * kMiB) << "a failed resize changes nothing";
  EXPECT_FALSE(Charge::Try(&q, 81 * kMiB)) << "denied";
  EXPECT_FALSE(Charge::Try(nullptr, 1));
}

}  // namespace
}  // namespace gpushare::quota
