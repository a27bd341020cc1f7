// SPDX-License-Identifier: Apache-2.0
// Build (needs only cuda.h and a libcuda.so.1 at run time; no project header):
//   g++ -std=c++17 -O1 -rdynamic -I/usr/local/cuda/include tests/compat/arg_table.cpp -o arg_table -ldl
// Run: ./arg_table > plain.txt; LD_PRELOAD=libgpushare.so GPUSHARE_MEM_LIMIT=1Gi ./arg_table > lib.txt;
//      diff plain.txt lib.txt   (lines starting with '#' are comments: ignore them)
//
// The NULL / zero / invalid-argument table: every entry point gpushare intercepts
// (hooks/hook_table.inc, hooks/nvml_table.inc), called with NULL outputs, zero sizes, invalid
// handles, devices and flags, and once validly, in four phases: before cuInit (noinit), after it
// with no current context (noctx), with the primary context current (ctx), and with the same
// handles but no current context (popped). Each case prints one line
//   <symbol> <phase>/<case> -> <result> [<output>=left|zero|set|<value> ...]
// where an output is `left` when the call did not write it (it is prefilled with 0xA5 bytes),
// `zero` when it wrote zeros, `set` otherwise; a few outputs whose value does not depend on a
// quota are printed as values. A library that behaves as the driver does prints the same lines
// with and without LD_PRELOAD. Symbols the driver lacks print `absent`.
//
// The program survives a case that crashes or hangs: the case prints `CRASH(<signal>)` or
// `HANG`, and the program starts again after it (--from N). A case the real driver itself
// crashes on does not belong in the table (remove it, with a comment saying so).
// Kernels: one PTX image with two empty kernels; the fake driver (tests/fake_driver) instead
// finds the host functions of the same names in this program (hence -rdynamic).
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1  // declare every exported variant by its symbol
#endif
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>

extern "C" {
// The fake driver's kernels (it calls them with a pointer to its launch description).
__attribute__((visibility("default"))) void arg_table_noop(const void*) {}
__attribute__((visibility("default"))) void arg_table_legacy(const void*) {}
}

namespace {

const char kPtx[] =
    ".version 7.0\n"
    ".target sm_80\n"
    ".address_size 64\n"
    ".visible .entry arg_table_noop()\n{\n  ret;\n}\n"
    ".visible .entry arg_table_legacy()\n{\n  ret;\n}\n";

// ---- the entry points, from the driver's handle (dlsym: under LD_PRELOAD=libgpushare.so this
// answers with its wrappers, as for PyTorch and Triton)
#define ARG_TABLE_SYMBOLS(X)                                                   \
  X(cuInit, PFN_cuInit_v2000)                                                  \
  X(cuGetProcAddress, PFN_cuGetProcAddress_v11030)                             \
  X(cuGetProcAddress_v2, PFN_cuGetProcAddress_v12000)                          \
  X(cuDeviceTotalMem_v2, PFN_cuDeviceTotalMem_v3020)                           \
  X(cuDeviceGetAttribute, PFN_cuDeviceGetAttribute_v2000)                      \
  X(cuMemGetInfo_v2, PFN_cuMemGetInfo_v3020)                                   \
  X(cuOccupancyMaxActiveClusters, PFN_cuOccupancyMaxActiveClusters_v11070)     \
  X(cuDevicePrimaryCtxRetain, PFN_cuDevicePrimaryCtxRetain_v7000)              \
  X(cuDevicePrimaryCtxRelease, PFN_cuDevicePrimaryCtxRelease_v7000)            \
  X(cuDevicePrimaryCtxRelease_v2, PFN_cuDevicePrimaryCtxRelease_v11000)        \
  X(cuDevicePrimaryCtxReset, PFN_cuDevicePrimaryCtxReset_v7000)                \
  X(cuDevicePrimaryCtxReset_v2, PFN_cuDevicePrimaryCtxReset_v11000)            \
  X(cuCtxCreate_v2, PFN_cuCtxCreate_v3020)                                     \
  X(cuCtxCreate_v3, PFN_cuCtxCreate_v11040)                                    \
  X(cuCtxCreate_v4, PFN_cuCtxCreate_v12050)                                    \
  X(cuCtxDestroy_v2, PFN_cuCtxDestroy_v4000)                                   \
  X(cuMemAlloc_v2, PFN_cuMemAlloc_v3020)                                       \
  X(cuMemAllocPitch_v2, PFN_cuMemAllocPitch_v3020)                             \
  X(cuMemAllocManaged, PFN_cuMemAllocManaged_v6000)                            \
  X(cuMemFree_v2, PFN_cuMemFree_v3020)                                         \
  X(cuMemGetAddressRange_v2, PFN_cuMemGetAddressRange_v3020)                   \
  X(cuPointerGetAttribute, PFN_cuPointerGetAttribute_v4000)                    \
  X(cuPointerGetAttributes, PFN_cuPointerGetAttributes_v7000)                  \
  X(cuMemAllocAsync, PFN_cuMemAllocAsync_v11020)                               \
  X(cuMemAllocAsync_ptsz, PFN_cuMemAllocAsync_v11020_ptsz)                     \
  X(cuMemAllocFromPoolAsync, PFN_cuMemAllocFromPoolAsync_v11020)               \
  X(cuMemAllocFromPoolAsync_ptsz, PFN_cuMemAllocFromPoolAsync_v11020_ptsz)     \
  X(cuMemFreeAsync, PFN_cuMemFreeAsync_v11020)                                 \
  X(cuMemFreeAsync_ptsz, PFN_cuMemFreeAsync_v11020_ptsz)                       \
  X(cuMemPoolTrimTo, PFN_cuMemPoolTrimTo_v11020)                               \
  X(cuMemPoolDestroy, PFN_cuMemPoolDestroy_v11020)                             \
  X(cuMemCreate, PFN_cuMemCreate_v10020)                                       \
  X(cuMemRelease, PFN_cuMemRelease_v10020)                                     \
  X(cuArrayCreate_v2, PFN_cuArrayCreate_v3020)                                 \
  X(cuArray3DCreate_v2, PFN_cuArray3DCreate_v3020)                             \
  X(cuArrayDestroy, PFN_cuArrayDestroy_v2000)                                  \
  X(cuMipmappedArrayCreate, PFN_cuMipmappedArrayCreate_v5000)                  \
  X(cuMipmappedArrayDestroy, PFN_cuMipmappedArrayDestroy_v5000)                \
  X(cuGraphAddMemAllocNode, PFN_cuGraphAddMemAllocNode_v11040)                 \
  X(cuGraphLaunch, PFN_cuGraphLaunch_v10000)                                   \
  X(cuGraphLaunch_ptsz, PFN_cuGraphLaunch_v10000_ptsz)                         \
  X(cuDeviceGraphMemTrim, PFN_cuDeviceGraphMemTrim_v11040)                     \
  X(cuLaunchKernel, PFN_cuLaunchKernel_v4000)                                  \
  X(cuLaunchKernel_ptsz, PFN_cuLaunchKernel_v7000_ptsz)                        \
  X(cuLaunchKernelEx, PFN_cuLaunchKernelEx_v11060)                             \
  X(cuLaunchKernelEx_ptsz, PFN_cuLaunchKernelEx_v11060_ptsz)                   \
  X(cuLaunchCooperativeKernel, PFN_cuLaunchCooperativeKernel_v9000)            \
  X(cuLaunchCooperativeKernel_ptsz, PFN_cuLaunchCooperativeKernel_v9000_ptsz)  \
  X(cuLaunchCooperativeKernelMultiDevice, PFN_cuLaunchCooperativeKernelMultiDevice_v9000) \
  X(cuLaunch, PFN_cuLaunch_v2000)                                              \
  X(cuLaunchGrid, PFN_cuLaunchGrid_v2000)                                      \
  X(cuLaunchGridAsync, PFN_cuLaunchGridAsync_v2000)                            \
  X(cuLaunchHostFunc, PFN_cuLaunchHostFunc_v10000)                             \
  X(cuLaunchHostFunc_ptsz, PFN_cuLaunchHostFunc_v10000_ptsz)                   \
  X(cuStreamAddCallback, PFN_cuStreamAddCallback_v5000)                        \
  X(cuStreamAddCallback_ptsz, PFN_cuStreamAddCallback_v7000_ptsz)              \
  X(cuStreamWaitValue32, PFN_cuStreamWaitValue32_v8000)                        \
  X(cuStreamWaitValue32_ptsz, PFN_cuStreamWaitValue32_v8000_ptsz)              \
  X(cuStreamWaitValue32_v2, PFN_cuStreamWaitValue32_v11070)                    \
  X(cuStreamWaitValue32_v2_ptsz, PFN_cuStreamWaitValue32_v11070_ptsz)          \
  X(cuStreamWaitValue64, PFN_cuStreamWaitValue64_v9000)                        \
  X(cuStreamWaitValue64_ptsz, PFN_cuStreamWaitValue64_v9000_ptsz)              \
  X(cuStreamWaitValue64_v2, PFN_cuStreamWaitValue64_v11070)                    \
  X(cuStreamWaitValue64_v2_ptsz, PFN_cuStreamWaitValue64_v11070_ptsz)          \
  X(cuStreamWriteValue32, PFN_cuStreamWriteValue32_v8000)                      \
  X(cuStreamWriteValue32_ptsz, PFN_cuStreamWriteValue32_v8000_ptsz)            \
  X(cuStreamWriteValue32_v2, PFN_cuStreamWriteValue32_v11070)                  \
  X(cuStreamWriteValue32_v2_ptsz, PFN_cuStreamWriteValue32_v11070_ptsz)        \
  X(cuStreamWriteValue64, PFN_cuStreamWriteValue64_v9000)                      \
  X(cuStreamWriteValue64_ptsz, PFN_cuStreamWriteValue64_v9000_ptsz)            \
  X(cuStreamWriteValue64_v2, PFN_cuStreamWriteValue64_v11070)                  \
  X(cuStreamWriteValue64_v2_ptsz, PFN_cuStreamWriteValue64_v11070_ptsz)        \
  X(cuStreamBatchMemOp, PFN_cuStreamBatchMemOp_v8000)                          \
  X(cuStreamBatchMemOp_ptsz, PFN_cuStreamBatchMemOp_v8000_ptsz)                \
  X(cuStreamBatchMemOp_v2, PFN_cuStreamBatchMemOp_v11070)                      \
  X(cuStreamBatchMemOp_v2_ptsz, PFN_cuStreamBatchMemOp_v11070_ptsz)            \
  X(cuMemcpy, PFN_cuMemcpy_v4000)                                              \
  X(cuMemcpy_ptds, PFN_cuMemcpy_v7000_ptds)                                    \
  X(cuMemcpyAsync, PFN_cuMemcpyAsync_v4000)                                    \
  X(cuMemcpyAsync_ptsz, PFN_cuMemcpyAsync_v7000_ptsz)                          \
  X(cuMemcpyHtoD_v2, PFN_cuMemcpyHtoD_v3020)                                   \
  X(cuMemcpyHtoD_v2_ptds, PFN_cuMemcpyHtoD_v7000_ptds)                         \
  X(cuMemcpyDtoH_v2, PFN_cuMemcpyDtoH_v3020)                                   \
  X(cuMemcpyDtoH_v2_ptds, PFN_cuMemcpyDtoH_v7000_ptds)                         \
  X(cuMemcpyDtoD_v2, PFN_cuMemcpyDtoD_v3020)                                   \
  X(cuMemcpyDtoD_v2_ptds, PFN_cuMemcpyDtoD_v7000_ptds)                         \
  X(cuMemcpyHtoDAsync_v2, PFN_cuMemcpyHtoDAsync_v3020)                         \
  X(cuMemcpyHtoDAsync_v2_ptsz, PFN_cuMemcpyHtoDAsync_v7000_ptsz)               \
  X(cuMemcpyDtoHAsync_v2, PFN_cuMemcpyDtoHAsync_v3020)                         \
  X(cuMemcpyDtoHAsync_v2_ptsz, PFN_cuMemcpyDtoHAsync_v7000_ptsz)               \
  X(cuMemcpyDtoDAsync_v2, PFN_cuMemcpyDtoDAsync_v3020)                         \
  X(cuMemcpyDtoDAsync_v2_ptsz, PFN_cuMemcpyDtoDAsync_v7000_ptsz)               \
  X(cuMemsetD8_v2, PFN_cuMemsetD8_v3020)                                       \
  X(cuMemsetD8_v2_ptds, PFN_cuMemsetD8_v7000_ptds)                             \
  X(cuMemsetD16_v2, PFN_cuMemsetD16_v3020)                                     \
  X(cuMemsetD16_v2_ptds, PFN_cuMemsetD16_v7000_ptds)                           \
  X(cuMemsetD32_v2, PFN_cuMemsetD32_v3020)                                     \
  X(cuMemsetD32_v2_ptds, PFN_cuMemsetD32_v7000_ptds)                           \
  X(cuMemsetD8Async, PFN_cuMemsetD8Async_v3020)                                \
  X(cuMemsetD8Async_ptsz, PFN_cuMemsetD8Async_v7000_ptsz)                      \
  X(cuMemsetD16Async, PFN_cuMemsetD16Async_v3020)                              \
  X(cuMemsetD16Async_ptsz, PFN_cuMemsetD16Async_v7000_ptsz)                    \
  X(cuMemsetD32Async, PFN_cuMemsetD32Async_v3020)                              \
  X(cuMemsetD32Async_ptsz, PFN_cuMemsetD32Async_v7000_ptsz)                    \
  X(cuMemsetD2D8_v2, PFN_cuMemsetD2D8_v3020)                                   \
  X(cuMemsetD2D8_v2_ptds, PFN_cuMemsetD2D8_v7000_ptds)                         \
  X(cuMemsetD2D8Async, PFN_cuMemsetD2D8Async_v3020)                            \
  X(cuMemsetD2D8Async_ptsz, PFN_cuMemsetD2D8Async_v7000_ptsz)                  \
  X(cuMemsetD2D16_v2, PFN_cuMemsetD2D16_v3020)                                 \
  X(cuMemsetD2D16_v2_ptds, PFN_cuMemsetD2D16_v7000_ptds)                       \
  X(cuMemsetD2D16Async, PFN_cuMemsetD2D16Async_v3020)                          \
  X(cuMemsetD2D16Async_ptsz, PFN_cuMemsetD2D16Async_v7000_ptsz)                \
  X(cuMemsetD2D32_v2, PFN_cuMemsetD2D32_v3020)                                 \
  X(cuMemsetD2D32_v2_ptds, PFN_cuMemsetD2D32_v7000_ptds)                       \
  X(cuMemsetD2D32Async, PFN_cuMemsetD2D32Async_v3020)                          \
  X(cuMemsetD2D32Async_ptsz, PFN_cuMemsetD2D32Async_v7000_ptsz)                \
  X(cuMemcpy2D_v2, PFN_cuMemcpy2D_v3020)                                       \
  X(cuMemcpy2D_v2_ptds, PFN_cuMemcpy2D_v7000_ptds)                             \
  X(cuMemcpy2DUnaligned_v2, PFN_cuMemcpy2DUnaligned_v3020)                     \
  X(cuMemcpy2DUnaligned_v2_ptds, PFN_cuMemcpy2DUnaligned_v7000_ptds)           \
  X(cuMemcpy2DAsync_v2, PFN_cuMemcpy2DAsync_v3020)                             \
  X(cuMemcpy2DAsync_v2_ptsz, PFN_cuMemcpy2DAsync_v7000_ptsz)                   \
  X(cuMemcpyPeer, PFN_cuMemcpyPeer_v4000)                                      \
  X(cuMemcpyPeer_ptds, PFN_cuMemcpyPeer_v7000_ptds)                            \
  X(cuMemcpyPeerAsync, PFN_cuMemcpyPeerAsync_v4000)                            \
  X(cuMemcpyPeerAsync_ptsz, PFN_cuMemcpyPeerAsync_v7000_ptsz)                  \
  X(cuStreamBeginCapture, PFN_cuStreamBeginCapture_v10000)                     \
  X(cuStreamBeginCapture_ptsz, PFN_cuStreamBeginCapture_v10000_ptsz)           \
  X(cuStreamBeginCapture_v2, PFN_cuStreamBeginCapture_v10010)                  \
  X(cuStreamBeginCapture_v2_ptsz, PFN_cuStreamBeginCapture_v10010_ptsz)        \
  X(cuStreamBeginCaptureToGraph, PFN_cuStreamBeginCaptureToGraph_v12030)       \
  X(cuStreamBeginCaptureToGraph_ptsz, PFN_cuStreamBeginCaptureToGraph_v12030_ptsz) \
  X(cuStreamEndCapture, PFN_cuStreamEndCapture_v10000)                         \
  X(cuStreamEndCapture_ptsz, PFN_cuStreamEndCapture_v10000_ptsz)               \
  /* helpers the table calls (not intercepted) */                              \
  X(cuGetErrorName, PFN_cuGetErrorName_v6000)                                  \
  X(cuDriverGetVersion, PFN_cuDriverGetVersion_v2020)                          \
  X(cuDeviceGet, PFN_cuDeviceGet_v2000)                                        \
  X(cuDeviceGetName, PFN_cuDeviceGetName_v2000)                                \
  X(cuCtxSetCurrent, PFN_cuCtxSetCurrent_v4000)                                \
  X(cuCtxSynchronize, PFN_cuCtxSynchronize_v2000)                              \
  X(cuStreamCreate, PFN_cuStreamCreate_v2000)                                  \
  X(cuStreamDestroy_v2, PFN_cuStreamDestroy_v4000)                             \
  X(cuStreamSynchronize, PFN_cuStreamSynchronize_v2000)                        \
  X(cuModuleLoadData, PFN_cuModuleLoadData_v2000)                              \
  X(cuModuleGetFunction, PFN_cuModuleGetFunction_v2000)                        \
  X(cuModuleUnload, PFN_cuModuleUnload_v2000)                                  \
  X(cuFuncSetBlockShape, PFN_cuFuncSetBlockShape_v2000)                        \
  X(cuParamSetSize, PFN_cuParamSetSize_v2000)                                  \
  X(cuGraphCreate, PFN_cuGraphCreate_v10000)                                   \
  X(cuGraphDestroy, PFN_cuGraphDestroy_v10000)                                 \
  X(cuGraphInstantiateWithFlags, PFN_cuGraphInstantiateWithFlags_v11040)       \
  X(cuGraphExecDestroy, PFN_cuGraphExecDestroy_v10000)                         \
  X(cuDeviceGetDefaultMemPool, PFN_cuDeviceGetDefaultMemPool_v11020)

#define ARG_TABLE_DECLARE(sym, pfn) pfn p_##sym = nullptr;
ARG_TABLE_SYMBOLS(ARG_TABLE_DECLARE)
#undef ARG_TABLE_DECLARE

// ---- NVML (its ABI, declared here so that no nvml.h is needed)
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlMemory_t { unsigned long long total, free, used; };
struct nvmlMemory_v2_t { unsigned int version; unsigned long long total, reserved, free, used; };
struct nvmlProcessInfo_v1_t { unsigned int pid; unsigned long long usedGpuMemory; };
struct nvmlProcessInfo_v2_t { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; };
struct nvmlProcessDetail_v1_t { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; unsigned long long usedGpuCcProtectedMemory; };
struct nvmlProcessDetailList_v1_t { unsigned int version, mode, numProcArrayEntries; nvmlProcessDetail_v1_t* procArray; };
constexpr unsigned int kNvmlMemoryV2 = sizeof(nvmlMemory_v2_t) | (2u << 24);
constexpr unsigned int kNvmlProcessDetailListV1 = sizeof(nvmlProcessDetailList_v1_t) | (1u << 24);
using PFN_nvmlInit = nvmlReturn_t (*)();
using PFN_nvmlGetHandle = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using PFN_nvmlMemory = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using PFN_nvmlMemory_v2 = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_v2_t*);
using PFN_nvmlProcs_v1 = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_v1_t*);
using PFN_nvmlProcs_v2 = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_v2_t*);
using PFN_nvmlDetailList = nvmlReturn_t (*)(nvmlDevice_t, nvmlProcessDetailList_v1_t*);

