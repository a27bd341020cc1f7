// Modules, functions and kernel launches. A "kernel" is a host function of the test program,
// found by name with dlsym(RTLD_DEFAULT), and run synchronously at launch.
#include <dlfcn.h>

#include <string>

#include "tests/fake_driver/fake_cuda_control.h"
#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

struct Function {
  fakecuda_kernel fn = nullptr;
};

struct Module {
  Context* ctx = nullptr;
  std::map<std::string, std::unique_ptr<Function>> functions;
};

std::map<const Module*, std::unique_ptr<Module>>& modules() {
  static auto* m = new std::map<const Module*, std::unique_ptr<Module>>;
  return *m;
}

Module* find_module(CUmodule h) {
  auto it = modules().find(reinterpret_cast<const Module*>(h));
  return it == modules().end() ? nullptr : it->second.get();
}

Function* find_function(CUfunction f) {
  for (const auto& [h, m] : modules()) {
    for (const auto& [name, fn] : m->functions) {
      if (reinterpret_cast<CUfunction>(fn.get()) == f) return fn.get();
    }
  }
  return nullptr;
}

CUresult launch(CUfunction f, const unsigned grid[3], const unsigned block[3],
                unsigned shared_bytes, CUstream stream, void** params) {
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  FAKE_TRY(check_launch(f, grid, block));
  launch_function(f, grid, block, shared_bytes, params);
  return CUDA_SUCCESS;
}

CUresult launch_legacy(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                       unsigned by, unsigned bz, unsigned shared_bytes, CUstream stream,
                       void** params) {
  const unsigned grid[3] = {gx, gy, gz};
  const unsigned block[3] = {bx, by, bz};
  return launch(f, grid, block, shared_bytes, stream, params);
}

CUresult launch_ex(const CUlaunchConfig* config, CUfunction f, void** params) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const unsigned grid[3] = {config->gridDimX, config->gridDimY, config->gridDimZ};
  const unsigned block[3] = {config->blockDimX, config->blockDimY, config->blockDimZ};
  return launch(f, grid, block, config->sharedMemBytes, config->hStream, params);
}

}  // namespace

CUresult check_launch(CUfunction f, const unsigned grid[3], const unsigned block[3]) {
  if (f == nullptr || find_function(f) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  for (int i = 0; i < 3; ++i) {
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  }
  if (uint64_t{block[0]} * block[1] * block[2] > 1024) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

bool launch_function(CUfunction f, const unsigned grid[3], const unsigned block[3],
                     unsigned shared_bytes, void** params) {
  Function* fn = find_function(f);
  if (fn == nullptr) return false;
  fakecuda_launch l{};
  for (int i = 0; i < 3; ++i) {
    l.grid[i] = grid[i];
    l.block[i] = block[i];
  }
  l.shared_bytes = shared_bytes;
  l.params = params;
  fn->fn(&l);
  return true;
}

void module_release_context(Context* ctx) {
  std::erase_if(modules(), [ctx](const auto& kv) { return kv.second->ctx == ctx; });
}

void module_reset() { modules().clear(); }

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  FAKE_ENTER();
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  auto m = std::make_unique<Module>();
  m->ctx = c;
  *module = reinterpret_cast<CUmodule>(m.get());
  modules().emplace(m.get(), std::move(m));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuModuleUnload(CUmodule module) {
  FAKE_ENTER();
  if (find_module(module) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  modules().erase(reinterpret_cast<const Module*>(module));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule module, const char* name) {
  FAKE_ENTER();
  if (hfunc == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Module* m = find_module(module);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  auto it = m->functions.find(name);
  if (it == m->functions.end()) {
    void* sym = dlsym(RTLD_DEFAULT, name);
    if (sym == nullptr) return CUDA_ERROR_NOT_FOUND;
    auto fn = std::make_unique<Function>();
    fn->fn = reinterpret_cast<fakecuda_kernel>(sym);
    it = m->functions.emplace(name, std::move(fn)).first;
  }
  *hfunc = reinterpret_cast<CUfunction>(it->second.get());
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                 unsigned bx, unsigned by, unsigned bz, unsigned shared_bytes,
                                 CUstream stream, void** params, void** /*extra*/) {
  FAKE_ENTER();
  return launch_legacy(f, gx, gy, gz, bx, by, bz, shared_bytes, stream, params);
}

FAKE_API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                      unsigned bx, unsigned by, unsigned bz,
                                      unsigned shared_bytes, CUstream stream, void** params,
                                      void** /*extra*/) {
  FAKE_ENTER();
  return launch_legacy(f, gx, gy, gz, bx, by, bz, shared_bytes, stream, params);
}

FAKE_API CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params,
                                   void** /*extra*/) {
  FAKE_ENTER();
  return launch_ex(config, f, params);
}

FAKE_API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f,
                                        void** params, void** /*extra*/) {
  FAKE_ENTER();
  return launch_ex(config, f, params);
}
