// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/tpc_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <bitset>
#include <iterator>
#include <vector>

#include "sm_partition/launch_descriptor.h"
#include "sm_partition/launch_mask.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::sm {

// PTX ISA 7.0 for sm_70 and later: the driver JIT-compiles it for the GPU at hand.
const char kSmidBitmapPtx[] = R"(
.version 7.0
.target sm_70
.address_size 64
.visible .entry gpushare_smid_bitmap(.param .u64 bitmap, .param .u64 spin)
{
  .reg .pred %p<4>;
  .reg .b32 %r<8>;
  .reg .b64 %rd<9>;
  ld.param.u64 %rd1, [bitmap];
  ld.param.u64 %rd2, [spin];
  mov.u32 %r1, %tid.x;
  setp.ne.u32 %p1, %r1, 0;
  @%p1 bra $L_spin;
  mov.u32 %r2, %smid;
  setp.ge.u32 %p3, %r2, 512;
  @%p3 bra $L_spin;
  shr.u32 %r3, %r2, 5;
  and.b32 %r4, %r2, 31;
  mov.u32 %r5, 1;
  shl.b32 %r6, %r5, %r4;
  cvta.to.global.u64 %rd3, %rd1;
  mul.wide.u32 %rd4, %r3, 4;
  add.s64 %rd5, %rd3, %rd4;
  atom.global.or.b32 %r7, [%rd5], %r6;
$L_spin:
  mov.u64 %rd6, %clock64;
$L_loop:
  mov.u64 %rd7, %clock64;
  sub.s64 %rd8, %rd7, %rd6;
  setp.lt.u64 %p2, %rd8, %rd2;
  @%p2 bra $L_loop;
  ret;
}
)";

// PTX ISA 7.8 for sm_90 (thread block clusters): thread 0 of each block writes %smid to
// out[%ctaid.x], then spins a pseudo-random time per cluster (seeded), so that clusters finish
// out of order and later ones land on other SMs.
const char kSmidClusterPtx[] = R"(
.version 7.8
.target sm_90
.address_size 64
.extern .shared .align 16 .b8 gpushare_cluster_smem[];
.visible .entry gpushare_smid_cluster(.param .u64 out, .param .u64 seed)
{
  .reg .pred %p<3>;
  .reg .b32 %r<10>;
  .reg .b64 %rd<10>;
  ld.param.u64 %rd1, [out];
  ld.param.u64 %rd2, [seed];
  mov.u32 %r1, %tid.x;
  setp.ne.u32 %p1, %r1, 0;
  @%p1 bra $L_end;
  mov.u32 %r2, %smid;
  mov.u32 %r3, %ctaid.x;
  cvta.to.global.u64 %rd3, %rd1;
  mul.wide.u32 %rd4, %r3, 4;
  add.s64 %rd5, %rd3, %rd4;
  st.global.u32 [%rd5], %r2;
  mov.u32 %r4, %clusterid.x;
  cvt.u32.u64 %r5, %rd2;
  add.u32 %r6, %r4, %r5;
  mul.lo.u32 %r7, %r6, 0x9E3779B1;
  shr.u32 %r8, %r7, 20;
  mul.wide.u32 %rd6, %r8, 16;
  mov.u64 %rd7, %clock64;
$L_loop:
  mov.u64 %rd8, %clock64;
  sub.s64 %rd9, %rd8, %rd7;
  setp.lt.u64 %p2, %rd9, %rd6;
  @%p2 bra $L_loop;
$L_end:
  ret;
}
)";