// ---- rows: numbering, crash and hang recovery
const char* g_self = nullptr;
long g_row = -1;   // the current row's number
long g_from = 0;   // rows before this one are not run (a restart after a crash)
char g_label[256];  // "<symbol> <phase>/<case>", for the signal handler
const char* g_phase = "";
constexpr unsigned kRowTimeoutSeconds = 20;

void Restart(const char* what) {
  char line[400];
  const int n = std::snprintf(line, sizeof line, "%s -> %s\n", g_label, what);
  if (n > 0) (void)!write(STDOUT_FILENO, line, static_cast<size_t>(n));
  char from[32];
  std::snprintf(from, sizeof from, "--from=%ld", g_row + 1);
  char* const args[] = {const_cast<char*>(g_self), from, nullptr};
  execv("/proc/self/exe", args);
  _exit(3);
}

void OnSignal(int sig) {
  switch (sig) {
    case SIGALRM: Restart("HANG"); break;
    case SIGSEGV: Restart("CRASH(SIGSEGV)"); break;
    case SIGBUS: Restart("CRASH(SIGBUS)"); break;
    case SIGFPE: Restart("CRASH(SIGFPE)"); break;
    case SIGILL: Restart("CRASH(SIGILL)"); break;
    default: Restart("CRASH(SIGABRT)"); break;
  }
}

void InstallHandlers() {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // a restart inherits the handler's mask
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM}) sigaction(sig, &sa, nullptr);
}

std::string ErrorName(CUresult rc) {
  const char* name = nullptr;
  if (p_cuGetErrorName != nullptr && p_cuGetErrorName(rc, &name) == CUDA_SUCCESS && name != nullptr)
    return std::string(name) + "(" + std::to_string(static_cast<int>(rc)) + ")";
  return "CUresult(" + std::to_string(static_cast<int>(rc)) + ")";
}

// Starts a row; false when it is skipped (before --from) or the symbol is absent.
bool Begin(const char* symbol, const void* fn, const char* case_name) {
  ++g_row;
  if (g_row < g_from) return false;
  std::snprintf(g_label, sizeof g_label, "%s %s/%s", symbol, g_phase, case_name);
  if (fn == nullptr) {
    std::printf("%s -> absent\n", g_label);
    std::fflush(stdout);
    return false;
  }
  alarm(kRowTimeoutSeconds);
  return true;
}

// What a call did to one output.
struct Out {
  std::string text;
};

constexpr unsigned char kSentinel = 0xA5;

template <typename T>
T Filled() {
  T v;
  std::memset(static_cast<void*>(&v), kSentinel, sizeof v);
  return v;
}

Out State(const char* name, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  bool left = true, zero = true;
  for (size_t i = 0; i < n; ++i) {
    left = left && b[i] == kSentinel;
    zero = zero && b[i] == 0;
  }
  return {std::string(name) + "=" + (left ? "left" : zero ? "zero" : "set")};
}

template <typename T>
Out O(const char* name, const T& v) {
  return State(name, &v, sizeof v);
}

// An output whose value must be the same with and without the library.
template <typename T>
Out V(const char* name, const T& v) {
  const Out state = O(name, v);
  if (state.text.find("=left") != std::string::npos) return state;
  if constexpr (std::is_signed_v<T>) return {std::string(name) + "=" + std::to_string(static_cast<long long>(v))};
  return {std::string(name) + "=" + std::to_string(static_cast<unsigned long long>(v))};
}

