// SPDX-License-Identifier: Apache-2.0
// Runs inside a process with LD_PRELOAD=libgpushare.so (see tests/CMakeLists.txt): every row of
// the hook table resolves to our wrapper three ways, and what is not ours passes through.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tests/fake_driver/fake_cuda_control.h"

namespace {

enum StreamFlavour { kAnyStream, kLegacy, kPerThread };

struct Row {
  const char* name;
  int since;
  StreamFlavour stream;
  const char* symbol;
};

const Row kRows[] = {
#define GS_HOOK(name, since, stream, symbol, pfn) {#name, since, stream, #symbol},
#include "hooks/hook_table.inc"
#undef GS_HOOK
};

void* Libcuda() {
  static void* handle = dlopen("libcuda.so.1", RTLD_NOW);
  return handle;
}

PFN_cuGetProcAddress_v12000 Gpa() {
  return reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(Libcuda(), "cuGetProcAddress_v2"));
}

bool IsOurs(void* p, const char* symbol) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return false;
  const bool in_library = std::strstr(info.dli_fname, "libgpushare") != nullptr;
  return in_library && (symbol == nullptr || (info.dli_sname != nullptr && std::strcmp(info.dli_sname, symbol) == 0));
}

void* Ask(const char* name, int version, cuuint64_t flags, CUresult* rc = nullptr,
          CUdriverProcAddressQueryResult* status = nullptr) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult s{};
  const CUresult r = Gpa()(name, &p, version, flags, &s);
  if (rc != nullptr) *rc = r;
  if (status != nullptr) *status = s;
  return p;
}

TEST(Resolution, EveryRowResolvesToOurWrapperThreeWays) {
  ASSERT_NE(Libcuda(), nullptr);
  ASSERT_TRUE(IsOurs(reinterpret_cast<void*>(Gpa()), "cuGetProcAddress_v2"));
  for (const Row& row : kRows) {
    SCOPED_TRACE(std::string(row.symbol) + " (" + row.name + " since " + std::to_string(row.since) + ")");
    void* exported = dlsym(RTLD_DEFAULT, row.symbol);
    void* by_handle = dlsym(Libcuda(), row.symbol);
    const cuuint64_t flags = row.stream == kPerThread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                                                      : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
    CUdriverProcAddressQueryResult status{};
    CUresult rc = CUDA_ERROR_UNKNOWN;
    void* by_version = Ask(row.name, row.since, flags, &rc, &status);
    EXPECT_TRUE(IsOurs(exported, row.symbol));
    EXPECT_EQ(by_handle, exported);
    EXPECT_EQ(rc, CUDA_SUCCESS);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS);
    EXPECT_EQ(by_version, exported);
  }
}

TEST(Resolution, NewerVersionsGetTheNewestAbiWeKnow) {
  EXPECT_TRUE(IsOurs(Ask("cuMemAlloc", 13000, 0), "cuMemAlloc_v2"));
  EXPECT_TRUE(IsOurs(Ask("cuCtxCreate", 11040, 0), "cuCtxCreate_v3"));
  EXPECT_TRUE(IsOurs(Ask("cuCtxCreate", 12000, 0), "cuCtxCreate_v3"));
  EXPECT_TRUE(IsOurs(Ask("cuCtxCreate", 13000, 0), "cuCtxCreate_v4"));
  EXPECT_TRUE(IsOurs(Ask("cuDevicePrimaryCtxRelease", 10000, 0), "cuDevicePrimaryCtxRelease"));
  EXPECT_TRUE(IsOurs(Ask("cuDevicePrimaryCtxRelease", 12000, 0), "cuDevicePrimaryCtxRelease_v2"));
  EXPECT_TRUE(IsOurs(Ask("cuGetProcAddress", 11030, 0), "cuGetProcAddress"));
  EXPECT_TRUE(IsOurs(Ask("cuGetProcAddress", 12000, 0), "cuGetProcAddress_v2"));
}

TEST(Resolution, StreamFlagsPickTheStreamVariant) {
  EXPECT_TRUE(IsOurs(Ask("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_DEFAULT), "cuLaunchKernel"));
  EXPECT_TRUE(IsOurs(Ask("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_LEGACY_STREAM), "cuLaunchKernel"));
  EXPECT_TRUE(IsOurs(Ask("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM),
                     "cuLaunchKernel_ptsz"));
  EXPECT_TRUE(IsOurs(Ask("cuMemAllocAsync", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM),
                     "cuMemAllocAsync_ptsz"));
  EXPECT_TRUE(IsOurs(Ask("cuMemAlloc", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM),
                     "cuMemAlloc_v2"));
}

TEST(Resolution, WhatTheDriverRefusesStaysRefused) {
  CUresult rc = CUDA_SUCCESS;
  CUdriverProcAddressQueryResult status{};
  EXPECT_EQ(Ask("cuNoSuchFunction", 13000, 0, &rc, &status), nullptr);
  EXPECT_EQ(rc, CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(Ask("cuMemAllocAsync", 11000, 0, &rc, &status), nullptr) << "below the first version";
  EXPECT_EQ(rc, CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  EXPECT_FALSE(IsOurs(Ask("cuMemAlloc", 2000, 0), nullptr)) << "the 32-bit ABI is not ours to wrap";
  EXPECT_EQ(dlsym(Libcuda(), "cuNoSuchFunction"), nullptr);
  void* libc = dlopen("libc.so.6", RTLD_NOW);
  EXPECT_EQ(dlsym(libc, "cuMemAlloc_v2"), nullptr) << "a handle without the symbol still gets NULL";
  EXPECT_NE(dlsym(libc, "malloc"), nullptr);
}

TEST(Resolution, WhatWeDoNotWrapPassesThroughUntouched) {
  void* count = Ask("cuDeviceGetCount", 13000, 0);
  ASSERT_NE(count, nullptr);
  EXPECT_FALSE(IsOurs(count, nullptr));
  EXPECT_EQ(count, dlsym(Libcuda(), "cuDeviceGetCount"));

  auto init = reinterpret_cast<PFN_cuInit_v2000>(Ask("cuInit", 13000, 0));
  ASSERT_EQ(init(0), CUDA_SUCCESS);
  auto get_export_table = reinterpret_cast<PFN_cuGetExportTable_v3000>(Ask("cuGetExportTable", 13000, 0));
  ASSERT_NE(get_export_table, nullptr);
  EXPECT_FALSE(IsOurs(reinterpret_cast<void*>(get_export_table), nullptr));
  const CUuuid uuid = {FAKECUDA_EXPORT_TABLE_UUID};
  const void* table = nullptr;
  EXPECT_EQ(get_export_table(&table, &uuid), CUDA_SUCCESS);
  EXPECT_NE(table, nullptr);
}

}  // namespace
