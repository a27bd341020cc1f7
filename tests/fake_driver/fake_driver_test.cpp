// SPDX-License-Identifier: Apache-2.0
// The fake driver's own semantics: initialization, devices, contexts, linear memory, kernels,
// streams, cuGetProcAddress, cross-process sharing, thread safety.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/fake_driver/fake_driver_fixture.h"

// A "kernel": params are (CUdeviceptr data, int n); adds 1 to each int.
extern "C" __attribute__((visibility("default"))) void fake_test_add_one(
    const fakecuda_launch* l) {
  int* data = reinterpret_cast<int*>(*static_cast<CUdeviceptr*>(l->params[0]));
  const int n = *static_cast<int*>(l->params[1]);
  for (int i = 0; i < n; ++i) data[i] += 1;
}

namespace {

using namespace fakecuda_test;

TEST_F(FakeDriver, BeforeInit) {
  int n = 0;
  EXPECT_EQ(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc_v2(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(cuDriverGetVersion(&n), CUDA_SUCCESS);
  EXPECT_EQ(n, 13000);
  const char* s = nullptr;
  EXPECT_EQ(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s), CUDA_SUCCESS);
  EXPECT_STREQ(s, "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s), CUDA_SUCCESS);
  EXPECT_EQ(cuGetErrorName(static_cast<CUresult>(123456), &s), CUDA_ERROR_INVALID_VALUE);
  void* fn = nullptr;
  EXPECT_EQ(cuGetProcAddress("cuInit", &fn, 13000, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuInit(1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
  EXPECT_EQ(n, 2);
}

TEST_F(FakeDriver, NoDeviceAndBadConfig) {
  setenv("GPUSHARE_FAKE_NO_DEVICE", "1", 1);
  EXPECT_EQ(cuInit(0), CUDA_ERROR_NO_DEVICE);
  unsetenv("GPUSHARE_FAKE_NO_DEVICE");
  setenv("GPUSHARE_FAKE_DEVICES", "12Q", 1);
  EXPECT_EQ(cuInit(0), CUDA_ERROR_INVALID_VALUE);
  unsetenv("GPUSHARE_FAKE_DEVICES");
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  size_t total = 0;
  EXPECT_EQ(cuDeviceTotalMem_v2(&total, 0), CUDA_SUCCESS);
  EXPECT_EQ(total, 16 * kGiB);
}

TEST_F(FakeDriver, DevicesAndUuids) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  size_t total = 0;
  EXPECT_EQ(cuDeviceTotalMem_v2(&total, 1), CUDA_SUCCESS);
  EXPECT_EQ(total, 512 * kMiB);
  EXPECT_EQ(cuDeviceTotalMem_v2(&total, 2), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(cuDeviceTotalMem_v2(nullptr, 0), CUDA_ERROR_INVALID_VALUE);
  CUdevice dev = -1;
  EXPECT_EQ(cuDeviceGet(&dev, 1), CUDA_SUCCESS);
  EXPECT_EQ(dev, 1);
  EXPECT_EQ(cuDeviceGet(&dev, 5), CUDA_ERROR_INVALID_DEVICE);
  char name[64];
  EXPECT_EQ(cuDeviceGetName(name, sizeof name, 0), CUDA_SUCCESS);
  EXPECT_STREQ(name, "gpushare fake GPU");
  CUuuid u0{}, u1{};
  EXPECT_EQ(cuDeviceGetUuid_v2(&u0, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGetUuid(&u1, 1), CUDA_SUCCESS);
  const unsigned char want0[16] = {0x67, 0x73, 0x66, 0x6b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(u0.bytes, want0, 16), 0);
  EXPECT_EQ(u1.bytes[15], 1);
  int v = -1;
  EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS);
  EXPECT_EQ(v, 132);
  EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 1), CUDA_SUCCESS);
  EXPECT_EQ(v, 9);
  EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0), CUDA_SUCCESS);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 0), CUDA_SUCCESS);
  EXPECT_EQ(v, 0);

  fakecuda_reset();
  setenv("GPUSHARE_FAKE_UUID_SALT", "machine-b", 1);
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUuuid salted{};
  EXPECT_EQ(cuDeviceGetUuid_v2(&salted, 0), CUDA_SUCCESS);
  EXPECT_EQ(std::memcmp(salted.bytes, want0, 4), 0);
  EXPECT_NE(std::memcmp(salted.bytes + 4, want0 + 4, 8), 0);
}