void EndLine(const std::string& result, std::initializer_list<Out> outs) {
  alarm(0);
  std::string line = std::string(g_label) + " -> " + result;
  for (const Out& o : outs) line += " " + o.text;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void End(CUresult rc, std::initializer_list<Out> outs = {}) { EndLine(ErrorName(rc), outs); }
void EndNvml(nvmlReturn_t rc, std::initializer_list<Out> outs = {}) {
  EndLine("NVML(" + std::to_string(rc) + ")", outs);
}

// The call is made first, then its outputs are read (argument order is unspecified).
#define END(call, ...)                  \
  do {                                  \
    const CUresult end_rc_ = (call);    \
    End(end_rc_, {__VA_ARGS__});        \
  } while (0)
#define END_NVML(call, ...)                 \
  do {                                      \
    const nvmlReturn_t end_rc_ = (call);    \
    EndNvml(end_rc_, {__VA_ARGS__});        \
  } while (0)

#define ROW(sym, case_name) if (Begin(#sym, reinterpret_cast<const void*>(p_##sym), case_name))

// ---- resources of the ctx and popped phases (null in the others)
struct Resources {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUdeviceptr dptr = 0;      // 1 MiB: copies in [0, 512K), stream-memop flags at 768K
  CUmodule module = nullptr;
  CUfunction func = nullptr;
  CUfunction legacy = nullptr;
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  CUmemoryPool pool = nullptr;
};
Resources R;
constexpr size_t kBytes = 1 << 20;
constexpr size_t kFlagOffset = 768 << 10;
unsigned char g_host[kBytes];

CUdeviceptr Flag() { return R.dptr == 0 ? 0 : R.dptr + kFlagOffset; }

// A fresh 1 MiB allocation for rows that free it (0 when none can be made here).
CUdeviceptr FreshAlloc() {
  CUdeviceptr p = 0;
  if (p_cuMemAlloc_v2 == nullptr || p_cuMemAlloc_v2(&p, kBytes) != CUDA_SUCCESS) return 0;
  return p;
}

void CUDA_CB HostNoop(void*) {}
void CUDA_CB StreamCallbackNoop(CUstream, CUresult, void*) {}

void Settle() {
  if (R.ctx != nullptr && p_cuCtxSynchronize != nullptr) p_cuCtxSynchronize();
}

// ---- the rows, by area
void DeviceRows() {
  ROW(cuInit, "flags-1") End(p_cuInit(1));
  if (std::strcmp(g_phase, "noinit") != 0) {
    ROW(cuInit, "valid") End(p_cuInit(0));
  }
  ROW(cuDeviceTotalMem_v2, "null-bytes") End(p_cuDeviceTotalMem_v2(nullptr, 0));
  ROW(cuDeviceTotalMem_v2, "dev-minus-1") { size_t b = Filled<size_t>(); END(p_cuDeviceTotalMem_v2(&b, -1), O("bytes", b)); }
  ROW(cuDeviceTotalMem_v2, "dev-99") { size_t b = Filled<size_t>(); END(p_cuDeviceTotalMem_v2(&b, 99), O("bytes", b)); }
  ROW(cuDeviceTotalMem_v2, "valid") { size_t b = Filled<size_t>(); END(p_cuDeviceTotalMem_v2(&b, 0), O("bytes", b)); }
  ROW(cuDeviceGetAttribute, "null-pi") End(p_cuDeviceGetAttribute(nullptr, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  ROW(cuDeviceGetAttribute, "attr-0") { int v = Filled<int>(); END(p_cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(0), 0), O("pi", v)); }
  ROW(cuDeviceGetAttribute, "attr-99999") { int v = Filled<int>(); END(p_cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(99999), 0), O("pi", v)); }
  ROW(cuDeviceGetAttribute, "sm-count-dev-99") { int v = Filled<int>(); END(p_cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 99), O("pi", v)); }
  ROW(cuDeviceGetAttribute, "sm-count") { int v = Filled<int>(); END(p_cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), O("pi", v)); }
  ROW(cuDeviceGetAttribute, "warp-size") { int v = Filled<int>(); END(p_cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), V("pi", v)); }
  ROW(cuMemGetInfo_v2, "null-free") { size_t t = Filled<size_t>(); END(p_cuMemGetInfo_v2(nullptr, &t), O("total", t)); }
  ROW(cuMemGetInfo_v2, "null-total") { size_t f = Filled<size_t>(); END(p_cuMemGetInfo_v2(&f, nullptr), O("free", f)); }
  ROW(cuMemGetInfo_v2, "null-both") End(p_cuMemGetInfo_v2(nullptr, nullptr));
  ROW(cuMemGetInfo_v2, "valid") {
    size_t f = Filled<size_t>(), t = Filled<size_t>();
    END(p_cuMemGetInfo_v2(&f, &t), O("free", f), O("total", t));
  }
  CUlaunchConfig config{};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 32;
  config.blockDimY = config.blockDimZ = 1;
  config.hStream = R.stream;
  CUlaunchAttribute cluster{};
  cluster.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  cluster.value.clusterDim.x = 2;
  cluster.value.clusterDim.y = cluster.value.clusterDim.z = 1;
  ROW(cuOccupancyMaxActiveClusters, "null-out") End(p_cuOccupancyMaxActiveClusters(nullptr, R.func, &config));
  ROW(cuOccupancyMaxActiveClusters, "null-config") { int n = Filled<int>(); END(p_cuOccupancyMaxActiveClusters(&n, R.func, nullptr), O("n", n)); }
  ROW(cuOccupancyMaxActiveClusters, "null-func") { int n = Filled<int>(); END(p_cuOccupancyMaxActiveClusters(&n, nullptr, &config), O("n", n)); }
  ROW(cuOccupancyMaxActiveClusters, "no-cluster-attr") { int n = Filled<int>(); END(p_cuOccupancyMaxActiveClusters(&n, R.func, &config), O("n", n)); }
  config.attrs = &cluster;
  config.numAttrs = 1;
  ROW(cuOccupancyMaxActiveClusters, "cluster-2") { int n = Filled<int>(); END(p_cuOccupancyMaxActiveClusters(&n, R.func, &config), O("n", n)); }
  config.attrs = nullptr;
  ROW(cuOccupancyMaxActiveClusters, "attrs-null-count-1") { int n = Filled<int>(); END(p_cuOccupancyMaxActiveClusters(&n, R.func, &config), O("n", n)); }
}

void ProcAddressRows() {
  struct Ask { const char* name; const char* symbol; int version; cuuint64_t flags; };
  const Ask asks[] = {
      {"null-symbol", nullptr, 12000, 0},
      {"unknown-symbol", "cuNoSuchFunction", 12000, 0},
      {"below-every-version", "cuMemAlloc", 1000, 0},
      {"bad-flags", "cuMemAlloc", 12000, 8},
      {"valid", "cuMemAlloc", 3020, 0},
      {"valid-per-thread", "cuLaunchKernel", 7000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM},
      {"valid-graph-launch", "cuGraphLaunch", 12000, 0},
      {"valid-future-version", "cuMemGetInfo", 99000, 0},
  };
  for (const Ask& a : asks) {
    ROW(cuGetProcAddress, a.name) { void* fn = Filled<void*>(); END(p_cuGetProcAddress(a.symbol, &fn, a.version, a.flags), O("pfn", fn)); }
    ROW(cuGetProcAddress_v2, a.name) {
      void* fn = Filled<void*>();
      CUdriverProcAddressQueryResult status = Filled<CUdriverProcAddressQueryResult>();
      END(p_cuGetProcAddress_v2(a.symbol, &fn, a.version, a.flags, &status), O("pfn", fn), V("status", status));
    }
  }
  ROW(cuGetProcAddress, "null-pfn") End(p_cuGetProcAddress("cuMemAlloc", nullptr, 12000, 0));
  ROW(cuGetProcAddress_v2, "null-pfn") End(p_cuGetProcAddress_v2("cuMemAlloc", nullptr, 12000, 0, nullptr));
  ROW(cuGetProcAddress_v2, "null-status") { void* fn = Filled<void*>(); END(p_cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, nullptr), O("pfn", fn)); }
}

void ContextRows() {
  const bool no_retain_held = R.ctx == nullptr;
  ROW(cuDevicePrimaryCtxRetain, "null-pctx") End(p_cuDevicePrimaryCtxRetain(nullptr, 0));
  ROW(cuDevicePrimaryCtxRetain, "dev-99") { CUcontext c = Filled<CUcontext>(); END(p_cuDevicePrimaryCtxRetain(&c, 99), O("pctx", c)); }
  ROW(cuDevicePrimaryCtxRetain, "valid-then-release") {
    CUcontext c = Filled<CUcontext>();
    const CUresult rc = p_cuDevicePrimaryCtxRetain(&c, 0);
    if (rc == CUDA_SUCCESS && p_cuDevicePrimaryCtxRelease_v2 != nullptr) p_cuDevicePrimaryCtxRelease_v2(0);
    END(rc, O("pctx", c));
  }
  ROW(cuDevicePrimaryCtxRelease, "dev-99") End(p_cuDevicePrimaryCtxRelease(99));
  ROW(cuDevicePrimaryCtxRelease_v2, "dev-99") End(p_cuDevicePrimaryCtxRelease_v2(99));
  ROW(cuDevicePrimaryCtxRelease, "dev-minus-1") End(p_cuDevicePrimaryCtxRelease(-1));
  ROW(cuDevicePrimaryCtxRelease_v2, "dev-minus-1") End(p_cuDevicePrimaryCtxRelease_v2(-1));
  if (no_retain_held) {  // with one held, a release would destroy the table's own context
    ROW(cuDevicePrimaryCtxRelease, "not-retained") End(p_cuDevicePrimaryCtxRelease(0));
    ROW(cuDevicePrimaryCtxRelease_v2, "not-retained") End(p_cuDevicePrimaryCtxRelease_v2(0));
    ROW(cuDevicePrimaryCtxReset, "valid") End(p_cuDevicePrimaryCtxReset(0));
    ROW(cuDevicePrimaryCtxReset_v2, "valid") End(p_cuDevicePrimaryCtxReset_v2(0));
  }
  ROW(cuDevicePrimaryCtxReset, "dev-99") End(p_cuDevicePrimaryCtxReset(99));
  ROW(cuDevicePrimaryCtxReset_v2, "dev-99") End(p_cuDevicePrimaryCtxReset_v2(99));

  // A context made here is destroyed at once (which also pops it).
  auto destroy = [](CUresult rc, CUcontext c) {
    if (rc == CUDA_SUCCESS && p_cuCtxDestroy_v2 != nullptr) p_cuCtxDestroy_v2(c);
  };
  ROW(cuCtxCreate_v2, "null-pctx") End(p_cuCtxCreate_v2(nullptr, 0, 0));
  ROW(cuCtxCreate_v2, "dev-99") { CUcontext c = Filled<CUcontext>(); END(p_cuCtxCreate_v2(&c, 0, 99), O("pctx", c)); }
  ROW(cuCtxCreate_v2, "flags-bad") { CUcontext c = Filled<CUcontext>(); const CUresult rc = p_cuCtxCreate_v2(&c, 0xFFFF0000u, 0); destroy(rc, c); END(rc, O("pctx", c)); }
  ROW(cuCtxCreate_v2, "valid") { CUcontext c = Filled<CUcontext>(); const CUresult rc = p_cuCtxCreate_v2(&c, 0, 0); destroy(rc, c); END(rc, O("pctx", c)); }
  ROW(cuCtxCreate_v3, "null-pctx") End(p_cuCtxCreate_v3(nullptr, nullptr, 0, 0, 0));
  ROW(cuCtxCreate_v3, "params-null-count-1") { CUcontext c = Filled<CUcontext>(); const CUresult rc = p_cuCtxCreate_v3(&c, nullptr, 1, 0, 0); destroy(rc, c); END(rc, O("pctx", c)); }
  ROW(cuCtxCreate_v3, "dev-99") { CUcontext c = Filled<CUcontext>(); END(p_cuCtxCreate_v3(&c, nullptr, 0, 0, 99), O("pctx", c)); }
  ROW(cuCtxCreate_v3, "valid") { CUcontext c = Filled<CUcontext>(); const CUresult rc = p_cuCtxCreate_v3(&c, nullptr, 0, 0, 0); destroy(rc, c); END(rc, O("pctx", c)); }
  ROW(cuCtxCreate_v4, "null-pctx") End(p_cuCtxCreate_v4(nullptr, nullptr, 0, 0));
  ROW(cuCtxCreate_v4, "dev-99") { CUcontext c = Filled<CUcontext>(); END(p_cuCtxCreate_v4(&c, nullptr, 0, 99), O("pctx", c)); }
  ROW(cuCtxCreate_v4, "valid") { CUcontext c = Filled<CUcontext>(); const CUresult rc = p_cuCtxCreate_v4(&c, nullptr, 0, 0); destroy(rc, c); END(rc, O("pctx", c)); }
  ROW(cuCtxDestroy_v2, "null") End(p_cuCtxDestroy_v2(nullptr));
}

