#include "sm_partition/tpc_map.h"

#include <fmt/format.h>

#include <bitset>

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

namespace {

using SmSet = std::bitset<size_t{kSmidBitmapWords} * 32>;
constexpr unsigned kBlocksPerSm = 16;       // one wave: 16 one-warp blocks fit any SM
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

 private:
  CUcontext saved_ = nullptr;
  CUcontext ctx_ = nullptr;
  CUmodule module_ = nullptr;
  CUfunction fn_ = nullptr;
  CUdeviceptr bitmap_ = 0;
  CUresult rc_ = CUDA_SUCCESS;
};

std::string DriverError(const char* what, CUresult rc) { return fmt::format("{} failed ({})", what, static_cast<int>(rc)); }

// One full sweep; false with *error when a run failed or the result is not a partition of the SMs.
bool SweepOnce(SweepContext& ctx, uint32_t sm_count, TpcMap* map, std::string* error) {
  const unsigned blocks = sm_count * kBlocksPerSm;
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
      *error = fmt::format("bit {}: SMs appeared or went missing twice (blocks did not reach every SM)", b);
      return false;
    }
    claimed |= missing;
    map->sms_per_bit[b] = static_cast<uint8_t>(missing.count());
    if (missing.any()) map->live.Set(b);
  }
  map->sm_count = sm_count;
  if (std::string why = map->Check(); !why.empty()) {
    *error = why;
    return false;
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
  SweepContext ctx(device);
  if (ctx.status() != CUDA_SUCCESS) {
    *error = DriverError("setting up the mapping kernel", ctx.status());
    return false;
  }
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    TpcMap map;
    r.cuDriverGetVersion(&map.driver_version);
    if (SweepOnce(ctx, static_cast<uint32_t>(sm_count), &map, error)) {
      *out = map;
      return true;
    }
    if (map.qmd_version != 0 && map.qmd_version != qmd::kVersionHopper) return false;
    GS_LOG_INFO("gpushare: mapping the TPC mask, attempt {}: {}", attempt, *error);
  }
  return false;
}

}  // namespace gpushare::sm
