// SPDX-License-Identifier: Apache-2.0
#include "src/device_memory.h"

#include <gtest/gtest.h>

namespace gpushare {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

TEST(DeviceMemory, PortionsAreExactUpToTwelveDecimals) {
  EXPECT_EQ(ParsePortion("1"), DeviceMemory::kPortionOne);
  EXPECT_EQ(ParsePortion("1.000"), DeviceMemory::kPortionOne);
  EXPECT_EQ(ParsePortion("0.5"), DeviceMemory::kPortionOne / 2);
  EXPECT_EQ(ParsePortion("0.000000000001"), 1u);
  EXPECT_FALSE(ParsePortion("0.0000000000001").has_value()) << "truncated to 0, which is no portion";
  EXPECT_FALSE(ParsePortion("1.000000000001").has_value());
}

TEST(DeviceMemory, ResolvesEachFormOnTheDevice) {
  std::string error;
  EXPECT_EQ(ResolveDeviceMemory(DeviceMemory::Bytes(5, "X", "5"), 16 * kGiB, AliyunUnit::kInfer, &error), 5u);
  DeviceMemory portion = DeviceMemory::Bytes(*ParsePortion("0.125"), "GPU_PORTION", "0.125");
  portion.form = DeviceMemory::Form::kPortion;
  EXPECT_EQ(ResolveDeviceMemory(portion, 16 * kGiB, AliyunUnit::kInfer, &error), 2 * kGiB);
  DeviceMemory units = DeviceMemory::Bytes(3, "ALIYUN_COM_GPU_MEM_CONTAINER", "3");
  units.form = DeviceMemory::Form::kAliyunUnits;
  units.aliyun_dev_units = 16;
  EXPECT_EQ(ResolveDeviceMemory(units, 16 * kGiB, AliyunUnit::kInfer, &error), 3 * kGiB);
  EXPECT_EQ(ResolveDeviceMemory(units, 16 * kGiB, AliyunUnit::kMiB, &error), 3 * kMiB);
  EXPECT_FALSE(ResolveDeviceMemory(units, 16 * kMiB * 1024 * 8, AliyunUnit::kInfer, &error).has_value())
      << "16 units on a 128 GiB device: neither 16 GiB nor 16 MiB is within 25%";
  EXPECT_NE(error.find("ALIYUN_COM_GPU_MEM_CONTAINER=\"3\""), std::string::npos) << error;
  error.clear();
  units.amount = UINT64_MAX;
  EXPECT_FALSE(ResolveDeviceMemory(units, 16 * kGiB, AliyunUnit::kGiB, &error).has_value());
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace gpushare