void AllocationRows() {
  ROW(cuMemAlloc_v2, "null-dptr") End(p_cuMemAlloc_v2(nullptr, kBytes));
  ROW(cuMemAlloc_v2, "zero-size") { CUdeviceptr d = Filled<CUdeviceptr>(); END(p_cuMemAlloc_v2(&d, 0), O("dptr", d)); }
  ROW(cuMemAlloc_v2, "null-dptr-zero-size") End(p_cuMemAlloc_v2(nullptr, 0));
  ROW(cuMemAlloc_v2, "null-dptr-huge") End(p_cuMemAlloc_v2(nullptr, size_t{1} << 62));
  ROW(cuMemAlloc_v2, "huge") { CUdeviceptr d = Filled<CUdeviceptr>(); END(p_cuMemAlloc_v2(&d, size_t{1} << 62), O("dptr", d)); }
  ROW(cuMemAlloc_v2, "valid") {
    CUdeviceptr d = Filled<CUdeviceptr>();
    const CUresult rc = p_cuMemAlloc_v2(&d, kBytes);
    if (rc == CUDA_SUCCESS) p_cuMemFree_v2(d);
    END(rc, O("dptr", d));
  }
  ROW(cuMemAllocPitch_v2, "null-dptr") { size_t p = Filled<size_t>(); END(p_cuMemAllocPitch_v2(nullptr, &p, 256, 4, 4), O("pitch", p)); }
  ROW(cuMemAllocPitch_v2, "null-pitch") { CUdeviceptr d = Filled<CUdeviceptr>(); END(p_cuMemAllocPitch_v2(&d, nullptr, 256, 4, 4), O("dptr", d)); }
  ROW(cuMemAllocPitch_v2, "zero-width") { CUdeviceptr d = Filled<CUdeviceptr>(); size_t p = Filled<size_t>(); END(p_cuMemAllocPitch_v2(&d, &p, 0, 4, 4), O("dptr", d), O("pitch", p)); }
  ROW(cuMemAllocPitch_v2, "zero-height") { CUdeviceptr d = Filled<CUdeviceptr>(); size_t p = Filled<size_t>(); END(p_cuMemAllocPitch_v2(&d, &p, 256, 0, 4), O("dptr", d), O("pitch", p)); }
  ROW(cuMemAllocPitch_v2, "element-3") { CUdeviceptr d = Filled<CUdeviceptr>(); size_t p = Filled<size_t>(); END(p_cuMemAllocPitch_v2(&d, &p, 256, 4, 3), O("dptr", d), O("pitch", p)); }
  ROW(cuMemAllocPitch_v2, "huge") { CUdeviceptr d = Filled<CUdeviceptr>(); size_t p = Filled<size_t>(); END(p_cuMemAllocPitch_v2(&d, &p, size_t{1} << 40, size_t{1} << 22, 4), O("dptr", d), O("pitch", p)); }
  ROW(cuMemAllocPitch_v2, "valid") {
    CUdeviceptr d = Filled<CUdeviceptr>();
    size_t p = Filled<size_t>();
    const CUresult rc = p_cuMemAllocPitch_v2(&d, &p, 256, 4, 4);
    if (rc == CUDA_SUCCESS) p_cuMemFree_v2(d);
    END(rc, O("dptr", d), V("pitch", p));
  }
  ROW(cuMemAllocManaged, "null-dptr") End(p_cuMemAllocManaged(nullptr, kBytes, CU_MEM_ATTACH_GLOBAL));
  ROW(cuMemAllocManaged, "zero-size") { CUdeviceptr d = Filled<CUdeviceptr>(); END(p_cuMemAllocManaged(&d, 0, CU_MEM_ATTACH_GLOBAL), O("dptr", d)); }
  ROW(cuMemAllocManaged, "flags-0") { CUdeviceptr d = Filled<CUdeviceptr>(); const CUresult rc = p_cuMemAllocManaged(&d, kBytes, 0); if (rc == CUDA_SUCCESS) p_cuMemFree_v2(d); END(rc, O("dptr", d)); }
  ROW(cuMemAllocManaged, "flags-7") { CUdeviceptr d = Filled<CUdeviceptr>(); const CUresult rc = p_cuMemAllocManaged(&d, kBytes, 7); if (rc == CUDA_SUCCESS) p_cuMemFree_v2(d); END(rc, O("dptr", d)); }
  ROW(cuMemAllocManaged, "valid") {
    CUdeviceptr d = Filled<CUdeviceptr>();
    const CUresult rc = p_cuMemAllocManaged(&d, kBytes, CU_MEM_ATTACH_GLOBAL);
    if (rc == CUDA_SUCCESS) p_cuMemFree_v2(d);
    END(rc, O("dptr", d));
  }
  ROW(cuMemFree_v2, "zero") End(p_cuMemFree_v2(0));
  ROW(cuMemFree_v2, "host-pointer") End(p_cuMemFree_v2(reinterpret_cast<CUdeviceptr>(g_host)));
  ROW(cuMemFree_v2, "interior") End(p_cuMemFree_v2(R.dptr == 0 ? 0 : R.dptr + 16));
  ROW(cuMemFree_v2, "valid-twice") {
    const CUdeviceptr d = FreshAlloc();
    const CUresult first = p_cuMemFree_v2(d);
    END(p_cuMemFree_v2(d), Out{"first=" + ErrorName(first)});
  }

  ROW(cuMemGetAddressRange_v2, "null-both") End(p_cuMemGetAddressRange_v2(nullptr, nullptr, R.dptr));
  ROW(cuMemGetAddressRange_v2, "null-base") { size_t s = Filled<size_t>(); END(p_cuMemGetAddressRange_v2(nullptr, &s, R.dptr), V("size", s)); }
  ROW(cuMemGetAddressRange_v2, "null-size") { CUdeviceptr b = Filled<CUdeviceptr>(); END(p_cuMemGetAddressRange_v2(&b, nullptr, R.dptr), O("base", b)); }
  ROW(cuMemGetAddressRange_v2, "zero-pointer") { CUdeviceptr b = Filled<CUdeviceptr>(); size_t s = Filled<size_t>(); END(p_cuMemGetAddressRange_v2(&b, &s, 0), O("base", b), O("size", s)); }
  ROW(cuMemGetAddressRange_v2, "host-pointer") { CUdeviceptr b = Filled<CUdeviceptr>(); size_t s = Filled<size_t>(); END(p_cuMemGetAddressRange_v2(&b, &s, reinterpret_cast<CUdeviceptr>(g_host)), O("base", b), O("size", s)); }
  ROW(cuMemGetAddressRange_v2, "interior") {
    CUdeviceptr b = Filled<CUdeviceptr>();
    size_t s = Filled<size_t>();
    const CUresult rc = p_cuMemGetAddressRange_v2(&b, &s, R.dptr == 0 ? 0 : R.dptr + 4096);
    END(rc, Out{std::string("base-is-start=") + (rc == CUDA_SUCCESS && b == R.dptr ? "yes" : "no")}, V("size", s));
  }

  ROW(cuPointerGetAttribute, "null-data") End(p_cuPointerGetAttribute(nullptr, CU_POINTER_ATTRIBUTE_CONTEXT, R.dptr));
  ROW(cuPointerGetAttribute, "attr-9999") { uint64_t v = Filled<uint64_t>(); END(p_cuPointerGetAttribute(&v, static_cast<CUpointer_attribute>(9999), R.dptr), O("data", v)); }
  ROW(cuPointerGetAttribute, "zero-pointer") { unsigned v = Filled<unsigned>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, 0), O("data", v)); }
  ROW(cuPointerGetAttribute, "host-pointer") { unsigned v = Filled<unsigned>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, reinterpret_cast<CUdeviceptr>(g_host)), O("data", v)); }
  ROW(cuPointerGetAttribute, "context") { CUcontext v = Filled<CUcontext>(); const CUresult rc = p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_CONTEXT, R.dptr); END(rc, Out{std::string("is-ctx=") + (v == R.ctx ? "yes" : "no")}); }
  ROW(cuPointerGetAttribute, "memory-type") { unsigned v = Filled<unsigned>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, R.dptr), V("data", v)); }
  ROW(cuPointerGetAttribute, "range-size") { size_t v = Filled<size_t>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_RANGE_SIZE, R.dptr + (R.dptr ? 64 : 0)), V("data", v)); }
  ROW(cuPointerGetAttribute, "device-ordinal") { int v = Filled<int>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, R.dptr), V("data", v)); }
  ROW(cuPointerGetAttribute, "host-pointer-attr") { void* v = Filled<void*>(); END(p_cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_HOST_POINTER, R.dptr), O("data", v)); }

  CUpointer_attribute attrs[3] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_HOST_POINTER};
  ROW(cuPointerGetAttributes, "zero-count") { unsigned t = Filled<unsigned>(); void* data[1] = {&t}; END(p_cuPointerGetAttributes(0, attrs, data, R.dptr), O("type", t)); }
  ROW(cuPointerGetAttributes, "null-attributes") { unsigned t = Filled<unsigned>(); void* data[1] = {&t}; END(p_cuPointerGetAttributes(1, nullptr, data, R.dptr), O("type", t)); }
  ROW(cuPointerGetAttributes, "null-data") End(p_cuPointerGetAttributes(1, attrs, nullptr, R.dptr));
  ROW(cuPointerGetAttributes, "one-data-null") {
    unsigned t = Filled<unsigned>();
    void* h = Filled<void*>();
    void* data[3] = {&t, nullptr, &h};
    END(p_cuPointerGetAttributes(3, attrs, data, R.dptr), O("type", t), O("host", h));
  }
  ROW(cuPointerGetAttributes, "valid") {
    unsigned t = Filled<unsigned>();
    int o = Filled<int>();
    void* h = Filled<void*>();
    void* data[3] = {&t, &o, &h};
    END(p_cuPointerGetAttributes(3, attrs, data, R.dptr), V("type", t), V("ordinal", o), O("host", h));
  }
  ROW(cuPointerGetAttributes, "host-pointer") {
    unsigned t = Filled<unsigned>();
    int o = Filled<int>();
    void* h = Filled<void*>();
    void* data[3] = {&t, &o, &h};
    END(p_cuPointerGetAttributes(3, attrs, data, reinterpret_cast<CUdeviceptr>(g_host)), O("type", t), O("ordinal", o), O("host", h));
  }
}

template <typename Fn>
void AllocAsyncRows(const char* symbol, Fn fn, PFN_cuMemFreeAsync_v11020 free_async) {
  if (Begin(symbol, reinterpret_cast<const void*>(fn), "null-dptr")) End(fn(nullptr, kBytes, R.stream));
  if (Begin(symbol, reinterpret_cast<const void*>(fn), "zero-size")) { CUdeviceptr d = Filled<CUdeviceptr>(); END(fn(&d, 0, R.stream), O("dptr", d)); }
  if (Begin(symbol, reinterpret_cast<const void*>(fn), "huge")) { CUdeviceptr d = Filled<CUdeviceptr>(); END(fn(&d, size_t{1} << 62, R.stream), O("dptr", d)); }
  if (Begin(symbol, reinterpret_cast<const void*>(fn), "valid")) {
    CUdeviceptr d = Filled<CUdeviceptr>();
    const CUresult rc = fn(&d, kBytes, R.stream);
    if (rc == CUDA_SUCCESS && free_async != nullptr) free_async(d, R.stream);
    Settle();
    END(rc, O("dptr", d));
  }
}

template <typename Fn>
void AllocFromPoolRows(const char* symbol, Fn fn, PFN_cuMemFreeAsync_v11020 free_async) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "null-pool")) { CUdeviceptr d = Filled<CUdeviceptr>(); END(fn(&d, kBytes, nullptr, R.stream), O("dptr", d)); }
  if (Begin(symbol, f, "null-dptr")) End(fn(nullptr, kBytes, R.pool, R.stream));
  if (Begin(symbol, f, "zero-size")) { CUdeviceptr d = Filled<CUdeviceptr>(); END(fn(&d, 0, R.pool, R.stream), O("dptr", d)); }
  if (Begin(symbol, f, "valid")) {
    CUdeviceptr d = Filled<CUdeviceptr>();
    const CUresult rc = fn(&d, kBytes, R.pool, R.stream);
    if (rc == CUDA_SUCCESS && free_async != nullptr) free_async(d, R.stream);
    Settle();
    END(rc, O("dptr", d));
  }
}

template <typename Fn>
void FreeAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero")) End(fn(0, R.stream));
  if (Begin(symbol, f, "host-pointer")) End(fn(reinterpret_cast<CUdeviceptr>(g_host), R.stream));
  if (Begin(symbol, f, "valid-twice")) {
    const CUdeviceptr d = FreshAlloc();
    const CUresult first = fn(d, R.stream);
    Settle();
    const CUresult second = fn(d, R.stream);
    Settle();
    END(second, Out{"first=" + ErrorName(first)});
  }
}

