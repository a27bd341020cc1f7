// SPDX-License-Identifier: Apache-2.0
// Modules, functions and kernel launches. A "kernel" is a host function of the test program,
// found by name with dlsym(RTLD_DEFAULT), and run synchronously at launch, on the SMs its launch
// descriptor's TPC mask enables (launch_callback.cpp). Cooperative launches must fit those SMs
// at the occupancy cuOccupancyMaxActiveBlocksPerMultiprocessor reports, as on a GPU, where a
// grid that is not co-resident never finishes. Function attributes and occupancy: function.cpp.
#include <dlfcn.h>
#include <signal.h>
#include <setjmp.h>

#include <algorithm>

#include <cstdio>
#include <mutex>
#include <string>

#include "tests/fake_driver/fake_cuda_control.h"
#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

struct Module {
  Context* ctx = nullptr;
  std::string image;  // a text image (PTX, or the tests' names)
  std::map<std::string, std::unique_ptr<Function>> functions;
};

// gpushare's TPC-map kernel: gpushare_smid_bitmap(uint32_t* bitmap, uint64_t spin).
void smid_bitmap_kernel(const fakecuda_launch* l) {
  auto* bitmap = reinterpret_cast<uint32_t*>(*static_cast<CUdeviceptr*>(l->params[0]));
  for (unsigned i = 0; i < l->sm_count; ++i)
    if (l->sm_ids[i] < 512) bitmap[l->sm_ids[i] / 32] |= 1u << (l->sm_ids[i] % 32);
}

// gpushare's GPC kernel: gpushare_smid_cluster(uint32_t* out, uint64_t seed). Each cluster goes
// to a GPC with enough enabled SMs, its blocks to distinct SMs there (launch() checked one fits).
void smid_cluster_kernel(const fakecuda_launch* l) {
  auto* out = reinterpret_cast<uint32_t*>(*static_cast<CUdeviceptr*>(l->params[0]));
  const uint64_t seed = *static_cast<uint64_t*>(l->params[1]);
  const unsigned size = l->cluster[0] * l->cluster[1] * l->cluster[2];
  std::map<unsigned, std::vector<unsigned>> by_gpc;
  for (unsigned i = 0; i < l->sm_count; ++i)
    if (l->sm_gpcs[i] != kUnclustered) by_gpc[l->sm_gpcs[i]].push_back(l->sm_ids[i]);
  std::vector<const std::vector<unsigned>*> fits;
  for (const auto& [gpc, sms] : by_gpc)
    if (sms.size() >= size) fits.push_back(&sms);
  const unsigned blocks = l->grid[0] * l->grid[1] * l->grid[2];
  for (unsigned c = 0; c * size < blocks; ++c) {
    uint64_t h = (seed + 1) * 0x9E3779B97F4A7C15ull + c * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    const std::vector<unsigned>& sms = *fits[h % fits.size()];
    const size_t start = (h >> 17) % sms.size();
    for (unsigned j = 0; j < size && c * size + j < blocks; ++j) out[c * size + j] = sms[(start + j) % sms.size()];
  }
}

fakecuda_kernel builtin_kernel(const Module& m, const std::string& name) {
  if (name == "gpushare_smid_bitmap" && m.image.find(".entry gpushare_smid_bitmap(") != std::string::npos)
    return &smid_bitmap_kernel;
  if (name == "gpushare_smid_cluster" && m.image.find(".entry gpushare_smid_cluster(") != std::string::npos)
    return &smid_cluster_kernel;
  return nullptr;
}

std::map<const Module*, std::unique_ptr<Module>>& modules() {
  static auto* m = new std::map<const Module*, std::unique_ptr<Module>>;
  return *m;
}

Module* find_module(CUmodule h) {
  auto it = modules().find(reinterpret_cast<const Module*>(h));
  return it == modules().end() ? nullptr : it->second.get();
}

// A kernel that touches device memory which is not mapped (or not accessible) faults: the
// fault is caught, the launch fails with CUDA_ERROR_ILLEGAL_ADDRESS and the context is lost.
thread_local sigjmp_buf* t_kernel_fault = nullptr;
struct sigaction g_previous_segv {};

void on_fault(int sig, siginfo_t* info, void* uctx) {
  if (t_kernel_fault != nullptr) siglongjmp(*t_kernel_fault, 1);
  // Not a kernel's: the previous handler (or the default action) takes it.
  if ((g_previous_segv.sa_flags & SA_SIGINFO) != 0 && g_previous_segv.sa_sigaction != nullptr) {
    g_previous_segv.sa_sigaction(sig, info, uctx);
    return;
  }
  signal(sig, g_previous_segv.sa_handler == SIG_IGN ? SIG_DFL : g_previous_segv.sa_handler);
  raise(sig);
}

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
}

// Runs fn(l) with faults caught; false when it touched unmapped memory.
bool run_guarded(fakecuda_kernel fn, const fakecuda_launch* l) {
  install_fault_handler();
  sigjmp_buf env;
  sigjmp_buf* const outer = t_kernel_fault;
  if (sigsetjmp(env, 1) != 0) {
    t_kernel_fault = outer;
    return false;
  }
  t_kernel_fault = &env;
  fn(l);
  t_kernel_fault = outer;
  return true;
}

}  // namespace

