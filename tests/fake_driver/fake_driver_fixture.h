// SPDX-License-Identifier: Apache-2.0
// Test fixture shared by the fake driver's own tests: a fresh, un-initialized driver with two
// devices (1 GiB and 512 MiB) per test.
#pragma once
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cudaTypedefs.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>

#include "tests/fake_driver/fake_cuda_control.h"

namespace fakecuda_test {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

class FakeDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    fakecuda_reset();
    for (const char* v : {"GPUSHARE_FAKE_DEVICES", "GPUSHARE_FAKE_CTX_OVERHEAD",
                          "GPUSHARE_FAKE_STATE_DIR", "GPUSHARE_FAKE_UUID_SALT",
                          "GPUSHARE_FAKE_NO_DEVICE", "GPUSHARE_FAKE_CTX_CREATE_MS"}) {
      unsetenv(v);
    }
    setenv("GPUSHARE_FAKE_DEVICES", "1Gi,512Mi", 1);
  }
  void TearDown() override { fakecuda_reset(); }

  // cuInit + retain device 0's primary context and make it current.
  CUcontext Start() {
    EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
    CUcontext ctx = nullptr;
    EXPECT_EQ(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    return ctx;
  }
};

}  // namespace fakecuda_test