void PoolAndVmmRows() {
  AllocAsyncRows("cuMemAllocAsync", p_cuMemAllocAsync, p_cuMemFreeAsync);
  AllocAsyncRows("cuMemAllocAsync_ptsz", p_cuMemAllocAsync_ptsz, p_cuMemFreeAsync_ptsz);
  AllocFromPoolRows("cuMemAllocFromPoolAsync", p_cuMemAllocFromPoolAsync, p_cuMemFreeAsync);
  AllocFromPoolRows("cuMemAllocFromPoolAsync_ptsz", p_cuMemAllocFromPoolAsync_ptsz, p_cuMemFreeAsync_ptsz);
  FreeAsyncRows("cuMemFreeAsync", p_cuMemFreeAsync);
  FreeAsyncRows("cuMemFreeAsync_ptsz", p_cuMemFreeAsync_ptsz);
  ROW(cuMemPoolTrimTo, "null-pool") End(p_cuMemPoolTrimTo(nullptr, 0));
  ROW(cuMemPoolTrimTo, "valid") End(p_cuMemPoolTrimTo(R.pool, 0));
  ROW(cuMemPoolDestroy, "null-pool") End(p_cuMemPoolDestroy(nullptr));

  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  constexpr size_t kGranule = 2 << 20;
  auto release = [](CUresult rc, CUmemGenericAllocationHandle h) {
    if (rc == CUDA_SUCCESS) p_cuMemRelease(h);
  };
  ROW(cuMemCreate, "null-handle") End(p_cuMemCreate(nullptr, kGranule, &prop, 0));
  ROW(cuMemCreate, "null-prop") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, kGranule, nullptr, 0); release(rc, h); END(rc, O("handle", h)); }
  ROW(cuMemCreate, "zero-size") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, 0, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  ROW(cuMemCreate, "unaligned-size") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, 4096, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  ROW(cuMemCreate, "flags-bad") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, kGranule, &prop, 0xFF); release(rc, h); END(rc, O("handle", h)); }
  ROW(cuMemCreate, "huge") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, size_t{1} << 61, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  prop.location.id = 99;
  ROW(cuMemCreate, "device-99") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, kGranule, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  prop.location.id = 0;
  prop.type = static_cast<CUmemAllocationType>(0);
  ROW(cuMemCreate, "type-invalid") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, kGranule, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  ROW(cuMemCreate, "valid") { auto h = Filled<CUmemGenericAllocationHandle>(); const CUresult rc = p_cuMemCreate(&h, kGranule, &prop, 0); release(rc, h); END(rc, O("handle", h)); }
  ROW(cuMemRelease, "zero") End(p_cuMemRelease(0));
  ROW(cuMemRelease, "valid-twice") {
    CUmemGenericAllocationHandle h = 0;
    const CUresult created = p_cuMemCreate != nullptr ? p_cuMemCreate(&h, kGranule, &prop, 0) : CUDA_ERROR_NOT_FOUND;
    const CUresult first = created == CUDA_SUCCESS ? p_cuMemRelease(h) : created;
    if (created == CUDA_SUCCESS) {
      END(p_cuMemRelease(h), Out{"first=" + ErrorName(first)});
    } else {
      END(created, Out{"created=no"});
    }
  }
}

void ArrayRows() {
  CUDA_ARRAY_DESCRIPTOR d2{};
  d2.Width = 64;
  d2.Height = 64;
  d2.Format = CU_AD_FORMAT_FLOAT;
  d2.NumChannels = 1;
  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = 64;
  d3.Height = 64;
  d3.Depth = 0;
  d3.Format = CU_AD_FORMAT_FLOAT;
  d3.NumChannels = 1;
  auto destroy = [](CUresult rc, CUarray a) {
    if (rc == CUDA_SUCCESS) p_cuArrayDestroy(a);
  };
  ROW(cuArrayCreate_v2, "null-handle") End(p_cuArrayCreate_v2(nullptr, &d2));
  ROW(cuArrayCreate_v2, "null-desc") { CUarray a = Filled<CUarray>(); END(p_cuArrayCreate_v2(&a, nullptr), O("array", a)); }
  ROW(cuArrayCreate_v2, "valid") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArrayCreate_v2(&a, &d2); destroy(rc, a); END(rc, O("array", a)); }
  d2.Width = 0;
  ROW(cuArrayCreate_v2, "zero-width") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArrayCreate_v2(&a, &d2); destroy(rc, a); END(rc, O("array", a)); }
  d2.Width = 64;
  d2.NumChannels = 3;
  ROW(cuArrayCreate_v2, "channels-3") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArrayCreate_v2(&a, &d2); destroy(rc, a); END(rc, O("array", a)); }
  d2.NumChannels = 1;
  d2.Format = static_cast<CUarray_format>(0);
  ROW(cuArrayCreate_v2, "format-invalid") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArrayCreate_v2(&a, &d2); destroy(rc, a); END(rc, O("array", a)); }
  ROW(cuArray3DCreate_v2, "null-handle") End(p_cuArray3DCreate_v2(nullptr, &d3));
  ROW(cuArray3DCreate_v2, "null-desc") { CUarray a = Filled<CUarray>(); END(p_cuArray3DCreate_v2(&a, nullptr), O("array", a)); }
  ROW(cuArray3DCreate_v2, "valid") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArray3DCreate_v2(&a, &d3); destroy(rc, a); END(rc, O("array", a)); }
  d3.Width = 0;
  ROW(cuArray3DCreate_v2, "zero-width") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArray3DCreate_v2(&a, &d3); destroy(rc, a); END(rc, O("array", a)); }
  d3.Width = 64;
  d3.Flags = 0xFFFF0000u;
  ROW(cuArray3DCreate_v2, "flags-bad") { CUarray a = Filled<CUarray>(); const CUresult rc = p_cuArray3DCreate_v2(&a, &d3); destroy(rc, a); END(rc, O("array", a)); }
  d3.Flags = 0;
  ROW(cuArrayDestroy, "null") End(p_cuArrayDestroy(nullptr));
  auto destroy_mip = [](CUresult rc, CUmipmappedArray a) {
    if (rc == CUDA_SUCCESS) p_cuMipmappedArrayDestroy(a);
  };
  ROW(cuMipmappedArrayCreate, "null-handle") End(p_cuMipmappedArrayCreate(nullptr, &d3, 3));
  ROW(cuMipmappedArrayCreate, "null-desc") { CUmipmappedArray a = Filled<CUmipmappedArray>(); END(p_cuMipmappedArrayCreate(&a, nullptr, 3), O("array", a)); }
  ROW(cuMipmappedArrayCreate, "zero-levels") { CUmipmappedArray a = Filled<CUmipmappedArray>(); const CUresult rc = p_cuMipmappedArrayCreate(&a, &d3, 0); destroy_mip(rc, a); END(rc, O("array", a)); }
  ROW(cuMipmappedArrayCreate, "too-many-levels") { CUmipmappedArray a = Filled<CUmipmappedArray>(); const CUresult rc = p_cuMipmappedArrayCreate(&a, &d3, 40); destroy_mip(rc, a); END(rc, O("array", a)); }
  ROW(cuMipmappedArrayCreate, "valid") { CUmipmappedArray a = Filled<CUmipmappedArray>(); const CUresult rc = p_cuMipmappedArrayCreate(&a, &d3, 3); destroy_mip(rc, a); END(rc, O("array", a)); }
  ROW(cuMipmappedArrayDestroy, "null") End(p_cuMipmappedArrayDestroy(nullptr));
}

void GraphRows() {
  CUDA_MEM_ALLOC_NODE_PARAMS params{};
  params.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  params.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  params.poolProps.location.id = 0;
  params.bytesize = kBytes;
  // A node is added to a graph of its own, destroyed with it.
  auto with_graph = [](auto add) {
    CUgraph g = nullptr;
    if (p_cuGraphCreate == nullptr || p_cuGraphCreate(&g, 0) != CUDA_SUCCESS) g = nullptr;
    add(g);
    if (g != nullptr) p_cuGraphDestroy(g);
  };
  ROW(cuGraphAddMemAllocNode, "null-node") with_graph([&](CUgraph g) { End(p_cuGraphAddMemAllocNode(nullptr, g, nullptr, 0, &params)); });
  ROW(cuGraphAddMemAllocNode, "null-graph") { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, nullptr, nullptr, 0, &params), O("node", n)); }
  ROW(cuGraphAddMemAllocNode, "null-params") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 0, nullptr), O("node", n)); });
  ROW(cuGraphAddMemAllocNode, "deps-null-count-1") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 1, &params), O("node", n)); });
  ROW(cuGraphAddMemAllocNode, "valid") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 0, &params), O("node", n), V("dptr-is-zero", params.dptr == 0)); });
  params.bytesize = 0;
  ROW(cuGraphAddMemAllocNode, "zero-size") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 0, &params), O("node", n)); });
  params.bytesize = size_t{1} << 61;
  ROW(cuGraphAddMemAllocNode, "huge") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 0, &params), O("node", n)); });
  ROW(cuGraphAddMemAllocNode, "huge-null-graph") { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, nullptr, nullptr, 0, &params), O("node", n)); }
  params.bytesize = kBytes;
  params.poolProps.location.id = 99;
  ROW(cuGraphAddMemAllocNode, "device-99") with_graph([&](CUgraph g) { CUgraphNode n = Filled<CUgraphNode>(); END(p_cuGraphAddMemAllocNode(&n, g, nullptr, 0, &params), O("node", n)); });

  ROW(cuGraphLaunch, "null-exec") End(p_cuGraphLaunch(nullptr, R.stream));
  ROW(cuGraphLaunch, "valid") { const CUresult rc = p_cuGraphLaunch(R.exec, R.stream); Settle(); End(rc); }
  ROW(cuGraphLaunch_ptsz, "null-exec") End(p_cuGraphLaunch_ptsz(nullptr, R.stream));
  ROW(cuGraphLaunch_ptsz, "valid") { const CUresult rc = p_cuGraphLaunch_ptsz(R.exec, R.stream); Settle(); End(rc); }
  ROW(cuDeviceGraphMemTrim, "dev-99") End(p_cuDeviceGraphMemTrim(99));
  ROW(cuDeviceGraphMemTrim, "valid") End(p_cuDeviceGraphMemTrim(0));
}

template <typename Fn>
void LaunchKernelRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "null-func")) End(fn(nullptr, 1, 1, 1, 32, 1, 1, 0, R.stream, nullptr, nullptr));
  if (Begin(symbol, f, "zero-grid")) End(fn(R.func, 0, 1, 1, 32, 1, 1, 0, R.stream, nullptr, nullptr));
  if (Begin(symbol, f, "zero-block")) End(fn(R.func, 1, 1, 1, 0, 1, 1, 0, R.stream, nullptr, nullptr));
  if (Begin(symbol, f, "block-2048")) End(fn(R.func, 1, 1, 1, 2048, 1, 1, 0, R.stream, nullptr, nullptr));
  if (Begin(symbol, f, "shared-1GiB")) End(fn(R.func, 1, 1, 1, 32, 1, 1, 1u << 30, R.stream, nullptr, nullptr));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(R.func, 1, 1, 1, 32, 1, 1, 0, R.stream, nullptr, nullptr); Settle(); End(rc); }
}

template <typename Fn>
void LaunchKernelExRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  CUlaunchConfig config{};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 32;
  config.blockDimY = config.blockDimZ = 1;
  config.hStream = R.stream;
  if (Begin(symbol, f, "null-config")) End(fn(nullptr, R.func, nullptr, nullptr));
  if (Begin(symbol, f, "null-func")) End(fn(&config, nullptr, nullptr, nullptr));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(&config, R.func, nullptr, nullptr); Settle(); End(rc); }
  config.numAttrs = 1;
  if (Begin(symbol, f, "attrs-null-count-1")) End(fn(&config, R.func, nullptr, nullptr));
  config.numAttrs = 0;
  config.gridDimX = 0;
  if (Begin(symbol, f, "zero-grid")) End(fn(&config, R.func, nullptr, nullptr));
}