namespace {

using SmSet = std::bitset<size_t{kSmidBitmapWords} * 32>;
// More one-warp blocks per SM than an SM can hold at once: the first wave then fills every SM,
// however the scheduler spreads blocks. (Suspected when the sweep failed under MPS; that failure
// had another cause, see MeasureTpcMap, but the bound holds for any scheduler.)
constexpr unsigned kExtraBlocksPerSm = 8;
constexpr unsigned kFallbackBlocksPerSm = 40;  // when the driver does not say (Hopper holds 32)
constexpr uint64_t kSpinCycles = 20000;     // ~10 us at 2 GHz, so every SM gets blocks
constexpr int kAttempts = 3;

// A private context for the sweep, made current on this thread and undone on every exit.
class SweepContext {
 public:
  explicit SweepContext(CUdevice device) {
    const RealDriver& r = Real();
    r.cuCtxGetCurrent(&saved_);
    rc_ = r.cuCtxCreate_v2(&ctx_, 0, device);
    if (rc_ == CUDA_SUCCESS) rc_ = r.cuModuleLoadData(&module_, kSmidBitmapPtx);
    if (rc_ == CUDA_SUCCESS) rc_ = r.cuModuleGetFunction(&fn_, module_, kSmidBitmapKernel);
    if (rc_ == CUDA_SUCCESS) rc_ = r.cuMemAlloc_v2(&bitmap_, kSmidBitmapWords * sizeof(uint32_t));
  }
  ~SweepContext() {
    const RealDriver& r = Real();
    ClearSweepMask();
    if (cluster_out_ != 0) r.cuMemFree_v2(cluster_out_);
    if (cluster_module_ != nullptr) r.cuModuleUnload(cluster_module_);
    if (bitmap_ != 0) r.cuMemFree_v2(bitmap_);
    if (module_ != nullptr) r.cuModuleUnload(module_);
    if (ctx_ != nullptr) r.cuCtxDestroy_v2(ctx_);
    r.cuCtxSetCurrent(saved_);
  }
  SweepContext(const SweepContext&) = delete;
  SweepContext& operator=(const SweepContext&) = delete;
  CUresult status() const { return rc_; }

  // The SMs that ran blocks with `disabled` mask bits off.
  CUresult Run(const TpcMask& disabled, unsigned blocks, SmSet* seen) {
    const RealDriver& r = Real();
    SetSweepMask(disabled);
    uint64_t spin = kSpinCycles;
    void* args[] = {&bitmap_, &spin};
    uint32_t words[kSmidBitmapWords] = {};
    CUresult rc = r.cuMemsetD32_v2(bitmap_, 0, kSmidBitmapWords);
    if (rc == CUDA_SUCCESS) rc = r.cuLaunchKernel(fn_, blocks, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr);
    if (rc == CUDA_SUCCESS) rc = r.cuCtxSynchronize();
    if (rc == CUDA_SUCCESS) rc = r.cuMemcpyDtoH_v2(words, bitmap_, sizeof words);
    seen->reset();
    for (unsigned i = 0; i < kSmidBitmapWords * 32; ++i)
      if ((words[i / 32] >> (i % 32)) & 1u) seen->set(i);
    return rc;
  }

