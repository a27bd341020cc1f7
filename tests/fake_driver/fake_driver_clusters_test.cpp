// SPDX-License-Identifier: Apache-2.0
// The fake driver's thread block clusters: cuOccupancyMaxActiveClusters for the whole GPU from
// its GPC model, required cluster dimensions (cuFuncSetAttribute / cuFuncGetAttribute), cluster
// launches, and occupancy with dynamic shared memory.
#include <cstdlib>

#include "tests/fake_driver/fake_driver_fixture.h"

extern "C" __attribute__((visibility("default"))) void fake_test_cluster_noop(const fakecuda_launch*) {}

namespace {

using namespace fakecuda_test;

class FakeClusters : public FakeDriver {
 protected:
  void SetUp() override {
    FakeDriver::SetUp();
    for (const char* v : {"GPUSHARE_FAKE_TPC_BITS", "GPUSHARE_FAKE_GPCS", "GPUSHARE_FAKE_UNCLUSTERED_BITS"}) unsetenv(v);
  }
  void TearDown() override {
    unsetenv("GPUSHARE_FAKE_UNCLUSTERED_BITS");
    FakeDriver::TearDown();
  }

  CUfunction Kernel() {
    CUmodule mod = nullptr;
    EXPECT_EQ(cuModuleLoadData(&mod, "clusters"), CUDA_SUCCESS);
    CUfunction f = nullptr;
    EXPECT_EQ(cuModuleGetFunction(&f, mod, "fake_test_cluster_noop"), CUDA_SUCCESS);
    return f;
  }

  // Blocks of `threads`; a cluster of `x` x 1 x 1 unless x is 0.
  CUlaunchConfig Config(unsigned threads, unsigned x, unsigned shared_bytes = 0) {
    CUlaunchConfig c{};
    c.gridDimX = c.gridDimY = c.gridDimZ = 1;
    c.blockDimX = threads, c.blockDimY = c.blockDimZ = 1;
    c.sharedMemBytes = shared_bytes;
    if (x != 0) {
      attr_.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      attr_.value.clusterDim.x = x, attr_.value.clusterDim.y = attr_.value.clusterDim.z = 1;
      c.attrs = &attr_;
      c.numAttrs = 1;
    }
    return c;
  }

  int Clusters(CUfunction f, const CUlaunchConfig& c) {
    int n = -1;
    EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &c), CUDA_SUCCESS);
    return n;
  }

  CUlaunchAttribute attr_{};
};

TEST_F(FakeClusters, TheWholeGpuFromItsGpcs) {
  Start();
  const CUfunction f = Kernel();
  // The H100's default: GPCs of 8, 16 (five) and 18 (two) SMs run clusters (124 SMs); blocks of
  // 1024 threads, 2 per SM. 18 SMs hold 4 clusters of 8, not 4.5.
  EXPECT_EQ(Clusters(f, Config(1024, 2)), 124);
  EXPECT_EQ(Clusters(f, Config(1024, 8)), 2 + 5 * 4 + 2 * 4);
  EXPECT_EQ(Clusters(f, Config(1024, 1)), 248);
  // Shared memory: 100 KiB blocks, 2 per SM (228 KiB, 1 KiB reserved per block), once allowed.
  EXPECT_EQ(Clusters(f, Config(256, 2, 100 * 1024)), 0);
  ASSERT_EQ(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 * 1024), CUDA_SUCCESS);
  EXPECT_EQ(Clusters(f, Config(256, 2, 100 * 1024)), 124);
  int per_sm = 0;
  ASSERT_EQ(cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, f, 256, 100 * 1024), CUDA_SUCCESS);
  EXPECT_EQ(per_sm, 2);
  // Non-portable sizes need the attribute.
  int n = 0;
  CUlaunchConfig c = Config(1024, 16);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &c), CUDA_ERROR_INVALID_CLUSTER_SIZE);
  ASSERT_EQ(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1), CUDA_SUCCESS);
  EXPECT_EQ(Clusters(f, c), 1 + 5 * 2 + 2 * 2);
}

TEST_F(FakeClusters, EveryTpcRunsClustersWithoutUnclusteredBits) {
  setenv("GPUSHARE_FAKE_UNCLUSTERED_BITS", "", 1);
  Start();
  EXPECT_EQ(Clusters(Kernel(), Config(1024, 2)), 132);
}

TEST_F(FakeClusters, RequiredClusterDimensions) {
  Start();
  const CUfunction f = Kernel();
  int v = -1;
  EXPECT_EQ(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET, f), CUDA_SUCCESS);
  EXPECT_EQ(v, 0);
  int n = 0;
  CUlaunchConfig plain = Config(1024, 0);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &plain), CUDA_ERROR_INVALID_CLUSTER_SIZE) << "no cluster at all";
  for (const auto attrib : {CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT})
    ASSERT_EQ(cuFuncSetAttribute(f, attrib, 2), CUDA_SUCCESS);
  ASSERT_EQ(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH, 1), CUDA_SUCCESS);
  EXPECT_EQ(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT, f), CUDA_SUCCESS);
  EXPECT_EQ(v, 2);
  EXPECT_EQ(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET, f), CUDA_SUCCESS);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(Clusters(f, plain), 4 + 5 * 8 + 2 * 9);
  CUlaunchConfig other = Config(1024, 4);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &other), CUDA_ERROR_INVALID_CLUSTER_SIZE) << "4 x 1 x 1 is not 2 x 2 x 1";
  // Launches take the required cluster: the grid must be a multiple of it.
  void* args[] = {nullptr};
  EXPECT_EQ(cuLaunchKernel(f, 3, 2, 1, 32, 1, 1, 0, nullptr, args, nullptr), CUDA_ERROR_INVALID_CLUSTER_SIZE);
  EXPECT_EQ(cuLaunchKernel(f, 4, 2, 1, 32, 1, 1, 0, nullptr, args, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cuLaunchKernelEx(&other, f, args, nullptr), CUDA_ERROR_INVALID_CLUSTER_SIZE);
}

TEST_F(FakeClusters, BadArguments) {
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  int n = 0;
  CUlaunchConfig c = Config(1024, 2);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, nullptr, &c), CUDA_ERROR_INVALID_CONTEXT) << "no current context";
  Start();
  const CUfunction f = Kernel();
  EXPECT_EQ(cuOccupancyMaxActiveClusters(nullptr, f, &c), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, nullptr, &c), CUDA_ERROR_INVALID_HANDLE);
  CUlaunchConfig empty = Config(0, 2);
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &empty), CUDA_ERROR_INVALID_VALUE);
  CUlaunchConfig zero = Config(1024, 0);
  zero.numAttrs = 1;
  EXPECT_EQ(cuOccupancyMaxActiveClusters(&n, f, &zero), CUDA_ERROR_INVALID_VALUE) << "attributes missing";
  int v = 0;
  EXPECT_EQ(cuFuncGetAttribute(nullptr, CU_FUNC_ATTRIBUTE_NUM_REGS, f), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, nullptr), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, -1), CUDA_ERROR_INVALID_VALUE);
  void* p = nullptr;
  ASSERT_EQ(cuGetProcAddress("cuOccupancyMaxActiveClusters", &p, 12000, 0), CUDA_SUCCESS);
  EXPECT_EQ(p, reinterpret_cast<void*>(&cuOccupancyMaxActiveClusters));
}

}  // namespace