template <typename Fn>
void CooperativeRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "null-func")) End(fn(nullptr, 1, 1, 1, 32, 1, 1, 0, R.stream, nullptr));
  if (Begin(symbol, f, "zero-grid")) End(fn(R.func, 0, 1, 1, 32, 1, 1, 0, R.stream, nullptr));
  if (Begin(symbol, f, "too-large")) End(fn(R.func, 1u << 20, 1, 1, 1024, 1, 1, 0, R.stream, nullptr));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(R.func, 1, 1, 1, 32, 1, 1, 0, R.stream, nullptr); Settle(); End(rc); }
}

void LaunchRows() {
  LaunchKernelRows("cuLaunchKernel", p_cuLaunchKernel);
  LaunchKernelRows("cuLaunchKernel_ptsz", p_cuLaunchKernel_ptsz);
  LaunchKernelExRows("cuLaunchKernelEx", p_cuLaunchKernelEx);
  LaunchKernelExRows("cuLaunchKernelEx_ptsz", p_cuLaunchKernelEx_ptsz);
  CooperativeRows("cuLaunchCooperativeKernel", p_cuLaunchCooperativeKernel);
  CooperativeRows("cuLaunchCooperativeKernel_ptsz", p_cuLaunchCooperativeKernel_ptsz);

  CUDA_LAUNCH_PARAMS lp{};
  lp.function = R.func;
  lp.gridDimX = lp.gridDimY = lp.gridDimZ = 1;
  lp.blockDimX = 32;
  lp.blockDimY = lp.blockDimZ = 1;
  lp.hStream = R.stream;
  ROW(cuLaunchCooperativeKernelMultiDevice, "null-list") End(p_cuLaunchCooperativeKernelMultiDevice(nullptr, 1, 0));
  ROW(cuLaunchCooperativeKernelMultiDevice, "zero-devices") End(p_cuLaunchCooperativeKernelMultiDevice(&lp, 0, 0));
  ROW(cuLaunchCooperativeKernelMultiDevice, "flags-bad") End(p_cuLaunchCooperativeKernelMultiDevice(&lp, 1, 0xFF));
  ROW(cuLaunchCooperativeKernelMultiDevice, "valid") { const CUresult rc = p_cuLaunchCooperativeKernelMultiDevice(&lp, 1, 0); Settle(); End(rc); }
  lp.function = nullptr;
  ROW(cuLaunchCooperativeKernelMultiDevice, "null-func") End(p_cuLaunchCooperativeKernelMultiDevice(&lp, 1, 0));

  // The pre-4.0 launches take the block shape and parameters set on the function beforehand.
  ROW(cuLaunch, "null-func") End(p_cuLaunch(nullptr));
  ROW(cuLaunchGrid, "null-func") End(p_cuLaunchGrid(nullptr, 1, 1));
  ROW(cuLaunchGridAsync, "null-func") End(p_cuLaunchGridAsync(nullptr, 1, 1, R.stream));
  if (R.legacy != nullptr && p_cuFuncSetBlockShape != nullptr && p_cuParamSetSize != nullptr) {
    p_cuFuncSetBlockShape(R.legacy, 32, 1, 1);
    p_cuParamSetSize(R.legacy, 0);
  }
  ROW(cuLaunch, "valid") { const CUresult rc = p_cuLaunch(R.legacy); Settle(); End(rc); }
  ROW(cuLaunchGrid, "zero-grid") End(p_cuLaunchGrid(R.legacy, 0, 1));
  ROW(cuLaunchGrid, "valid") { const CUresult rc = p_cuLaunchGrid(R.legacy, 2, 1); Settle(); End(rc); }
  ROW(cuLaunchGridAsync, "zero-grid") End(p_cuLaunchGridAsync(R.legacy, 0, 1, R.stream));
  ROW(cuLaunchGridAsync, "valid") { const CUresult rc = p_cuLaunchGridAsync(R.legacy, 2, 1, R.stream); Settle(); End(rc); }

  ROW(cuLaunchHostFunc, "null-fn") End(p_cuLaunchHostFunc(R.stream, nullptr, nullptr));
  ROW(cuLaunchHostFunc, "valid") { const CUresult rc = p_cuLaunchHostFunc(R.stream, HostNoop, nullptr); Settle(); End(rc); }
  ROW(cuLaunchHostFunc_ptsz, "null-fn") End(p_cuLaunchHostFunc_ptsz(R.stream, nullptr, nullptr));
  ROW(cuLaunchHostFunc_ptsz, "valid") { const CUresult rc = p_cuLaunchHostFunc_ptsz(R.stream, HostNoop, nullptr); Settle(); End(rc); }
  ROW(cuStreamAddCallback, "null-callback") End(p_cuStreamAddCallback(R.stream, nullptr, nullptr, 0));
  ROW(cuStreamAddCallback, "flags-1") End(p_cuStreamAddCallback(R.stream, StreamCallbackNoop, nullptr, 1));
  ROW(cuStreamAddCallback, "valid") { const CUresult rc = p_cuStreamAddCallback(R.stream, StreamCallbackNoop, nullptr, 0); Settle(); End(rc); }
  ROW(cuStreamAddCallback_ptsz, "null-callback") End(p_cuStreamAddCallback_ptsz(R.stream, nullptr, nullptr, 0));
  ROW(cuStreamAddCallback_ptsz, "valid") { const CUresult rc = p_cuStreamAddCallback_ptsz(R.stream, StreamCallbackNoop, nullptr, 0); Settle(); End(rc); }
}

// Waits are always satisfied (GEQ 0 on a flag that only ever grows), so nothing can hang.
template <typename Fn, typename T>
void WaitValueRows(const char* symbol, Fn fn, T) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-address")) End(fn(R.stream, 0, 0, CU_STREAM_WAIT_VALUE_GEQ));
  if (Begin(symbol, f, "unaligned")) End(fn(R.stream, Flag() + 1, 0, CU_STREAM_WAIT_VALUE_GEQ));
  if (Begin(symbol, f, "flags-bad")) End(fn(R.stream, Flag(), 0, 0xF0));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(R.stream, Flag(), 0, CU_STREAM_WAIT_VALUE_GEQ); Settle(); End(rc); }
}

template <typename Fn, typename T>
void WriteValueRows(const char* symbol, Fn fn, T) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-address")) End(fn(R.stream, 0, 1, 0));
  if (Begin(symbol, f, "unaligned")) End(fn(R.stream, Flag() + 1, 1, 0));
  if (Begin(symbol, f, "flags-bad")) End(fn(R.stream, Flag(), 1, 0xF0));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(R.stream, Flag(), 1, 0); Settle(); End(rc); }
}

template <typename Fn>
void BatchMemOpRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  CUstreamBatchMemOpParams ops[1]{};
  ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
  ops[0].writeValue.address = Flag();
  ops[0].writeValue.value = 1;
  if (Begin(symbol, f, "zero-count")) End(fn(R.stream, 0, nullptr, 0));
  if (Begin(symbol, f, "null-array")) End(fn(R.stream, 1, nullptr, 0));
  if (Begin(symbol, f, "flags-bad")) End(fn(R.stream, 1, ops, 0xF0));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(R.stream, 1, ops, 0); Settle(); End(rc); }
  ops[0].writeValue.operation = static_cast<CUstreamBatchMemOpType>(77);
  if (Begin(symbol, f, "operation-bad")) End(fn(R.stream, 1, ops, 0));
  ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
  ops[0].writeValue.address = 0;
  if (Begin(symbol, f, "zero-address")) End(fn(R.stream, 1, ops, 0));
}

void StreamMemOpRows() {
  WaitValueRows("cuStreamWaitValue32", p_cuStreamWaitValue32, cuuint32_t{});
  WaitValueRows("cuStreamWaitValue32_ptsz", p_cuStreamWaitValue32_ptsz, cuuint32_t{});
  WaitValueRows("cuStreamWaitValue32_v2", p_cuStreamWaitValue32_v2, cuuint32_t{});
  WaitValueRows("cuStreamWaitValue32_v2_ptsz", p_cuStreamWaitValue32_v2_ptsz, cuuint32_t{});
  WaitValueRows("cuStreamWaitValue64", p_cuStreamWaitValue64, cuuint64_t{});
  WaitValueRows("cuStreamWaitValue64_ptsz", p_cuStreamWaitValue64_ptsz, cuuint64_t{});
  WaitValueRows("cuStreamWaitValue64_v2", p_cuStreamWaitValue64_v2, cuuint64_t{});
  WaitValueRows("cuStreamWaitValue64_v2_ptsz", p_cuStreamWaitValue64_v2_ptsz, cuuint64_t{});
  WriteValueRows("cuStreamWriteValue32", p_cuStreamWriteValue32, cuuint32_t{});
  WriteValueRows("cuStreamWriteValue32_ptsz", p_cuStreamWriteValue32_ptsz, cuuint32_t{});
  WriteValueRows("cuStreamWriteValue32_v2", p_cuStreamWriteValue32_v2, cuuint32_t{});
  WriteValueRows("cuStreamWriteValue32_v2_ptsz", p_cuStreamWriteValue32_v2_ptsz, cuuint32_t{});
  WriteValueRows("cuStreamWriteValue64", p_cuStreamWriteValue64, cuuint64_t{});
  WriteValueRows("cuStreamWriteValue64_ptsz", p_cuStreamWriteValue64_ptsz, cuuint64_t{});
  WriteValueRows("cuStreamWriteValue64_v2", p_cuStreamWriteValue64_v2, cuuint64_t{});
  WriteValueRows("cuStreamWriteValue64_v2_ptsz", p_cuStreamWriteValue64_v2_ptsz, cuuint64_t{});
  BatchMemOpRows("cuStreamBatchMemOp", p_cuStreamBatchMemOp);
  BatchMemOpRows("cuStreamBatchMemOp_ptsz", p_cuStreamBatchMemOp_ptsz);
  BatchMemOpRows("cuStreamBatchMemOp_v2", p_cuStreamBatchMemOp_v2);
  BatchMemOpRows("cuStreamBatchMemOp_v2_ptsz", p_cuStreamBatchMemOp_v2_ptsz);
}

// ---- copies and memsets: within [0, 512K) of R.dptr
CUdeviceptr At(size_t offset) { return R.dptr == 0 ? 0 : R.dptr + offset; }

template <typename Fn>
void CopyDDRows(const char* symbol, Fn fn) {  // (dst, src, n) device to device
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), At(4096), 0));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, At(4096), 4096));
  if (Begin(symbol, f, "zero-src")) End(fn(At(0), 0, 4096));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), At(4096), 2 * kBytes));
  if (Begin(symbol, f, "valid")) End(fn(At(0), At(4096), 4096));
}

template <typename Fn>
void CopyDDAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), At(4096), 0, R.stream));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, At(4096), 4096, R.stream));
  if (Begin(symbol, f, "zero-src")) End(fn(At(0), 0, 4096, R.stream));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), At(4096), 2 * kBytes, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(At(0), At(4096), 4096, R.stream); Settle(); End(rc); }
}

template <typename Fn>
void CopyHtoDRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), g_host, 0));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, g_host, 4096));
  if (Begin(symbol, f, "null-src")) End(fn(At(0), nullptr, 4096));
  if (Begin(symbol, f, "valid")) End(fn(At(0), g_host, 4096));
}

template <typename Fn>
void CopyHtoDAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), g_host, 0, R.stream));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, g_host, 4096, R.stream));
  if (Begin(symbol, f, "null-src")) { const CUresult rc = fn(At(0), nullptr, 4096, R.stream); Settle(); End(rc); }
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(At(0), g_host, 4096, R.stream); Settle(); End(rc); }
}

template <typename Fn>
void CopyDtoHRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(g_host, At(0), 0));
  if (Begin(symbol, f, "null-dst")) End(fn(nullptr, At(0), 4096));
  if (Begin(symbol, f, "zero-src")) End(fn(g_host, 0, 4096));
  if (Begin(symbol, f, "valid")) End(fn(g_host, At(0), 4096));
}

template <typename Fn>
void CopyDtoHAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-bytes")) End(fn(g_host, At(0), 0, R.stream));
  if (Begin(symbol, f, "null-dst")) { const CUresult rc = fn(nullptr, At(0), 4096, R.stream); Settle(); End(rc); }
  if (Begin(symbol, f, "zero-src")) End(fn(g_host, 0, 4096, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(g_host, At(0), 4096, R.stream); Settle(); End(rc); }
}