  // Loads the cluster kernel and sizes its blocks to one per SM (more than half an SM's shared
  // memory each); fails on GPUs without thread block clusters.
  CUresult PrepareClusters(CUdevice device, unsigned blocks) {
    const RealDriver& r = Real();
    int clusters = 0, per_sm = 0, per_block = 0;
    CUresult rc = r.cuDeviceGetAttribute(&clusters, CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, device);
    if (rc == CUDA_SUCCESS && clusters == 0) rc = CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS)
      rc = r.cuDeviceGetAttribute(&per_sm, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, device);
    if (rc == CUDA_SUCCESS)
      rc = r.cuDeviceGetAttribute(&per_block, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device);
    if (rc == CUDA_SUCCESS) {
      cluster_smem_ = static_cast<unsigned>(per_sm / 2 + 1024);
      if (per_sm <= 0 || per_block < static_cast<int>(cluster_smem_)) rc = CUDA_ERROR_NOT_SUPPORTED;
    }
    if (rc == CUDA_SUCCESS) rc = r.cuModuleLoadData(&cluster_module_, kSmidClusterPtx);
    if (rc == CUDA_SUCCESS) rc = r.cuModuleGetFunction(&cluster_fn_, cluster_module_, kSmidClusterKernel);
    if (rc == CUDA_SUCCESS)
      rc = r.cuFuncSetAttribute(cluster_fn_, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                static_cast<int>(cluster_smem_));
    // Clusters of 16 are not portable; without them the smaller sizes still find the GPCs.
    if (rc == CUDA_SUCCESS)
      non_portable_ = r.cuFuncSetAttribute(cluster_fn_, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1) ==
                      CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS) rc = r.cuMemAlloc_v2(&cluster_out_, blocks * sizeof(uint32_t));
    return rc;
  }
  bool non_portable() const { return non_portable_; }

  // The SM of each block of `blocks` in clusters of `cluster` (consecutive blocks).
  CUresult RunClusters(unsigned blocks, unsigned cluster, uint64_t seed, std::vector<uint32_t>* sms) {
    const RealDriver& r = Real();
    ClearSweepMask();
    CUlaunchAttribute attrs[2] = {};
    attrs[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attrs[0].value.clusterDim.x = cluster;
    attrs[0].value.clusterDim.y = 1;
    attrs[0].value.clusterDim.z = 1;
    attrs[1].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE;
    attrs[1].value.clusterSchedulingPolicyPreference = CU_CLUSTER_SCHEDULING_POLICY_SPREAD;
    CUlaunchConfig config = {};
    config.gridDimX = blocks;
    config.gridDimY = config.gridDimZ = 1;
    config.blockDimX = 32;
    config.blockDimY = config.blockDimZ = 1;
    config.sharedMemBytes = cluster_smem_;
    config.attrs = attrs;
    config.numAttrs = 2;
    void* args[] = {&cluster_out_, &seed};
    sms->assign(blocks, 0);
    CUresult rc = r.cuLaunchKernelEx(&config, cluster_fn_, args, nullptr);
    if (rc == CUDA_SUCCESS) rc = r.cuCtxSynchronize();
    if (rc == CUDA_SUCCESS) rc = r.cuMemcpyDtoH_v2(sms->data(), cluster_out_, blocks * sizeof(uint32_t));
    return rc;
  }

 private:
  CUcontext saved_ = nullptr;
  CUcontext ctx_ = nullptr;
  CUmodule module_ = nullptr;
  CUfunction fn_ = nullptr;
  CUdeviceptr bitmap_ = 0;
  CUmodule cluster_module_ = nullptr;
  CUfunction cluster_fn_ = nullptr;
  CUdeviceptr cluster_out_ = 0;
  unsigned cluster_smem_ = 0;
  bool non_portable_ = false;
  CUresult rc_ = CUDA_SUCCESS;
};

std::string DriverError(const char* what, CUresult rc) { return fmt::format("{} failed ({})", what, static_cast<int>(rc)); }

// Cluster sizes, taken in turn: one size alone leaves SMs of some GPCs idle in every launch (a
// GPC of 18 SMs holds two clusters of 8, and the hardware tends to pick the same SMs), and mixed
// sizes overlap, which joins a GPC's groups. 16 only where non-portable clusters are allowed.
constexpr unsigned kClusterSizes[] = {16, 8, 6, 4};
constexpr unsigned kWaves = 4;  // clusters per launch: this many times what fits at once
constexpr int kMinClusterRuns = 8;
constexpr int kMaxClusterRuns = 48;
constexpr int kQuietRuns = 8;  // runs that joined and reached nothing new before the grouping is final

