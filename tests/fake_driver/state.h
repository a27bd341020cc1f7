// SPDX-License-Identifier: Apache-2.0
// Shared internals of the fake CUDA driver: the one driver lock, devices, contexts, the map of
// device address ranges, physical-memory accounting, and the hooks each area (pools, VMM,
// arrays, graphs, modules/streams) exposes for context destruction and reset.
#pragma once
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "tests/fake_driver/fake_cuda_control.h"

#define FAKE_API extern "C" __attribute__((visibility("default")))

// Every entry point but the few that work before cuInit starts with this.
#define FAKE_ENTER()                                                          \
  std::lock_guard<std::recursive_mutex> fake_lock_(::fakecuda::drv().mu);     \
  if (!::fakecuda::drv().initialized) return CUDA_ERROR_NOT_INITIALIZED

#define FAKE_TRY(expr)                              \
  do {                                              \
    CUresult fake_rc_ = (expr);                     \
    if (fake_rc_ != CUDA_SUCCESS) return fake_rc_;  \
  } while (0)

namespace fakecuda {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGranularity = 2 * kMiB;  // VMM granularity and pool growth unit
inline constexpr int kDriverVersion = 13000;
// Requests above this fail with OUT_OF_MEMORY before any rounding can overflow.
inline constexpr uint64_t kMaxRequest = 1ull << 60;

inline uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

struct Pool;
struct Chunk;
struct VmmHandle;
struct GraphAlloc;

struct Context {
  int device = 0;
  bool primary = false;
  bool alive = false;  // created contexts: until destroyed; primary: while retained
  unsigned flags = 0;
  int refcount = 0;    // primary only
  // A kernel touched memory that is not mapped: the context is lost (CUDA_ERROR_ILLEGAL_ADDRESS
  // from every later launch and synchronization), as on a GPU.
  CUresult sticky = CUDA_SUCCESS;
};

enum class RangeKind { kAlloc, kManaged, kPoolBlock, kGraphAlloc, kVmmMapping };

// One user-visible span of device addresses.
struct Range {
  uintptr_t base = 0;
  size_t size = 0;
  RangeKind kind = RangeKind::kAlloc;
  Context* ctx = nullptr;  // owner; null for VMM mappings
  int device = 0;
  int prot = 0;            // PROT_* currently granted to host code
  Pool* pool = nullptr;    // kPoolBlock
  Chunk* chunk = nullptr;  // kPoolBlock
  VmmHandle* handle = nullptr;             // kVmmMapping
  std::shared_ptr<GraphAlloc> graph;       // kGraphAlloc
};

struct Device {
  uint64_t total = 0;
  CUuuid uuid{};
  Context* primary = nullptr;
  Pool* default_pool = nullptr;
  Pool* current_pool = nullptr;
};

struct Driver {
  std::recursive_mutex mu;  // recursive: kernels run under it and may call back into the driver
  bool initialized = false;
  std::vector<Device> devices;
  uint64_t ctx_overhead = 0;
  // A context's creation takes this long, its memory already in use (GPUSHARE_FAKE_CTX_CREATE_MS).
  unsigned ctx_create_ms = 0;
  std::vector<std::unique_ptr<Context>> contexts;  // every context ever made; never shrinks, so
                                                   // stale handles never alias new ones
  std::map<uintptr_t, Range> ranges;               // keyed by base
};

Driver& drv();

// ---- devices / contexts (device.cpp, context.cpp)
bool valid_device(CUdevice dev);
bool known_context(CUcontext ctx);
// The calling thread's current context: INVALID_CONTEXT if none, CONTEXT_IS_DESTROYED if the
// current one is dead.
CUresult current_context(Context** out);
CUresult create_context(int device, unsigned flags, Context** out);
// A context's own memory, charged as its creation starts; the creation then takes
// ctx_create_ms, and only then does NVML list the process.
CUresult charge_context_creation(int device);
void destroy_context_resources(Context* ctx);
void contexts_reset();

// ---- physical accounting (physical.cpp); false from charge means out of memory
CUresult phys_init(const std::vector<uint64_t>& totals, const char* state_dir);
void phys_shutdown();
bool phys_charge(int device, uint64_t bytes);
void phys_release(int device, uint64_t bytes);
// A context of this process finished its creation (created) or was destroyed: NVML lists a
// process while it has one (the shared file's Slot.contexts).
void phys_note_context(int device, bool created);
uint64_t phys_used_all(int device);
uint64_t phys_used_process(int device);

// ---- address space (memory.cpp)
// Anonymous, unbacked-until-touched mapping aligned to `align`; nullptr on failure.
void* map_region(size_t size, size_t align, int prot);
Range* find_range(uintptr_t addr);              // range containing addr
Range* find_range_base(uintptr_t base);         // range starting exactly at base
// True when [addr, addr+n) lies in contiguous ranges that all grant `prot`.
bool range_accessible(uintptr_t addr, size_t n, int prot);
// Frees a cuMemAlloc / cuMemAllocManaged range (kAlloc, kManaged) starting at base.
void free_linear(uintptr_t base);
void memory_release_context(Context* ctx);
void memory_reset();
int memory_live_count();
void host_reset();  // pointer.cpp

// ---- pools (pool.cpp)
void pools_init();
CUresult pool_alloc(Pool* pool, size_t size, Context* ctx, CUdeviceptr* out);
void pool_free_block(Range& r);
void pools_on_synchronize(int device);
void pool_release_context(Context* ctx);
void pools_reset();
bool pool_known(CUmemoryPool pool);

// ---- VMM (vmm.cpp), arrays (array.cpp), graphs (graph.cpp), modules/streams (module.cpp)
void vmm_reset();
int vmm_live_count();
void array_release_context(Context* ctx);
void array_reset();
int array_live_count();
void graph_free_alloc(Range& r);
void graph_release_context(Context* ctx);
void graph_reset();
uint64_t graph_mem(int device, bool reserved);  // reserved (charged) or used (live) bytes
void module_release_context(Context* ctx);
void module_reset();

// ---- functions (module.cpp), their attributes and occupancy (function.cpp), as on the H100
inline constexpr unsigned kDefaultSharedBytes = 48 * 1024;
inline constexpr unsigned kMaxSharedBytesOptIn = 227 * 1024;
struct Function {
  fakecuda_kernel fn = nullptr;
  unsigned max_dynamic_shared = kDefaultSharedBytes;
  bool non_portable_clusters = false;
  // CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH/HEIGHT/DEPTH: all 0 (none) or all positive.
  unsigned required_cluster[3] = {0, 0, 0};
  // What the pre-4.0 launches (cuLaunch, cuLaunchGrid[Async]) use: cuFuncSetBlockShape's block
  // (none set: 0, which a launch refuses), cuFuncSetSharedSize, and the parameter buffer of
  // cuParamSetSize / cuParamSet{i,f,v} with the offsets set, in order, as the kernel's arguments.
  unsigned legacy_block[3] = {0, 0, 0};
  unsigned legacy_shared = 0;
  std::vector<unsigned char> legacy_params;
  std::map<unsigned, unsigned> legacy_arg_bytes;  // offset -> size of each argument set
};
Function* find_function(CUfunction f);
// Blocks of `threads` threads and `shared_bytes` of dynamic shared memory that fit one SM.
int blocks_per_sm(const Function& fn, unsigned threads, size_t shared_bytes);
// A launch's cluster: `asked` (the config's CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, or null), else
// the function's required one. *clustered is false when neither is set; INVALID_CLUSTER_SIZE
// when they disagree or the size is 0 or above the limit (8; 16 with the non-portable attribute).
CUresult cluster_of(const Function& fn, const unsigned* asked, unsigned out[3], bool* clustered);
void stream_release_context(Context* ctx);
void stream_reset();
// Marks every open capture of the context's streams invalidated; true if there was one.
bool stream_invalidate_captures(Context* ctx);
// Context of a stream handle (0 / legacy / per-thread resolve to the current context).
CUresult stream_context(CUstream stream, Context** out);
// Events not destroyed, and calls that named a destroyed event or recorded one on another
// context's stream (fakecuda_bad_event_calls).
int stream_live_event_count();
uint64_t stream_bad_event_calls();
// Runs a kernel on the SMs `mask` leaves enabled; CUDA_ERROR_LAUNCH_TIMEOUT when it leaves none
// (a GPU would hang).
struct LaunchMask {
  bool masked = false;  // the descriptor's valid bit was set (in a layout that has the mask)
  uint32_t disable[4] = {};
};
// A kernel launch on `stream` as cuLaunchKernel/cuLaunchCooperativeKernel/cuLaunchKernelEx do it
// (module.cpp): validation, the launch callback, then the kernel, synchronously.
CUresult launch_on_stream(CUfunction f, const unsigned grid[3], const unsigned block[3],
                          unsigned shared_bytes, CUstream stream, void** params, bool cooperative = false,
                          const unsigned asked_cluster[3] = nullptr);
CUresult launch_function(CUfunction f, const unsigned grid[3], const unsigned block[3],
                         unsigned shared_bytes, void** params, const LaunchMask& mask,
                         const unsigned cluster[3] = nullptr);

// ---- the launch callback and descriptors, the SM map (launch_callback.cpp)
const void* launch_callback_table(const CUuuid* id);  // nullptr for another id
void launch_config_init();
unsigned fake_sm_count();
// The GPC of an SM; kUnclustered for SMs that never run blocks of a cluster.
inline constexpr unsigned kUnclustered = 0xFE;
unsigned fake_gpc_of_sm(unsigned sm);
// Builds a launch descriptor and passes it through the subscribed callback, if any.
LaunchMask fire_launch_callback();
std::vector<unsigned> enabled_sms(const LaunchMask& mask);
void note_launch(const LaunchMask& mask, unsigned sms);
void launch_reset();
CUresult check_launch(CUfunction f, const unsigned grid[3], const unsigned block[3]);

}  // namespace fakecuda