template <typename Fn, typename T>
void MemsetRows(const char* symbol, Fn fn, T value, size_t element) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-count")) End(fn(At(0), value, 0));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, value, 1024));
  if (element > 1 && Begin(symbol, f, "unaligned")) End(fn(At(1), value, 1024));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), value, 2 * kBytes / element));
  if (Begin(symbol, f, "valid")) End(fn(At(0), value, 1024));
}

template <typename Fn, typename T>
void MemsetAsyncRows(const char* symbol, Fn fn, T value, size_t element) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-count")) End(fn(At(0), value, 0, R.stream));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, value, 1024, R.stream));
  if (element > 1 && Begin(symbol, f, "unaligned")) End(fn(At(1), value, 1024, R.stream));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), value, 2 * kBytes / element, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(At(0), value, 1024, R.stream); Settle(); End(rc); }
}

template <typename Fn, typename T>
void Memset2DRows(const char* symbol, Fn fn, T value, size_t element) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-width")) End(fn(At(0), 1024, value, 0, 4));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, 1024, value, 64, 4));
  if (Begin(symbol, f, "pitch-below-width")) End(fn(At(0), 16, value, 64, 4));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), 1024, value, 64, 4096));
  if (Begin(symbol, f, "valid")) End(fn(At(0), 1024, value, 1024 / element, 4));
}

template <typename Fn, typename T>
void Memset2DAsyncRows(const char* symbol, Fn fn, T value, size_t element) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "zero-width")) End(fn(At(0), 1024, value, 0, 4, R.stream));
  if (Begin(symbol, f, "zero-dst")) End(fn(0, 1024, value, 64, 4, R.stream));
  if (Begin(symbol, f, "pitch-below-width")) End(fn(At(0), 16, value, 64, 4, R.stream));
  if (Begin(symbol, f, "past-end")) End(fn(At(0), 1024, value, 64, 4096, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(At(0), 1024, value, 1024 / element, 4, R.stream); Settle(); End(rc); }
}

CUDA_MEMCPY2D Copy2D() {
  CUDA_MEMCPY2D c{};
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = At(64 << 10);
  c.srcPitch = 1024;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = At(0);
  c.dstPitch = 1024;
  c.WidthInBytes = 512;
  c.Height = 8;
  return c;
}

template <typename Fn>
void Copy2DRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  CUDA_MEMCPY2D c = Copy2D();
  if (Begin(symbol, f, "null-copy")) End(fn(nullptr));
  if (Begin(symbol, f, "valid")) End(fn(&c));
  c.WidthInBytes = 0;
  if (Begin(symbol, f, "zero-width")) End(fn(&c));
  c.WidthInBytes = 2048;
  if (Begin(symbol, f, "pitch-below-width")) End(fn(&c));
  c = Copy2D();
  c.srcMemoryType = static_cast<CUmemorytype>(77);
  if (Begin(symbol, f, "memory-type-bad")) End(fn(&c));
}

template <typename Fn>
void Copy2DAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  CUDA_MEMCPY2D c = Copy2D();
  if (Begin(symbol, f, "null-copy")) End(fn(nullptr, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(&c, R.stream); Settle(); End(rc); }
  c.WidthInBytes = 0;
  if (Begin(symbol, f, "zero-width")) End(fn(&c, R.stream));
  c.WidthInBytes = 2048;
  if (Begin(symbol, f, "pitch-below-width")) End(fn(&c, R.stream));
}

template <typename Fn>
void CopyPeerRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "null-contexts")) End(fn(At(0), nullptr, At(4096), nullptr, 4096));
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), R.ctx, At(4096), R.ctx, 0));
  if (Begin(symbol, f, "valid")) End(fn(At(0), R.ctx, At(4096), R.ctx, 4096));
}

template <typename Fn>
void CopyPeerAsyncRows(const char* symbol, Fn fn) {
  const void* f = reinterpret_cast<const void*>(fn);
  if (Begin(symbol, f, "null-contexts")) End(fn(At(0), nullptr, At(4096), nullptr, 4096, R.stream));
  if (Begin(symbol, f, "zero-bytes")) End(fn(At(0), R.ctx, At(4096), R.ctx, 0, R.stream));
  if (Begin(symbol, f, "valid")) { const CUresult rc = fn(At(0), R.ctx, At(4096), R.ctx, 4096, R.stream); Settle(); End(rc); }
}

void CopyRows() {
  CopyDDRows("cuMemcpy", p_cuMemcpy);
  CopyDDRows("cuMemcpy_ptds", p_cuMemcpy_ptds);
  CopyDDAsyncRows("cuMemcpyAsync", p_cuMemcpyAsync);
  CopyDDAsyncRows("cuMemcpyAsync_ptsz", p_cuMemcpyAsync_ptsz);
  CopyHtoDRows("cuMemcpyHtoD_v2", p_cuMemcpyHtoD_v2);
  CopyHtoDRows("cuMemcpyHtoD_v2_ptds", p_cuMemcpyHtoD_v2_ptds);
  CopyDtoHRows("cuMemcpyDtoH_v2", p_cuMemcpyDtoH_v2);
  CopyDtoHRows("cuMemcpyDtoH_v2_ptds", p_cuMemcpyDtoH_v2_ptds);
  CopyDDRows("cuMemcpyDtoD_v2", p_cuMemcpyDtoD_v2);
  CopyDDRows("cuMemcpyDtoD_v2_ptds", p_cuMemcpyDtoD_v2_ptds);
  CopyHtoDAsyncRows("cuMemcpyHtoDAsync_v2", p_cuMemcpyHtoDAsync_v2);
  CopyHtoDAsyncRows("cuMemcpyHtoDAsync_v2_ptsz", p_cuMemcpyHtoDAsync_v2_ptsz);
  CopyDtoHAsyncRows("cuMemcpyDtoHAsync_v2", p_cuMemcpyDtoHAsync_v2);
  CopyDtoHAsyncRows("cuMemcpyDtoHAsync_v2_ptsz", p_cuMemcpyDtoHAsync_v2_ptsz);
  CopyDDAsyncRows("cuMemcpyDtoDAsync_v2", p_cuMemcpyDtoDAsync_v2);
  CopyDDAsyncRows("cuMemcpyDtoDAsync_v2_ptsz", p_cuMemcpyDtoDAsync_v2_ptsz);
  MemsetRows("cuMemsetD8_v2", p_cuMemsetD8_v2, static_cast<unsigned char>(7), 1);
  MemsetRows("cuMemsetD8_v2_ptds", p_cuMemsetD8_v2_ptds, static_cast<unsigned char>(7), 1);
  MemsetRows("cuMemsetD16_v2", p_cuMemsetD16_v2, static_cast<unsigned short>(7), 2);
  MemsetRows("cuMemsetD16_v2_ptds", p_cuMemsetD16_v2_ptds, static_cast<unsigned short>(7), 2);
  MemsetRows("cuMemsetD32_v2", p_cuMemsetD32_v2, 7u, 4);
  MemsetRows("cuMemsetD32_v2_ptds", p_cuMemsetD32_v2_ptds, 7u, 4);
  MemsetAsyncRows("cuMemsetD8Async", p_cuMemsetD8Async, static_cast<unsigned char>(7), 1);
  MemsetAsyncRows("cuMemsetD8Async_ptsz", p_cuMemsetD8Async_ptsz, static_cast<unsigned char>(7), 1);
  MemsetAsyncRows("cuMemsetD16Async", p_cuMemsetD16Async, static_cast<unsigned short>(7), 2);
  MemsetAsyncRows("cuMemsetD16Async_ptsz", p_cuMemsetD16Async_ptsz, static_cast<unsigned short>(7), 2);
  MemsetAsyncRows("cuMemsetD32Async", p_cuMemsetD32Async, 7u, 4);
  MemsetAsyncRows("cuMemsetD32Async_ptsz", p_cuMemsetD32Async_ptsz, 7u, 4);
  Memset2DRows("cuMemsetD2D8_v2", p_cuMemsetD2D8_v2, static_cast<unsigned char>(7), 1);
  Memset2DRows("cuMemsetD2D8_v2_ptds", p_cuMemsetD2D8_v2_ptds, static_cast<unsigned char>(7), 1);
  Memset2DAsyncRows("cuMemsetD2D8Async", p_cuMemsetD2D8Async, static_cast<unsigned char>(7), 1);
  Memset2DAsyncRows("cuMemsetD2D8Async_ptsz", p_cuMemsetD2D8Async_ptsz, static_cast<unsigned char>(7), 1);
  Memset2DRows("cuMemsetD2D16_v2", p_cuMemsetD2D16_v2, static_cast<unsigned short>(7), 2);
  Memset2DRows("cuMemsetD2D16_v2_ptds", p_cuMemsetD2D16_v2_ptds, static_cast<unsigned short>(7), 2);
  Memset2DAsyncRows("cuMemsetD2D16Async", p_cuMemsetD2D16Async, static_cast<unsigned short>(7), 2);
  Memset2DAsyncRows("cuMemsetD2D16Async_ptsz", p_cuMemsetD2D16Async_ptsz, static_cast<unsigned short>(7), 2);
  Memset2DRows("cuMemsetD2D32_v2", p_cuMemsetD2D32_v2, 7u, 4);
  Memset2DRows("cuMemsetD2D32_v2_ptds", p_cuMemsetD2D32_v2_ptds, 7u, 4);
  Memset2DAsyncRows("cuMemsetD2D32Async", p_cuMemsetD2D32Async, 7u, 4);
  Memset2DAsyncRows("cuMemsetD2D32Async_ptsz", p_cuMemsetD2D32Async_ptsz, 7u, 4);
  Copy2DRows("cuMemcpy2D_v2", p_cuMemcpy2D_v2);
  Copy2DRows("cuMemcpy2D_v2_ptds", p_cuMemcpy2D_v2_ptds);
  Copy2DRows("cuMemcpy2DUnaligned_v2", p_cuMemcpy2DUnaligned_v2);
  Copy2DRows("cuMemcpy2DUnaligned_v2_ptds", p_cuMemcpy2DUnaligned_v2_ptds);
  Copy2DAsyncRows("cuMemcpy2DAsync_v2", p_cuMemcpy2DAsync_v2);
  Copy2DAsyncRows("cuMemcpy2DAsync_v2_ptsz", p_cuMemcpy2DAsync_v2_ptsz);
  CopyPeerRows("cuMemcpyPeer", p_cuMemcpyPeer);
  CopyPeerRows("cuMemcpyPeer_ptds", p_cuMemcpyPeer_ptds);
  CopyPeerAsyncRows("cuMemcpyPeerAsync", p_cuMemcpyPeerAsync);
  CopyPeerAsyncRows("cuMemcpyPeerAsync_ptsz", p_cuMemcpyPeerAsync_ptsz);
}

// ---- stream capture: every capture begun is ended at once (R.stream, which never captures else)
template <typename EndFn>
void EndAndDrop(EndFn end, CUresult begun) {
  if (begun != CUDA_SUCCESS || end == nullptr) return;
  CUgraph g = nullptr;
  if (end(R.stream, &g) == CUDA_SUCCESS && g != nullptr && p_cuGraphDestroy != nullptr) p_cuGraphDestroy(g);
}