// Union-find over SM ids.
class SmGroups {
 public:
  SmGroups() {
    for (unsigned i = 0; i < kSms; ++i) parent_[i] = static_cast<uint16_t>(i);
  }
  unsigned Find(unsigned x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  bool Join(unsigned a, unsigned b) {
    a = Find(a);
    b = Find(b);
    if (a == b) return false;
    parent_[std::max(a, b)] = static_cast<uint16_t>(std::min(a, b));
    return true;
  }

 private:
  static constexpr unsigned kSms = kSmidBitmapWords * 32;
  uint16_t parent_[kSms];
};

// The GPC of each live bit. The hardware places all blocks of a thread block cluster in one GPC,
// so SMs that ever ran blocks of one cluster share a GPC, and so do a TPC's SMs; cluster
// launches are repeated until several in a row join nothing new. TPCs that never ran a cluster
// block are marked unclustered. False (GPCs stay unknown) on GPUs without clusters.
bool MeasureGpcs(SweepContext& ctx, CUdevice device, const SmSet& all, const SmSet* bit_sms,
                 TpcMap* map, std::string* why) {
  const unsigned most_blocks = static_cast<unsigned>(all.count()) * kWaves + 16;
  if (CUresult rc = ctx.PrepareClusters(device, most_blocks); rc != CUDA_SUCCESS) {
    *why = DriverError("setting up the cluster kernel", rc);
    return false;
  }
  SmGroups groups;
  for (unsigned b = 0; b < kTpcBits; ++b) {
    int first = -1;
    for (unsigned sm = 0; sm < all.size(); ++sm) {
      if (!bit_sms[b].test(sm)) continue;
      if (first < 0) first = static_cast<int>(sm);
      groups.Join(static_cast<unsigned>(first), sm);
    }
  }
  SmSet touched;
  std::vector<uint32_t> sms;
  int quiet = 0;
  for (int run = 0; run < kMaxClusterRuns && (run < kMinClusterRuns || quiet < kQuietRuns); ++run) {
    const unsigned size = kClusterSizes[static_cast<unsigned>(run) % std::size(kClusterSizes)];
    if (size > 8 && !ctx.non_portable()) continue;
    const unsigned blocks = std::max(1u, static_cast<unsigned>(all.count()) / size) * kWaves * size;
    if (CUresult rc = ctx.RunClusters(blocks, size, static_cast<uint64_t>(run) + 1, &sms); rc != CUDA_SUCCESS) {
      *why = fmt::format("the cluster kernel (clusters of {}) failed ({})", size, static_cast<int>(rc));
      return false;
    }
    bool news = false;
    for (unsigned i = 0; i < blocks; ++i) {
      if (sms[i] >= all.size() || !all.test(sms[i])) {
        *why = fmt::format("a cluster block reported SM {}, which the map does not hold", sms[i]);
        return false;
      }
      news = !touched.test(sms[i]) || news;
      touched.set(sms[i]);
      if (i % size != 0) news = groups.Join(sms[i - i % size], sms[i]) || news;
    }
    quiet = news ? 0 : quiet + 1;
  }
  if (!touched.any()) {
    *why = "no cluster block ran";
    return false;
  }
  uint8_t gpc_of_root[kSmidBitmapWords * 32];
  std::fill(std::begin(gpc_of_root), std::end(gpc_of_root), kGpcUnknown);
  unsigned gpcs = 0;
  for (unsigned b = 0; b < kTpcBits; ++b) {
    if (!map->live.Test(b)) continue;
    // A TPC whose SMs never ran a cluster block: its GPC cannot be told (clusters skip it).
    if (!(bit_sms[b] & touched).any()) {
      map->gpc_of_bit[b] = kGpcUnclustered;
      continue;
    }
    unsigned sm = 0;
    while (!bit_sms[b].test(sm)) ++sm;
    const unsigned root = groups.Find(sm);
    if (gpc_of_root[root] == kGpcUnknown) {
      if (gpcs >= kGpcUnclustered) {
        *why = "more groups than GPC numbers";
        return false;
      }
      gpc_of_root[root] = static_cast<uint8_t>(gpcs++);
    }
    map->gpc_of_bit[b] = gpc_of_root[root];
  }
  return true;
}

// One full sweep; false with *error when a run failed or the result is not a partition of the SMs.
bool SweepOnce(SweepContext& ctx, CUdevice device, uint32_t sm_count, TpcMap* map, std::string* error) {
  int resident = 0;
  const unsigned per_sm =
      Real().cuDeviceGetAttribute(&resident, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, device) == CUDA_SUCCESS &&
              resident > 0 && resident <= 64
          ? static_cast<unsigned>(resident) + kExtraBlocksPerSm
          : kFallbackBlocksPerSm;
  const unsigned blocks = sm_count * per_sm;
  SmSet all;
  if (CUresult rc = ctx.Run(TpcMask{}, blocks, &all); rc != CUDA_SUCCESS) {
    *error = DriverError("the mapping kernel", rc);
    return false;
  }
  map->qmd_version = LastDescriptorVersion();
  if (map->qmd_version != qmd::kVersionHopper) {
    *error = fmt::format("the launch descriptor has version byte {:#x}; gpushare writes only "
                         "{:#x} (Hopper QMD V04_00)", map->qmd_version, qmd::kVersionHopper);
    return false;
  }
  if (all.count() != sm_count) {
    *error = fmt::format("the mapping kernel reached {} of {} SMs", all.count(), sm_count);
    return false;
  }
  SmSet claimed;
  std::vector<SmSet> bit_sms(kTpcBits);
  for (unsigned b = 0; b < kTpcBits; ++b) {
    TpcMask off;
    off.Set(b);
    SmSet seen;
    if (CUresult rc = ctx.Run(off, blocks, &seen); rc != CUDA_SUCCESS) {
      *error = DriverError("the mapping kernel", rc);
      return false;
    }
    const SmSet missing = all & ~seen;
    if ((seen & ~all).any() || (missing & claimed).any()) {
      *error = fmt::format("bit {}: SMs appeared or went missing twice (blocks did not reach every SM; "
                           "{} new, {} missing, {} of them missing before)",
                           b, (seen & ~all).count(), missing.count(), (missing & claimed).count());
      return false;
    }
    claimed |= missing;
    bit_sms[b] = missing;
    map->sms_per_bit[b] = static_cast<uint8_t>(missing.count());
    if (missing.any()) map->live.Set(b);
  }
  map->sm_count = sm_count;
  if (std::string why = map->Check(); !why.empty()) {
    *error = why;
    return false;
  }
  // Without GPCs slices still work (in bit order): a failure here is told, not fatal.
  if (std::string why; !MeasureGpcs(ctx, device, all, bit_sms.data(), map, &why)) {
    std::fill(std::begin(map->gpc_of_bit), std::end(map->gpc_of_bit), kGpcUnknown);
    GS_LOG_INFO("gpushare: the GPCs of device {} are unknown ({}): slices are taken in TPC bit order", device, why);
  }
  return true;
}

}  // namespace

