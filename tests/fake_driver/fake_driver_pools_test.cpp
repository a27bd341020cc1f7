// SPDX-License-Identifier: Apache-2.0
// The fake driver's own semantics for memory beyond cuMemAlloc: stream-ordered pools, VMM,
// arrays, graph memory nodes.
#include "tests/fake_driver/fake_driver_fixture.h"

namespace {

using namespace fakecuda_test;

cuuint64_t PoolAttr(CUmemoryPool pool, CUmemPool_attribute attr) {
  cuuint64_t v = ~0ull;
  EXPECT_EQ(cuMemPoolGetAttribute(pool, attr, &v), CUDA_SUCCESS);
  return v;
}

TEST_F(FakeDriver, StreamOrderedPools) {
  Start();
  CUmemoryPool pool = nullptr, dflt = nullptr;
  ASSERT_EQ(cuDeviceGetMemPool(&pool, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDeviceGetDefaultMemPool(&dflt, 0), CUDA_SUCCESS);
  EXPECT_EQ(pool, dflt);
  CUstream s = nullptr;
  ASSERT_EQ(cuStreamCreate(&s, 0), CUDA_SUCCESS);
  CUdeviceptr a = 0, b = 0;
  EXPECT_EQ(cuMemAllocAsync(&a, 0, s), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocAsync(&a, 3 * kMiB, s), CUDA_SUCCESS);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * kMiB);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 3 * kMiB);
  EXPECT_EQ(fakecuda_physical_used(0), 4 * kMiB);
  ASSERT_EQ(cuMemFreeAsync(a, s), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeAsync(a, s), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * kMiB);
  ASSERT_EQ(cuMemAllocAsync_ptsz(&b, kMiB, CU_STREAM_PER_THREAD), CUDA_SUCCESS);  // reuses
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * kMiB);
  EXPECT_EQ(cuMemFreeAsync_ptsz(b, CU_STREAM_PER_THREAD), CUDA_SUCCESS);

  cuuint64_t threshold = 4 * kMiB;
  ASSERT_EQ(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold),
            CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * kMiB);
  threshold = 0;
  ASSERT_EQ(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold),
            CUDA_SUCCESS);
  EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0u);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 4 * kMiB);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);

  // Trim: two chunks, one in use.
  ASSERT_EQ(cuMemAllocAsync(&a, 2 * kMiB, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAllocAsync(&b, 2 * kMiB, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(b, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cuMemPoolTrimTo(pool, 0), CUDA_SUCCESS);
  EXPECT_EQ(PoolAttr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * kMiB);
  EXPECT_EQ(cuMemAllocAsync(&b, kGiB, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fakecuda_physical_used(0), 2 * kMiB);

  // Explicit pools.
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = 3;
  CUmemoryPool mine = nullptr;
  EXPECT_EQ(cuMemPoolCreate(&mine, &props), CUDA_ERROR_INVALID_DEVICE);
  props.location.id = 0;
  ASSERT_EQ(cuMemPoolCreate(&mine, &props), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAllocFromPoolAsync(&b, 5 * kMiB, mine, s), CUDA_SUCCESS);
  EXPECT_EQ(PoolAttr(mine, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 6 * kMiB);
  ASSERT_EQ(cuDeviceSetMemPool(0, mine), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceSetMemPool(1, mine), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemPoolDestroy(dflt), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemPoolDestroy(mine), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGetMemPool(&pool, 0), CUDA_SUCCESS);
  EXPECT_EQ(pool, dflt);
  EXPECT_EQ(fakecuda_physical_used(0), 2 * kMiB);
  EXPECT_EQ(cuMemFree_v2(a), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy_v2(s), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(FakeDriver, VirtualMemoryManagement) {
  Start();
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t gran = 0;
  ASSERT_EQ(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
            CUDA_SUCCESS);
  EXPECT_EQ(gran, 2 * kMiB);
  CUmemGenericAllocationHandle h = 0;
  EXPECT_EQ(cuMemCreate(&h, kMiB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
  prop.location.id = 9;
  EXPECT_EQ(cuMemCreate(&h, gran, &prop, 0), CUDA_ERROR_INVALID_DEVICE);
  prop.location.id = 0;
  ASSERT_EQ(cuMemCreate(&h, 2 * gran, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 2 * gran);
  CUdeviceptr va = 0;
  ASSERT_EQ(cuMemAddressReserve(&va, 4 * gran, 0, 0, 0), CUDA_SUCCESS);
  EXPECT_EQ(va % gran, 0u);
  ASSERT_EQ(cuMemMap(va, 2 * gran, 0, h, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemMap(va, 2 * gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
  const int x = 42;
  EXPECT_EQ(cuMemcpyHtoD_v2(va, &x, 4), CUDA_ERROR_INVALID_VALUE);  // no access yet
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ASSERT_EQ(cuMemSetAccess(va, 2 * gran, &access, 1), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyHtoD_v2(va + gran, &x, 4), CUDA_SUCCESS);
  CUmemGenericAllocationHandle again = 0;
  ASSERT_EQ(cuMemRetainAllocationHandle(&again, reinterpret_cast<void*>(va + 5)), CUDA_SUCCESS);
  EXPECT_EQ(again, h);
  EXPECT_EQ(cuMemRelease(again), CUDA_SUCCESS);
  CUmemAllocationProp got{};
  EXPECT_EQ(cuMemGetAllocationPropertiesFromHandle(&got, h), CUDA_SUCCESS);
  EXPECT_EQ(got.location.id, 0);

  ASSERT_EQ(cuMemUnmap(va, 2 * gran), CUDA_SUCCESS);
  CUdeviceptr base = 0;
  EXPECT_EQ(cuMemGetAddressRange_v2(&base, nullptr, va), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuMemsetD8_v2(va, 0, 1), CUDA_ERROR_INVALID_VALUE);
  // Remap elsewhere in the reservation: contents persist.
  ASSERT_EQ(cuMemMap(va + 2 * gran, 2 * gran, 0, h, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemSetAccess(va + 2 * gran, 2 * gran, &access, 1), CUDA_SUCCESS);
  int y = 0;
  EXPECT_EQ(cuMemcpyDtoH_v2(&y, va + 3 * gran, 4), CUDA_SUCCESS);
  EXPECT_EQ(y, 42);
  // Released while mapped: physical stays until the unmap.
  EXPECT_EQ(cuMemRelease(h), CUDA_SUCCESS);
  EXPECT_EQ(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fakecuda_physical_used(0), 2 * gran);
  EXPECT_EQ(cuMemAddressFree(va, 4 * gran), CUDA_ERROR_INVALID_VALUE);  // still mapped
  EXPECT_EQ(cuMemUnmap(va + 2 * gran, 2 * gran), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  EXPECT_EQ(cuMemAddressFree(va, 4 * gran), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_allocations(), 0);
}

TEST_F(FakeDriver, Arrays) {
  Start();
  CUDA_ARRAY_DESCRIPTOR d{};
  d.Width = 1000;
  d.Height = 1000;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 4;
  CUarray arr = nullptr;
  ASSERT_EQ(cuArrayCreate_v2(&arr, &d), CUDA_SUCCESS);
  CUDA_ARRAY_MEMORY_REQUIREMENTS req{};
  ASSERT_EQ(cuArrayGetMemoryRequirements(&req, arr, 0), CUDA_SUCCESS);
  EXPECT_EQ(req.size, 16 * kMiB);  // 16384-byte rows * 1000 = 15.6 MiB -> 16 MiB
  EXPECT_EQ(req.alignment, 512u);
  EXPECT_EQ(fakecuda_physical_used(0), 16 * kMiB);
  d.NumChannels = 3;
  EXPECT_EQ(cuArrayCreate_v2(&arr, &d), CUDA_ERROR_INVALID_VALUE);
  d.NumChannels = 1;
  d.Width = 0;
  EXPECT_EQ(cuArrayCreate_v2(&arr, &d), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuArrayDestroy(arr), CUDA_SUCCESS);
  EXPECT_EQ(cuArrayDestroy(arr), CUDA_ERROR_INVALID_HANDLE);

  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = 4096;
  d3.Height = 4096;
  d3.Format = CU_AD_FORMAT_UNSIGNED_INT8;
  d3.NumChannels = 1;
  CUmipmappedArray mip = nullptr;
  EXPECT_EQ(cuMipmappedArrayCreate(&mip, &d3, 14), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMipmappedArrayCreate(&mip, &d3, 2), CUDA_SUCCESS);
  ASSERT_EQ(cuMipmappedArrayGetMemoryRequirements(&req, mip, 0), CUDA_SUCCESS);
  EXPECT_EQ(req.size, 20 * kMiB);  // 16 MiB + 4 MiB
  CUarray a3 = nullptr;
  d3.Depth = 3;
  ASSERT_EQ(cuArray3DCreate_v2(&a3, &d3), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 20 * kMiB + 48 * kMiB);
  EXPECT_EQ(cuMipmappedArrayDestroy(mip), CUDA_SUCCESS);
  EXPECT_EQ(cuDevicePrimaryCtxReset(0), CUDA_SUCCESS);  // frees the 3D array too
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
}

TEST_F(FakeDriver, GraphMemoryNodes) {
  Start();
  CUgraph g = nullptr;
  ASSERT_EQ(cuGraphCreate(&g, 0), CUDA_SUCCESS);
  CUDA_MEM_ALLOC_NODE_PARAMS p{};
  p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.poolProps.location.id = 0;
  CUgraphNode alloc = nullptr, free_node = nullptr;
  EXPECT_EQ(cuGraphAddMemAllocNode(&alloc, g, nullptr, 0, &p), CUDA_ERROR_INVALID_VALUE);
  p.bytesize = 3 * kMiB;
  ASSERT_EQ(cuGraphAddMemAllocNode(&alloc, g, nullptr, 0, &p), CUDA_SUCCESS);
  ASSERT_NE(p.dptr, 0u);
  EXPECT_EQ(cuMemsetD8_v2(p.dptr, 1, 16), CUDA_ERROR_INVALID_VALUE);  // not yet allocated
  CUgraphExec exec = nullptr, exec2 = nullptr;
  ASSERT_EQ(cuGraphInstantiateWithFlags(&exec, g, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphInstantiateWithFlags(&exec2, g, 0), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  ASSERT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 4 * kMiB);
  EXPECT_EQ(cuMemsetD8_v2(p.dptr, 1, 16), CUDA_SUCCESS);
  cuuint64_t v = 0;
  ASSERT_EQ(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v), CUDA_SUCCESS);
  EXPECT_EQ(v, 4 * kMiB);
  EXPECT_EQ(cuGraphLaunch(exec, nullptr), CUDA_ERROR_INVALID_VALUE);  // still allocated
  ASSERT_EQ(cuMemFreeAsync(p.dptr, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v), CUDA_SUCCESS);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(fakecuda_graph_reserved(0), 4 * kMiB);  // stays reserved
  EXPECT_EQ(cuDeviceGraphMemTrim(0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  ASSERT_EQ(cuGraphLaunch_ptsz(exec, nullptr), CUDA_SUCCESS);  // re-reserves
  EXPECT_EQ(fakecuda_physical_used(0), 4 * kMiB);
  EXPECT_EQ(cuGraphExecDestroy(exec), CUDA_SUCCESS);  // allocation outlives the exec
  EXPECT_EQ(fakecuda_physical_used(0), 4 * kMiB);
  EXPECT_EQ(cuMemFree_v2(p.dptr), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);

  // Alloc + free in one graph.
  ASSERT_EQ(cuGraphAddMemFreeNode(&free_node, g, &alloc, 1, p.dptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphInstantiateWithFlags(&exec, g, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_graph_reserved(0), 4 * kMiB);
  EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphExecDestroy(exec), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
}

}  // namespace
