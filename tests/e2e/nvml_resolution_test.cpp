// SPDX-License-Identifier: Apache-2.0
// Runs inside a process with LD_PRELOAD=libgpushare.so and the fake libnvidia-ml.so.1 on the
// library path (see tests/CMakeLists.txt): every row of hooks/nvml_table.inc resolves to our
// wrapper by the global scope and by dlsym on libnvidia-ml's own handle; other NVML names, and
// look-ups on a handle that lacks the name, pass through; the fake implements every row.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>

namespace {

const char* const kRows[] = {
#define GS_NVML_HOOK(symbol, pfn) #symbol,
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
};

const char* LibraryOf(void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

void* Nvml() {
  static void* handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  return handle;
}

TEST(NvmlResolution, EveryRowResolvesToOurWrapper) {
  ASSERT_NE(Nvml(), nullptr) << dlerror();
  for (const char* symbol : kRows) {
    EXPECT_NE(std::strstr(LibraryOf(dlsym(RTLD_DEFAULT, symbol)), "libgpushare"), nullptr) << symbol << " by the global scope";
    EXPECT_NE(std::strstr(LibraryOf(dlsym(Nvml(), symbol)), "libgpushare"), nullptr) << symbol << " on libnvidia-ml's handle";
  }
}

TEST(NvmlResolution, WhatIsNotOursPassesThrough) {
  EXPECT_NE(std::strstr(LibraryOf(dlsym(Nvml(), "nvmlInit_v2")), "libnvidia-ml"), nullptr);
  EXPECT_EQ(dlsym(dlopen("libdl.so.2", RTLD_NOW), "nvmlDeviceGetMemoryInfo"), nullptr)
      << "a handle without the name still gets NULL";
}

TEST(NvmlResolution, TheFakeImplementsEveryRow) {
  using Count = int (*)();
  const auto count = reinterpret_cast<Count>(dlsym(Nvml(), "fakenvml_covered_symbol_count"));
  ASSERT_NE(count, nullptr);
  EXPECT_EQ(count(), static_cast<int>(std::size(kRows)));
}

}  // namespace
