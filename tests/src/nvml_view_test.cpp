// SPDX-License-Identifier: Apache-2.0
#include "src/nvml_view.h"

#include <gtest/gtest.h>

namespace gpushare {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr const char* kUuid = "GPU-a4f2bbd8-2a06-4abe-39e3-8a10625d8476";

TEST(NvmlView, UuidBytes) {
  const std::optional<std::string> bytes = UuidBytesOf(kUuid);
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 16u);
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[0]), 0xa4);
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[15]), 0x76);
  EXPECT_FALSE(UuidBytesOf("MIG-a4f2bbd8-2a06-4abe-39e3-8a10625d8476").has_value());
  EXPECT_FALSE(UuidBytesOf("GPU-a4f2bbd8").has_value());
  EXPECT_FALSE(UuidBytesOf("GPU-a4f2bbd8-2a06-4abe-39e3-8a10625d84760").has_value());
  EXPECT_FALSE(UuidBytesOf("GPU-z4f2bbd8-2a06-4abe-39e3-8a10625d8476").has_value());
}

TEST(NvmlView, CudaIndexFollowsCudaVisibleDevices) {
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, nullptr), 2);
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, "3,2"), 1);
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, " 2 , 3"), 0);
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, "0,1"), -1);
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, "GPU-ffff,GPU-a4f2"), 1) << "UUID prefixes";
  EXPECT_EQ(CudaIndexOfNvmlDevice(2, kUuid, "0,x,2"), -1) << "CUDA stops at the first entry it cannot read";
  EXPECT_EQ(CudaIndexOfNvmlDevice(0, kUuid, ""), -1) << "empty: no device";
}

TEST(NvmlView, ClampShowsTheQuota) {
  NvmlDeviceView view;
  const NvmlMemoryFigures physical{80 * kGiB, 30 * kGiB, 50 * kGiB};
  const NvmlMemoryFigures same = ClampNvmlMemory(view, physical);
  EXPECT_EQ(same.total, physical.total) << "not limited: untouched";
  EXPECT_EQ(same.free, physical.free);
  view.limited = true;
  view.quota_bytes = 8 * kGiB;
  view.used_bytes = 3 * kGiB;
  NvmlMemoryFigures shown = ClampNvmlMemory(view, physical);
  EXPECT_EQ(shown.total, 8 * kGiB);
  EXPECT_EQ(shown.used, 3 * kGiB);
  EXPECT_EQ(shown.free, 5 * kGiB);
  shown = ClampNvmlMemory(view, {80 * kGiB, 2 * kGiB, 78 * kGiB});
  EXPECT_EQ(shown.free, 2 * kGiB) << "never more than is physically free";
  view.used_bytes = 9 * kGiB;  // charged past the limit (memory the driver already handed out)
  shown = ClampNvmlMemory(view, physical);
  EXPECT_EQ(shown.used, 8 * kGiB);
  EXPECT_EQ(shown.free, 0u);
  view.quota_bytes = 100 * kGiB;
  EXPECT_EQ(ClampNvmlMemory(view, physical).total, 80 * kGiB) << "capped by the device";
}

}  // namespace
}  // namespace gpushare