void CaptureRows() {
  ROW(cuStreamBeginCapture, "legacy-stream") { const CUresult rc = p_cuStreamBeginCapture(nullptr); End(rc); }
  ROW(cuStreamBeginCapture, "valid") { const CUresult rc = p_cuStreamBeginCapture(R.stream); EndAndDrop(p_cuStreamEndCapture, rc); End(rc); }
  ROW(cuStreamBeginCapture_ptsz, "valid") { const CUresult rc = p_cuStreamBeginCapture_ptsz(R.stream); EndAndDrop(p_cuStreamEndCapture_ptsz, rc); End(rc); }
  ROW(cuStreamBeginCapture_v2, "legacy-stream") End(p_cuStreamBeginCapture_v2(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL));
  ROW(cuStreamBeginCapture_v2, "mode-bad") { const CUresult rc = p_cuStreamBeginCapture_v2(R.stream, static_cast<CUstreamCaptureMode>(77)); EndAndDrop(p_cuStreamEndCapture, rc); End(rc); }
  ROW(cuStreamBeginCapture_v2, "valid") { const CUresult rc = p_cuStreamBeginCapture_v2(R.stream, CU_STREAM_CAPTURE_MODE_GLOBAL); EndAndDrop(p_cuStreamEndCapture, rc); End(rc); }
  ROW(cuStreamBeginCapture_v2_ptsz, "valid") { const CUresult rc = p_cuStreamBeginCapture_v2_ptsz(R.stream, CU_STREAM_CAPTURE_MODE_RELAXED); EndAndDrop(p_cuStreamEndCapture_ptsz, rc); End(rc); }
  ROW(cuStreamBeginCaptureToGraph, "null-graph") { const CUresult rc = p_cuStreamBeginCaptureToGraph(R.stream, nullptr, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL); EndAndDrop(p_cuStreamEndCapture, rc); End(rc); }
  ROW(cuStreamBeginCaptureToGraph, "valid") {  // captures into a graph of its own: ending returns that one
    CUgraph g = nullptr;
    if (p_cuGraphCreate(&g, 0) != CUDA_SUCCESS) g = nullptr;
    const CUresult rc = p_cuStreamBeginCaptureToGraph(R.stream, g, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL);
    CUgraph ended = nullptr;
    if (rc == CUDA_SUCCESS && p_cuStreamEndCapture != nullptr) p_cuStreamEndCapture(R.stream, &ended);
    if (g != nullptr) p_cuGraphDestroy(g);
    End(rc);
  }
  ROW(cuStreamBeginCaptureToGraph_ptsz, "null-graph") { const CUresult rc = p_cuStreamBeginCaptureToGraph_ptsz(R.stream, nullptr, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL); EndAndDrop(p_cuStreamEndCapture_ptsz, rc); End(rc); }
  ROW(cuStreamEndCapture, "not-capturing") { CUgraph g = Filled<CUgraph>(); END(p_cuStreamEndCapture(R.stream, &g), O("graph", g)); }
  ROW(cuStreamEndCapture, "null-graph") End(p_cuStreamEndCapture(R.stream, nullptr));
  ROW(cuStreamEndCapture_ptsz, "not-capturing") { CUgraph g = Filled<CUgraph>(); END(p_cuStreamEndCapture_ptsz(R.stream, &g), O("graph", g)); }
}

// ---- NVML, when a libnvidia-ml.so.1 is there
void NvmlRows() {
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml == nullptr) {
    std::printf("# no libnvidia-ml.so.1: NVML rows skipped\n");
    return;
  }
  auto sym = [&](const char* name) { return dlsym(nvml, name); };
  auto init = reinterpret_cast<PFN_nvmlInit>(sym("nvmlInit_v2"));
  auto handle = reinterpret_cast<PFN_nvmlGetHandle>(sym("nvmlDeviceGetHandleByIndex_v2"));
  nvmlDevice_t dev = nullptr;
  if (init == nullptr || handle == nullptr || init() != 0 || handle(0, &dev) != 0) {
    std::printf("# NVML does not initialise: NVML rows skipped\n");
    return;
  }
  g_phase = "nvml";
  {
    const auto fn = reinterpret_cast<PFN_nvmlMemory>(sym("nvmlDeviceGetMemoryInfo"));
    if (Begin("nvmlDeviceGetMemoryInfo", reinterpret_cast<const void*>(fn), "null-memory")) EndNvml(fn(dev, nullptr));
    if (Begin("nvmlDeviceGetMemoryInfo", reinterpret_cast<const void*>(fn), "null-device")) { auto m = Filled<nvmlMemory_t>(); END_NVML(fn(nullptr, &m), O("memory", m)); }
    if (Begin("nvmlDeviceGetMemoryInfo", reinterpret_cast<const void*>(fn), "valid")) { auto m = Filled<nvmlMemory_t>(); END_NVML(fn(dev, &m), O("total", m.total), O("free", m.free)); }
  }
  {
    const auto fn = reinterpret_cast<PFN_nvmlMemory_v2>(sym("nvmlDeviceGetMemoryInfo_v2"));
    const void* f = reinterpret_cast<const void*>(fn);
    if (Begin("nvmlDeviceGetMemoryInfo_v2", f, "null-memory")) EndNvml(fn(dev, nullptr));
    if (Begin("nvmlDeviceGetMemoryInfo_v2", f, "version-bad")) { auto m = Filled<nvmlMemory_v2_t>(); m.version = 1; END_NVML(fn(dev, &m), O("total", m.total)); }
    if (Begin("nvmlDeviceGetMemoryInfo_v2", f, "null-device")) { auto m = Filled<nvmlMemory_v2_t>(); m.version = kNvmlMemoryV2; END_NVML(fn(nullptr, &m), O("total", m.total)); }
    if (Begin("nvmlDeviceGetMemoryInfo_v2", f, "valid")) { auto m = Filled<nvmlMemory_v2_t>(); m.version = kNvmlMemoryV2; END_NVML(fn(dev, &m), O("total", m.total), O("free", m.free)); }
  }
  auto list_rows = [&](const char* symbol, auto info) {
    using Info = decltype(info);
    using Fn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, Info*);
    const auto fn = reinterpret_cast<Fn>(sym(symbol));
    const void* f = reinterpret_cast<const void*>(fn);
    Info infos[64];
    if (Begin(symbol, f, "null-count")) EndNvml(fn(dev, nullptr, infos));
    if (Begin(symbol, f, "null-device")) { unsigned n = 64; END_NVML(fn(nullptr, &n, infos), V("count", n)); }
    if (Begin(symbol, f, "null-infos-count-0")) { unsigned n = 0; END_NVML(fn(dev, &n, nullptr), O("count", n)); }
    if (Begin(symbol, f, "valid")) { unsigned n = 64; END_NVML(fn(dev, &n, infos), O("count", n)); }
  };
  list_rows("nvmlDeviceGetComputeRunningProcesses", nvmlProcessInfo_v1_t{});
  list_rows("nvmlDeviceGetComputeRunningProcesses_v2", nvmlProcessInfo_v2_t{});
  list_rows("nvmlDeviceGetComputeRunningProcesses_v3", nvmlProcessInfo_v2_t{});
  list_rows("nvmlDeviceGetMPSComputeRunningProcesses", nvmlProcessInfo_v1_t{});
  list_rows("nvmlDeviceGetMPSComputeRunningProcesses_v2", nvmlProcessInfo_v2_t{});
  list_rows("nvmlDeviceGetMPSComputeRunningProcesses_v3", nvmlProcessInfo_v2_t{});
  {
    const auto fn = reinterpret_cast<PFN_nvmlDetailList>(sym("nvmlDeviceGetRunningProcessDetailList"));
    const void* f = reinterpret_cast<const void*>(fn);
    nvmlProcessDetail_v1_t details[64];
    if (Begin("nvmlDeviceGetRunningProcessDetailList", f, "null-list")) EndNvml(fn(dev, nullptr));
    if (Begin("nvmlDeviceGetRunningProcessDetailList", f, "version-bad")) {
      nvmlProcessDetailList_v1_t l{1, 0, 64, details};
      EndNvml(fn(dev, &l));
    }
    if (Begin("nvmlDeviceGetRunningProcessDetailList", f, "null-array-count-0")) {
      nvmlProcessDetailList_v1_t l{kNvmlProcessDetailListV1, 0, 0, nullptr};
      END_NVML(fn(dev, &l), O("count", l.numProcArrayEntries));
    }
    if (Begin("nvmlDeviceGetRunningProcessDetailList", f, "valid")) {
      nvmlProcessDetailList_v1_t l{kNvmlProcessDetailListV1, 0, 64, details};
      END_NVML(fn(dev, &l), O("count", l.numProcArrayEntries));
    }
  }
}

void AllRows(const char* phase) {
  g_phase = phase;
  DeviceRows();
  ProcAddressRows();
  ContextRows();
  AllocationRows();
  PoolAndVmmRows();
  ArrayRows();
  GraphRows();
  LaunchRows();
  StreamMemOpRows();
  CopyRows();
  CaptureRows();
  Settle();
}

// The ctx phase's handles; a failure is printed (as a comment) and leaves the handle null.
void MakeResources() {
  auto note = [](const char* what, CUresult rc) {
    if (rc != CUDA_SUCCESS) std::printf("# setup: %s -> %s\n", what, ErrorName(rc).c_str());
  };
  note("cuDeviceGet", p_cuDeviceGet(&R.dev, 0));
  note("cuDevicePrimaryCtxRetain", p_cuDevicePrimaryCtxRetain(&R.ctx, R.dev));
  note("cuCtxSetCurrent", p_cuCtxSetCurrent(R.ctx));
  note("cuStreamCreate", p_cuStreamCreate(&R.stream, CU_STREAM_NON_BLOCKING));
  note("cuMemAlloc", p_cuMemAlloc_v2(&R.dptr, kBytes));
  if (R.dptr != 0) note("cuMemsetD8", p_cuMemsetD8_v2(R.dptr, 0, kBytes));
  note("cuModuleLoadData", p_cuModuleLoadData(&R.module, kPtx));
  if (R.module != nullptr) {
    note("cuModuleGetFunction", p_cuModuleGetFunction(&R.func, R.module, "arg_table_noop"));
    note("cuModuleGetFunction", p_cuModuleGetFunction(&R.legacy, R.module, "arg_table_legacy"));
  }
  note("cuGraphCreate", p_cuGraphCreate(&R.graph, 0));
  if (R.graph != nullptr) note("cuGraphInstantiateWithFlags", p_cuGraphInstantiateWithFlags(&R.exec, R.graph, 0));
  note("cuDeviceGetDefaultMemPool", p_cuDeviceGetDefaultMemPool(&R.pool, R.dev));
  note("cuCtxSynchronize", p_cuCtxSynchronize());
}

void DropResources() {
  p_cuCtxSetCurrent(R.ctx);
  p_cuCtxSynchronize();
  if (R.exec != nullptr) p_cuGraphExecDestroy(R.exec);
  if (R.graph != nullptr) p_cuGraphDestroy(R.graph);
  if (R.module != nullptr) p_cuModuleUnload(R.module);
  if (R.dptr != 0) p_cuMemFree_v2(R.dptr);
  if (R.stream != nullptr) p_cuStreamDestroy_v2(R.stream);
  p_cuCtxSetCurrent(nullptr);
  p_cuDevicePrimaryCtxRelease_v2(R.dev);
  R = Resources{};
}

}  // namespace

int main(int argc, char** argv) {
  g_self = argv[0];
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--from=", 7) == 0) g_from = std::strtol(argv[i] + 7, nullptr, 10);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  InstallHandlers();
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (cuda == nullptr) {
    std::fprintf(stderr, "arg_table: cannot load libcuda.so.1: %s\n", dlerror());
    return 2;
  }
#define ARG_TABLE_RESOLVE(sym, pfn) p_##sym = reinterpret_cast<pfn>(dlsym(cuda, #sym));
  ARG_TABLE_SYMBOLS(ARG_TABLE_RESOLVE)
#undef ARG_TABLE_RESOLVE
  const bool can_run = p_cuInit != nullptr && p_cuDeviceGet != nullptr && p_cuCtxSetCurrent != nullptr &&
                       p_cuDevicePrimaryCtxRetain != nullptr && p_cuDevicePrimaryCtxRelease_v2 != nullptr &&
                       p_cuCtxSynchronize != nullptr && p_cuStreamCreate != nullptr && p_cuMemAlloc_v2 != nullptr &&
                       p_cuMemFree_v2 != nullptr && p_cuModuleLoadData != nullptr && p_cuModuleGetFunction != nullptr &&
                       p_cuGraphCreate != nullptr && p_cuGraphInstantiateWithFlags != nullptr &&
                       p_cuDeviceGetDefaultMemPool != nullptr && p_cuMemsetD8_v2 != nullptr &&
                       p_cuGraphExecDestroy != nullptr && p_cuGraphDestroy != nullptr && p_cuModuleUnload != nullptr &&
                       p_cuStreamDestroy_v2 != nullptr;
  if (!can_run) {
    std::fprintf(stderr, "arg_table: libcuda.so.1 lacks an entry point the table needs\n");
    return 2;
  }

  if (g_from == 0) {
    int version = 0;
    if (p_cuDriverGetVersion != nullptr) p_cuDriverGetVersion(&version);
    std::printf("# arg_table: driver API %d\n", version);
  }
  AllRows("noinit");
  if (p_cuInit(0) != CUDA_SUCCESS) {
    std::printf("# cuInit failed: no later phase\n");
    return 1;
  }
  AllRows("noctx");
  MakeResources();
  AllRows("ctx");
  p_cuCtxSetCurrent(nullptr);
  AllRows("popped");
  DropResources();
  NvmlRows();
  return 0;
}