CUresult launch_on_stream(CUfunction f, const unsigned grid[3], const unsigned block[3],
                          unsigned shared_bytes, CUstream stream, void** params, bool cooperative,
                          const unsigned asked_cluster[3]) {
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  FAKE_TRY(c->sticky);
  FAKE_TRY(check_launch(f, grid, block));
  const Function& fn = *find_function(f);
  if (shared_bytes > fn.max_dynamic_shared) return CUDA_ERROR_INVALID_VALUE;
  unsigned dims[3];
  bool clustered = false;
  FAKE_TRY(cluster_of(fn, asked_cluster, dims, &clustered));
  const unsigned* cluster = clustered ? dims : nullptr;
  if (clustered) {
    for (int i = 0; i < 3; ++i)
      if (grid[i] % cluster[i] != 0) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
  }
  const LaunchMask mask = fire_launch_callback();
  if (cooperative) {
    const uint64_t blocks = uint64_t{grid[0]} * grid[1] * grid[2];
    const uint64_t per_sm = static_cast<uint64_t>(blocks_per_sm(fn, block[0] * block[1] * block[2], shared_bytes));
    if (blocks > per_sm * fake_sm_count()) return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    const uint64_t resident = per_sm * enabled_sms(mask).size();
    if (blocks > resident) {
      std::fprintf(stderr, "fake libcuda: a cooperative grid of %llu blocks cannot be co-resident on "
                   "the %llu block slots its TPC mask leaves: a GPU would never finish it\n",
                   static_cast<unsigned long long>(blocks), static_cast<unsigned long long>(resident));
      return CUDA_ERROR_LAUNCH_TIMEOUT;
    }
  }
  const CUresult rc = launch_function(f, grid, block, shared_bytes, params, mask, cluster);
  if (rc == CUDA_ERROR_ILLEGAL_ADDRESS) c->sticky = rc;
  return rc;
}

namespace {

CUresult launch(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared_bytes,
                CUstream stream, void** params, bool cooperative = false, const unsigned asked_cluster[3] = nullptr) {
  return launch_on_stream(f, grid, block, shared_bytes, stream, params, cooperative, asked_cluster);
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
  if (config->numAttrs > 0 && config->attrs == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const unsigned* cluster = nullptr;
  for (unsigned i = 0; i < config->numAttrs; ++i)
    if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
      cluster = &config->attrs[i].value.clusterDim.x;
  return launch(f, grid, block, config->sharedMemBytes, config->hStream, params, false, cluster);
}

}  // namespace

Function* find_function(CUfunction f) {
  for (const auto& [h, m] : modules()) {
    for (const auto& [name, fn] : m->functions) {
      if (reinterpret_cast<CUfunction>(fn.get()) == f) return fn.get();
    }
  }
  return nullptr;
}

CUresult check_launch(CUfunction f, const unsigned grid[3], const unsigned block[3]) {
  if (f == nullptr || find_function(f) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  for (int i = 0; i < 3; ++i) {
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  }
  if (uint64_t{block[0]} * block[1] * block[2] > 1024) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult launch_function(CUfunction f, const unsigned grid[3], const unsigned block[3],
                         unsigned shared_bytes, void** params, const LaunchMask& mask,
                         const unsigned cluster[3]) {
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  const std::vector<unsigned> sms = enabled_sms(mask);
  note_launch(mask, static_cast<unsigned>(sms.size()));
  if (sms.empty()) {
    std::fprintf(stderr, "fake libcuda: a launch whose TPC mask leaves no live TPC: a GPU would hang\n");
    return CUDA_ERROR_LAUNCH_TIMEOUT;
  }
  std::vector<unsigned> gpcs(sms.size());
  std::map<unsigned, unsigned> per_gpc;
  unsigned widest = 0;
  for (size_t i = 0; i < sms.size(); ++i) {
    gpcs[i] = fake_gpc_of_sm(sms[i]);
    if (gpcs[i] != kUnclustered) widest = std::max(widest, ++per_gpc[gpcs[i]]);
  }
  fakecuda_launch l{};
  l.sm_ids = sms.data();
  l.sm_count = static_cast<unsigned>(sms.size());
  l.sm_gpcs = gpcs.data();
  for (int i = 0; i < 3; ++i) {
    l.grid[i] = grid[i];
    l.block[i] = block[i];
    l.cluster[i] = cluster != nullptr ? cluster[i] : 1;
  }
  if (cluster != nullptr && l.cluster[0] * l.cluster[1] * l.cluster[2] > widest) {
    std::fprintf(stderr, "fake libcuda: no GPC has SMs enough for a cluster of this launch: a GPU would hang\n");
    return CUDA_ERROR_LAUNCH_TIMEOUT;
  }
  l.shared_bytes = shared_bytes;
  l.params = params;
  if (!run_guarded(fn->fn, &l)) {
    std::fprintf(stderr, "fake libcuda: a kernel touched unmapped device memory: CUDA_ERROR_ILLEGAL_ADDRESS\n");
    return CUDA_ERROR_ILLEGAL_ADDRESS;
  }
  return CUDA_SUCCESS;
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
  m->image = static_cast<const char*>(image);
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
    fakecuda_kernel kernel = builtin_kernel(*m, name);
    if (kernel == nullptr) kernel = reinterpret_cast<fakecuda_kernel>(dlsym(RTLD_DEFAULT, name));
    if (kernel == nullptr) return CUDA_ERROR_NOT_FOUND;
    auto fn = std::make_unique<Function>();
    fn->fn = kernel;
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

FAKE_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                            unsigned bx, unsigned by, unsigned bz,
                                            unsigned shared_bytes, CUstream stream, void** params) {
  FAKE_ENTER();
  const unsigned grid[3] = {gx, gy, gz};
  const unsigned block[3] = {bx, by, bz};
  return launch(f, grid, block, shared_bytes, stream, params, /*cooperative=*/true);
}

FAKE_API CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                 unsigned bx, unsigned by, unsigned bz,
                                                 unsigned shared_bytes, CUstream stream, void** params) {
  return cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shared_bytes, stream, params);
}