TEST_F(FakeDriver, PrimaryContextLifecycle) {
  setenv("GPUSHARE_FAKE_CTX_OVERHEAD", "300Mi", 1);
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc_v2(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
  unsigned flags = 1;
  int active = 1;
  EXPECT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 0);
  CUcontext a = nullptr, b = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&a, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&b, 0), CUDA_SUCCESS);
  EXPECT_EQ(a, b);
  EXPECT_EQ(fakecuda_physical_used(0), 300 * kMiB);
  EXPECT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 1);
  // Device 1 (512 MiB) fits one context's overhead, not two.
  CUcontext c1 = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&c1, 1), CUDA_SUCCESS);
  CUcontext extra = nullptr;
  EXPECT_EQ(cuCtxCreate_v2(&extra, 0, 1), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(1), CUDA_SUCCESS);

  ASSERT_EQ(cuCtxSetCurrent(a), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAlloc_v2(&p, 100 * kMiB), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 400 * kMiB);
  EXPECT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_allocations(), 1);
  EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_allocations(), 0);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_ERROR_INVALID_CONTEXT);
  // Still current, but destroyed.
  EXPECT_EQ(cuMemAlloc_v2(&p, 16), CUDA_ERROR_CONTEXT_IS_DESTROYED);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&b, 0), CUDA_SUCCESS);
  EXPECT_EQ(a, b);
  EXPECT_EQ(cuMemAlloc_v2(&p, 16), CUDA_SUCCESS);
  EXPECT_EQ(cuDevicePrimaryCtxReset_v2(0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  EXPECT_EQ(fakecuda_live_contexts(), 0);
}

TEST_F(FakeDriver, CreatedContextsAndStack) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext c1 = nullptr, c2 = nullptr, cur = nullptr;
  ASSERT_EQ(cuCtxCreate_v2(&c1, 0, 0), CUDA_SUCCESS);
  CUctxCreateParams params{};
  ASSERT_EQ(cuCtxCreate_v4(&c2, nullptr, 0, 1), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxCreate_v4(&c2, &params, 0, 7), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, c2);
  CUdevice dev = -1;
  EXPECT_EQ(cuCtxGetDevice(&dev), CUDA_SUCCESS);
  EXPECT_EQ(dev, 1);
  EXPECT_EQ(cuCtxGetDevice_v2(&dev, c1), CUDA_SUCCESS);
  EXPECT_EQ(dev, 0);
  EXPECT_EQ(cuCtxPopCurrent_v2(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, c2);
  EXPECT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, c1);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc_v2(&p, kMiB), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxPushCurrent_v2(c2), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxDestroy_v2(c1), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_process_used(0), 0u);
  EXPECT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, c2);
  EXPECT_EQ(cuCtxDestroy_v2(c1), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxPushCurrent_v2(c1), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxDestroy_v2(c2), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxPopCurrent_v2(&cur), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(FakeDriver, LinearMemory) {
  Start();
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAlloc_v2(nullptr, 8), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAlloc_v2(&p, kGiB + 1), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
  ASSERT_EQ(cuMemAlloc_v2(&p, 256 * kMiB), CUDA_SUCCESS);  // costs no RAM until touched
  size_t free_b = 0, total = 0;
  EXPECT_EQ(cuMemGetInfo_v2(&free_b, &total), CUDA_SUCCESS);
  EXPECT_EQ(total, kGiB);
  EXPECT_EQ(free_b, kGiB - 256 * kMiB);

  std::vector<int> in(1000), out(1000);
  for (int i = 0; i < 1000; ++i) in[i] = i;
  EXPECT_EQ(cuMemcpyHtoD_v2(p, in.data(), 4000), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyDtoD_v2(p + 8000, p, 4000), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyDtoH_v2(out.data(), p + 8000, 4000), CUDA_SUCCESS);
  EXPECT_EQ(in, out);
  EXPECT_EQ(cuMemsetD32_v2(p, 0xdeadbeef, 4), CUDA_SUCCESS);
  unsigned word = 0;
  EXPECT_EQ(cuMemcpyDtoH_v2(&word, p + 12, 4), CUDA_SUCCESS);
  EXPECT_EQ(word, 0xdeadbeefu);
  EXPECT_EQ(cuMemsetD32_v2(p + 2, 0, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemsetD8_v2(p + 256 * kMiB - 1, 0, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyHtoD_v2(p + 256 * kMiB - 4, in.data(), 8), CUDA_ERROR_INVALID_VALUE);

  CUdeviceptr base = 0;
  size_t size = 0;
  EXPECT_EQ(cuMemGetAddressRange_v2(&base, &size, p + 100), CUDA_SUCCESS);
  EXPECT_EQ(base, p);
  EXPECT_EQ(size, 256 * kMiB);
  int ordinal = -1;
  EXPECT_EQ(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p), CUDA_SUCCESS);
  EXPECT_EQ(ordinal, 0);
  EXPECT_EQ(cuMemFree_v2(p + 4), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree_v2(0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree_v2(p), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree_v2(p), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemGetAddressRange_v2(&base, &size, p), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);

  size_t pitch = 0;
  EXPECT_EQ(cuMemAllocPitch_v2(&p, &pitch, 100, 10, 3), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocPitch_v2(&p, &pitch, 700, 10, 4), CUDA_SUCCESS);
  EXPECT_EQ(pitch, 1024u);
  EXPECT_EQ(fakecuda_physical_used(0), 10240u);
  EXPECT_EQ(cuMemAllocManaged(&p, 64, 7), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocManaged(&p, 64, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
  bool managed = false;
  EXPECT_EQ(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p), CUDA_SUCCESS);
  EXPECT_TRUE(managed);
  void* host = nullptr;
  ASSERT_EQ(cuMemAllocHost_v2(&host, 4096), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 10240u + 64u);
  EXPECT_EQ(cuMemFreeHost(host), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeHost(host), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(FakeDriver, KernelsAndStreams) {
  Start();
  CUmodule mod = nullptr;
  const char image[] = "fake";
  EXPECT_EQ(cuModuleLoadData(&mod, nullptr), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuModuleLoadData(&mod, image), CUDA_SUCCESS);
  CUfunction f = nullptr;
  EXPECT_EQ(cuModuleGetFunction(&f, mod, "no_such_kernel_anywhere"), CUDA_ERROR_NOT_FOUND);
  ASSERT_EQ(cuModuleGetFunction(&f, mod, "fake_test_add_one"), CUDA_SUCCESS);
  CUdeviceptr d = 0;
  ASSERT_EQ(cuMemAlloc_v2(&d, 4 * sizeof(int)), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD32_v2(d, 5, 4), CUDA_SUCCESS);
  int n = 4;
  void* args[] = {&d, &n};
  EXPECT_EQ(cuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuLaunchKernel(f, 0, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr), CUDA_SUCCESS);
  CUstream s = nullptr;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchKernel_ptsz(f, 2, 1, 1, 32, 1, 1, 0, s, args, nullptr), CUDA_SUCCESS);
  CUlaunchConfig cfg{};
  cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = s;
  ASSERT_EQ(cuLaunchKernelEx(&cfg, f, args, nullptr), CUDA_SUCCESS);
  int out[4] = {};
  ASSERT_EQ(cuMemcpyDtoH_v2(out, d, sizeof out), CUDA_SUCCESS);
  EXPECT_EQ(out[3], 8);
  CUdevice dev = -1;
  EXPECT_EQ(cuStreamGetDevice(s, &dev), CUDA_SUCCESS);
  EXPECT_EQ(dev, 0);
  EXPECT_EQ(cuStreamGetDevice_ptsz(CU_STREAM_PER_THREAD, &dev), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleUnload(mod), CUDA_SUCCESS);
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuCtxSetCurrent(nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr),
            CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuStreamGetDevice(nullptr, &dev), CUDA_ERROR_INVALID_CONTEXT);
}

// An event dies with its context (cuCtxDestroy, a primary reset), as on a GPU: later uses get
// CUDA_ERROR_INVALID_HANDLE and are counted, its handle never names a new event, and an event
// records only on streams of its own context.
TEST_F(FakeDriver, EventsDieWithTheirContext) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext c1 = nullptr, c2 = nullptr;
  ASSERT_EQ(cuCtxCreate_v2(&c1, 0, 0), CUDA_SUCCESS);
  CUstream s1 = nullptr;
  ASSERT_EQ(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  CUevent e1 = nullptr;
  ASSERT_EQ(cuEventCreate(&e1, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
  EXPECT_EQ(cuEventRecord(e1, s1), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e1), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_events(), 1);
  ASSERT_EQ(cuCtxCreate_v2(&c2, 0, 0), CUDA_SUCCESS);  // current now
  CUstream s2 = nullptr;
  ASSERT_EQ(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  EXPECT_EQ(cuEventRecord(e1, s2), CUDA_ERROR_INVALID_HANDLE) << "another context's stream";
  EXPECT_EQ(cuEventRecord_ptsz(e1, nullptr), CUDA_ERROR_INVALID_HANDLE) << "c2's default stream";
  EXPECT_EQ(fakecuda_bad_event_calls(), 2u);
  ASSERT_EQ(cuCtxDestroy_v2(c1), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_events(), 0);
  EXPECT_EQ(cuEventQuery(e1), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventRecord(e1, s2), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventDestroy_v2(e1), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(fakecuda_bad_event_calls(), 5u);
  CUevent e2 = nullptr;
  ASSERT_EQ(cuEventCreate(&e2, 0), CUDA_SUCCESS);
  EXPECT_NE(e2, e1);
  EXPECT_EQ(cuEventRecord(e2, s2), CUDA_SUCCESS);
  Start();  // the primary context, current instead of c2
  CUevent e3 = nullptr;
  ASSERT_EQ(cuEventCreate(&e3, 0), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_events(), 2);
  ASSERT_EQ(cuDevicePrimaryCtxReset_v2(0), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e3), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventQuery(e2), CUDA_SUCCESS);
  EXPECT_EQ(cuEventDestroy_v2(e2), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_live_events(), 0);
  EXPECT_EQ(fakecuda_bad_event_calls(), 6u);
}

TEST_F(FakeDriver, GetProcAddress) {
  void* fn = nullptr;
  CUdriverProcAddressQueryResult st{};
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, &st), CUDA_SUCCESS);
  EXPECT_EQ(fn, reinterpret_cast<void*>(&cuMemAlloc_v2));
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SUCCESS);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &fn, 2000, 0, &st), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  EXPECT_EQ(cuGetProcAddress_v2("cuNoSuchThing", &fn, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(cuGetProcAddress_v2(nullptr, &fn, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuInit", nullptr, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);

  const auto at = [&](const char* name, int version, cuuint64_t flags) {
    void* p = nullptr;
    EXPECT_EQ(cuGetProcAddress(name, &p, version, flags), CUDA_SUCCESS) << name << version;
    return p;
  };
  const cuuint64_t ptds = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  const cuuint64_t legacy = CU_GET_PROC_ADDRESS_LEGACY_STREAM;
  EXPECT_EQ(at("cuLaunchKernel", 12000, 0), reinterpret_cast<void*>(&cuLaunchKernel));
  EXPECT_EQ(at("cuLaunchKernel", 12000, legacy), reinterpret_cast<void*>(&cuLaunchKernel));
  EXPECT_EQ(at("cuLaunchKernel", 12000, ptds), reinterpret_cast<void*>(&cuLaunchKernel_ptsz));
  EXPECT_EQ(at("cuLaunchKernel", 5000, ptds), reinterpret_cast<void*>(&cuLaunchKernel));
  EXPECT_EQ(at("cuMemAlloc", 12000, ptds), reinterpret_cast<void*>(&cuMemAlloc_v2));
  EXPECT_EQ(at("cuDevicePrimaryCtxRelease", 10000, 0),
            reinterpret_cast<void*>(&cuDevicePrimaryCtxRelease));
  EXPECT_EQ(at("cuDevicePrimaryCtxRelease", 11000, 0),
            reinterpret_cast<void*>(&cuDevicePrimaryCtxRelease_v2));
  EXPECT_EQ(at("cuCtxCreate", 11040, 0), reinterpret_cast<void*>(&cuCtxCreate_v3));
  EXPECT_EQ(at("cuCtxCreate", 13000, 0), reinterpret_cast<void*>(&cuCtxCreate_v4));
  EXPECT_EQ(at("cuGetProcAddress", 11030, 0), reinterpret_cast<void*>(&cuGetProcAddress));
  EXPECT_EQ(at("cuGetProcAddress", 12000, 0), reinterpret_cast<void*>(&cuGetProcAddress_v2));
  EXPECT_EQ(at("cuStreamGetDevice", 12080, ptds),
            reinterpret_cast<void*>(&cuStreamGetDevice_ptsz));
  EXPECT_EQ(at("cuMemcpyHtoD", 12000, ptds), reinterpret_cast<void*>(&cuMemcpyHtoD_v2_ptds));
  EXPECT_EQ(cuGetProcAddress("cuInit", &fn, 13000, 8), CUDA_ERROR_INVALID_VALUE);
  EXPECT_GT(fakecuda_covered_symbol_count(), 40);
}

TEST_F(FakeDriver, ExportTable) {
  const CUuuid id = {FAKECUDA_EXPORT_TABLE_UUID};
  const void* table = nullptr;
  ASSERT_EQ(cuGetExportTable(&table, &id), CUDA_SUCCESS);  // no cuInit needed
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(*static_cast<const uint64_t*>(table), 16u);
  const void* again = nullptr;
  ASSERT_EQ(cuGetExportTable(&again, &id), CUDA_SUCCESS);
  EXPECT_EQ(table, again);
  CUuuid other = id;
  other.bytes[15] ^= 1;
  EXPECT_EQ(cuGetExportTable(&table, &other), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(FakeDriver, SharedAcrossProcesses) {
  char dir[] = "/tmp/fakecuda-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  setenv("GPUSHARE_FAKE_STATE_DIR", dir, 1);
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // child: hold 600 MiB until told to exit; no gtest assertions here
    CUcontext ctx = nullptr;
    CUdeviceptr p = 0;
    char ok = cuInit(0) == CUDA_SUCCESS && cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_SUCCESS &&
                      cuCtxSetCurrent(ctx) == CUDA_SUCCESS &&
                      cuMemAlloc_v2(&p, 600 * kMiB) == CUDA_SUCCESS
                  ? 'y'
                  : 'n';
    if (write(to_parent[1], &ok, 1) != 1) _exit(2);
    char c;
    if (read(to_child[0], &c, 1) != 1) _exit(3);
    _exit(0);  // exits holding the memory: its slot must be reclaimed
  }
  char ok = 0;
  ASSERT_EQ(read(to_parent[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  Start();
  EXPECT_EQ(fakecuda_physical_used(0), 600 * kMiB);
  EXPECT_EQ(fakecuda_process_used(0), 0u);
  size_t free_b = 0, total = 0;
  EXPECT_EQ(cuMemGetInfo_v2(&free_b, &total), CUDA_SUCCESS);
  EXPECT_EQ(free_b, kGiB - 600 * kMiB);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc_v2(&p, 500 * kMiB), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemAlloc_v2(&p, 400 * kMiB), CUDA_SUCCESS);
  EXPECT_EQ(fakecuda_physical_used(0), 1000 * kMiB);
  ASSERT_EQ(write(to_child[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(fakecuda_physical_used(0), 400 * kMiB);
  EXPECT_EQ(fakecuda_physical_used(1), 0u);
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) close(fd);
  fakecuda_reset();
  for (const char* f : {"/fakegpu-0", "/fakegpu-1"}) unlink((std::string(dir) + f).c_str());
  rmdir(dir);
}

TEST_F(FakeDriver, ConcurrentThreads) {
  CUcontext ctx = Start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([ctx] {
      EXPECT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
      for (int i = 0; i < 100; ++i) {
        CUdeviceptr a = 0, b = 0;
        ASSERT_EQ(cuMemAlloc_v2(&a, kMiB), CUDA_SUCCESS);
        ASSERT_EQ(cuMemAllocAsync(&b, 64 * 1024, nullptr), CUDA_SUCCESS);
        ASSERT_EQ(cuMemsetD8_v2(a + i * 4096, 1, 4096), CUDA_SUCCESS);
        ASSERT_EQ(cuMemFree_v2(a), CUDA_SUCCESS);
        ASSERT_EQ(cuMemFreeAsync(b, nullptr), CUDA_SUCCESS);
      }
      EXPECT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fakecuda_live_allocations(), 0);
  EXPECT_EQ(fakecuda_physical_used(0), 0u);
}

}  // namespace
