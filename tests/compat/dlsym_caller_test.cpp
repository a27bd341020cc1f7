// SPDX-License-Identifier: Apache-2.0
// dlsym(RTLD_NEXT) and dlsym(RTLD_DEFAULT) answer what glibc answers the library that asks, with
// libgpushare preloaded or not (tests/compat/CMakeLists.txt runs this program both ways, and with
// the shim preloaded before and after libgpushare). The expectations are glibc's rules, so the run
// without libgpushare checks them against glibc itself. The only difference the library makes is
// that the driver's own entry points come back as its wrappers.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

extern "C" {
// dlsym_shim.cpp (preloaded)
void* compat_shim_next(const char* name);
void* compat_shim_next_layered_at_load();
void* compat_shim_next_alloc_at_load();
int compat_shim_call_layered();
CUresult compat_shim_call_alloc(CUdeviceptr* dptr, size_t bytes);
// dlsym_ompt_like.cpp
void* compat_ompt_next();
void* compat_ompt_default();
void* compat_ompt_own();
void* compat_ompt_recursed();
void* compat_ompt_start();
}

namespace {

using LookupFn = void* (*)(const char*);

bool GpushareLoaded() {
  void* h = dlopen("libgpushare.so", RTLD_NOLOAD | RTLD_LAZY);
  if (h != nullptr) dlclose(h);
  return h != nullptr;
}

// The file name of the object that defines `p`, and the symbol's name there.
std::string ObjectOf(void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "(none)";
  const char* slash = std::strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

std::string SymbolOf(void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_sname == nullptr) return "(none)";
  return info.dli_sname;
}

// A definition in a given library, by a look-up on its handle (not caller-relative).
void* DefinitionIn(const char* library, const char* symbol) {
  void* h = dlopen(library, RTLD_NOLOAD | RTLD_LAZY);
  if (h == nullptr) return nullptr;
  void* p = dlsym(h, symbol);
  dlclose(h);
  return p;
}

// What a caller must get for the driver's cuMemAlloc_v2: gpushare's wrapper with the library,
// the driver's own function without it.
void ExpectDriversAllocOrWrapper(void* p) {
  if (GpushareLoaded()) {
    EXPECT_EQ(ObjectOf(p), "libgpushare.so");
  } else {
    EXPECT_EQ(ObjectOf(p), "libcuda.so.1");
  }
  EXPECT_EQ(SymbolOf(p), "cuMemAlloc_v2");
}

TEST(DlsymCaller, APreloadedShimGetsTheNextDefinitionNotItsOwn) {
  void* base = DefinitionIn("libgs_compat_layered_base.so", "compat_layered");
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(compat_shim_next("compat_layered"), base)
      << "got " << ObjectOf(compat_shim_next("compat_layered"));
  EXPECT_EQ(compat_shim_call_layered(), 101) << "-1: the shim was handed its own definition";
  EXPECT_EQ(compat_shim_next_layered_at_load(), base) << "asked from the shim's constructor";
}

TEST(DlsymCaller, APreloadedShimForwardsDriverCallsThroughGpushare) {
  ExpectDriversAllocOrWrapper(compat_shim_next("cuMemAlloc_v2"));
  EXPECT_EQ(compat_shim_next_alloc_at_load(), compat_shim_next("cuMemAlloc_v2")) << "asked from the shim's constructor";

  // The shim's forwarded allocation is charged: 2 GiB exceeds the 1 GiB limit under gpushare
  // (GPUSHARE_MEM_LIMIT) and fits the fake 4 GiB device without it.
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  ASSERT_EQ(cuDeviceGet(&dev, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
  CUdeviceptr ptr = 0;
  const CUresult rc = compat_shim_call_alloc(&ptr, size_t{2} << 30);
  if (GpushareLoaded()) {
    EXPECT_EQ(rc, CUDA_ERROR_OUT_OF_MEMORY);
  } else {
    EXPECT_EQ(rc, CUDA_SUCCESS);
    if (rc == CUDA_SUCCESS) {
      EXPECT_EQ(cuMemFree(ptr), CUDA_SUCCESS);
    }
  }
  EXPECT_EQ(compat_shim_call_alloc(&ptr, size_t{64} << 20), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(ptr), CUDA_SUCCESS);
  EXPECT_EQ(cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
}

TEST(DlsymCaller, TheProgramsNextIsTheFirstDefinitionAfterIt) {
  // The program defines no cuMemAlloc_v2: everything after it is the whole global scope.
  void* next = dlsym(RTLD_NEXT, "cuMemAlloc_v2");
  EXPECT_NE(next, nullptr);
  EXPECT_EQ(next, dlsym(RTLD_DEFAULT, "cuMemAlloc_v2")) << "RTLD_NEXT answered " << ObjectOf(next);
}

TEST(DlsymCaller, AnInterposersOwnDefinitionIsItsOwnOnItsHandle) {
  void* shim = dlopen("libgs_compat_shim.so", RTLD_NOLOAD | RTLD_LAZY);
  ASSERT_NE(shim, nullptr);
  void* p = dlsym(shim, "cuMemAlloc_v2");
  EXPECT_EQ(ObjectOf(p), "libgs_compat_shim.so") << "only the driver's own entry points become wrappers";
  dlclose(shim);
}

TEST(DlsymCaller, ALibraryLookingUpWhatItDefinesItselfGetsGlibcsAnswer) {
  EXPECT_EQ(compat_ompt_next(), nullptr) << "RTLD_NEXT answered " << ObjectOf(compat_ompt_next());
  EXPECT_EQ(compat_ompt_default(), compat_ompt_own()) << "RTLD_DEFAULT answered " << ObjectOf(compat_ompt_default());
  void* tool = compat_ompt_start();
  EXPECT_NE(tool, compat_ompt_recursed()) << "ompt_start_tool would have called itself";
  EXPECT_EQ(tool, nullptr);
}

TEST(DlsymCaller, ADlopenedPluginFindsItsLocalDependency) {
  void* plugin = dlopen(GS_COMPAT_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(plugin, nullptr) << dlerror();
  auto next = reinterpret_cast<LookupFn>(dlsym(plugin, "compat_plugin_next"));
  auto deflt = reinterpret_cast<LookupFn>(dlsym(plugin, "compat_plugin_default"));
  ASSERT_NE(next, nullptr);
  ASSERT_NE(deflt, nullptr);
  void* dep = DefinitionIn("libgs_compat_plugin_dep.so", "compat_plugin_dep_only");
  ASSERT_NE(dep, nullptr);

  EXPECT_EQ(dlsym(RTLD_DEFAULT, "compat_plugin_dep_only"), nullptr) << "the dependency is the plugin's alone";
  EXPECT_EQ(next("compat_plugin_dep_only"), dep) << "RTLD_NEXT answered " << ObjectOf(next("compat_plugin_dep_only"));
  EXPECT_EQ(deflt("compat_plugin_dep_only"), dep) << "RTLD_DEFAULT answered " << ObjectOf(deflt("compat_plugin_dep_only"));
  EXPECT_EQ(next("compat_no_such_symbol"), nullptr);
  EXPECT_NE(dlerror(), nullptr) << "a failed look-up leaves its error";

  // The plugin needs libcuda: RTLD_NEXT finds the driver's entry point in the plugin's scope (and
  // it comes back wrapped); RTLD_DEFAULT finds the first definition of the global scope, as the
  // program's own look-up does (gpushare's or the shim's, whichever is preloaded first).
  void* alloc_next = next("cuMemAlloc_v2");
  EXPECT_EQ(dlerror(), nullptr) << "a look-up that succeeds leaves no error";
  ExpectDriversAllocOrWrapper(alloc_next);
  EXPECT_EQ(deflt("cuMemAlloc_v2"), dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"))
      << "RTLD_DEFAULT answered " << ObjectOf(deflt("cuMemAlloc_v2"));
  dlclose(plugin);
}

// RTLD_NEXT for the driver's names walks the loaded objects: objects loaded and unloaded
// meanwhile by another thread neither crash it nor change what it finds.
TEST(DlsymCaller, LoadsAndUnloadsMeanwhileChangeNothing) {
  const void* expected = compat_shim_next("cuMemAlloc_v2");
  ASSERT_NE(expected, nullptr);
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop.load()) {
      void* plugin = dlopen(GS_COMPAT_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
      if (plugin != nullptr) dlclose(plugin);
    }
  });
  int differed = 0;
  for (int i = 0; i < 2000; ++i) differed += compat_shim_next("cuMemAlloc_v2") != expected ? 1 : 0;
  stop.store(true);
  churn.join();
  EXPECT_EQ(differed, 0);
}

}  // namespace