bool MeasureTpcMap(CUdevice device, TpcMap* out, std::string* error) {
  const RealDriver& r = Real();
  int sm_count = 0;
  if (CUresult rc = r.cuDeviceGetAttribute(&sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
      rc != CUDA_SUCCESS || sm_count <= 0 || sm_count > static_cast<int>(kSmidBitmapWords * 32)) {
    *error = fmt::format("cannot read the SM count ({}, {})", static_cast<int>(rc), sm_count);
    return false;
  }
  // Measured on the H100 (driver 580.159.04): under MPS, disabling one bit hid the SMs of the bit
  // swept before it, whatever the grid or function, so the sweep cannot tell TPCs apart there.
  // Masks made without MPS confine MPS clients exactly; only the measuring needs it off.
  if (int mps = 0; r.cuDeviceGetAttribute(&mps, CU_DEVICE_ATTRIBUTE_MPS_ENABLED, device) == CUDA_SUCCESS && mps != 0) {
    *error = "the GPU's TPC map cannot be measured under MPS, and this ledger has none yet: start one "
             "process with GPUSHARE_SM before the MPS daemon (the map is kept in the ledger; see README, "
             "Spatial sharing)";
    return false;
  }
  SweepContext ctx(device);
  if (ctx.status() != CUDA_SUCCESS) {
    *error = DriverError("setting up the mapping kernel", ctx.status());
    return false;
  }
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    TpcMap map;
    r.cuDriverGetVersion(&map.driver_version);
    if (SweepOnce(ctx, device, static_cast<uint32_t>(sm_count), &map, error)) {
      *out = map;
      return true;
    }
    if (map.qmd_version != 0 && map.qmd_version != qmd::kVersionHopper) return false;
    GS_LOG_INFO("gpushare: mapping the TPC mask, attempt {}: {}", attempt, *error);
  }
  return false;
}

}  // namespace gpushare::sm
