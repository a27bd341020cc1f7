// SPDX-License-Identifier: Apache-2.0
// A program that makes its own green context, as PyTorch's green-context API and TensorRT-LLM
// do: device and context SM resources, a split by count, a descriptor, cuGreenCtxCreate, then a
// kernel on a green stream and on the green context's default stream that records %smid.
//   g++ -std=c++17 -I/usr/local/cuda/include green_ctx.cpp -o green_ctx -lcuda
//   green_ctx [MIN_SMS]     (default 8: the smallest partition)
// GREEN_SUBSCRIBE=1 subscribes a no-op launch callback (the export table gpushare's SM
// partitions use: sm_partition/launch_descriptor.h) before the green context is made, and
// GREEN_SUBSCRIBE=2 also enables it, to tell the callback apart from gpushare's other hooks.
// Prints `key value` lines and a last line `SUMMARY ok=0|1 ...`; exit 0 iff the green context
// was made and its kernels ran on at most its SMs.
#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

namespace {

const char* kPtx = R"(
.version 8.0
.target sm_90
.address_size 64
.visible .entry record_smid(.param .u64 out) {
  .reg .u32 %r<3>;
  .reg .u64 %rd<4>;
  ld.param.u64 %rd1, [out];
  cvta.to.global.u64 %rd1, %rd1;
  mov.u32 %r1, %smid;
  mul.wide.u32 %rd2, %r1, 4;
  add.u64 %rd3, %rd1, %rd2;
  mov.u32 %r2, 1;
  st.global.u32 [%rd3], %r2;
  ret;
}
)";

const char* Name(CUresult rc) {
  const char* s = nullptr;
  cuGetErrorName(rc, &s);
  return s != nullptr ? s : "?";
}

#define CHECK(call)                                                                     \
  do {                                                                                  \
    const CUresult rc_ = (call);                                                        \
    std::printf("%-40s %s\n", #call, Name(rc_));                                        \
    if (rc_ != CUDA_SUCCESS) {                                                          \
      std::printf("SUMMARY ok=0 failed=%s rc=%s\n", #call, Name(rc_));                  \
      return 1;                                                                         \
    }                                                                                   \
  } while (0)

constexpr int kMaxSm = 1024;

void NoopCallback(void*, uint32_t, uint32_t, const void*) {}

// The driver's callback table (the one CUPTI uses): slot 3 subscribes, slot 6 enables.
void SubscribeLaunchCallback(int how) {
  static const CUuuid kId = {{0x2c, static_cast<char>(0x8e), 0x0a, static_cast<char>(0xd8), 0x07, 0x10,
                              static_cast<char>(0xab), 0x4e, static_cast<char>(0x90), static_cast<char>(0xdd),
                              0x54, 0x71, static_cast<char>(0x9f), static_cast<char>(0xe5),
                              static_cast<char>(0xf7), 0x4b}};
  const void* table = nullptr;
  const CUresult rc = cuGetExportTable(&table, &kId);
  std::printf("export_table %s\n", Name(rc));
  if (rc != CUDA_SUCCESS || table == nullptr) return;
  auto slots = static_cast<void* const*>(table);
  using Subscribe = int (*)(void**, void (*)(void*, uint32_t, uint32_t, const void*), void*);
  using Enable = int (*)(uint32_t, void*, uint32_t, uint32_t);
  void* handle = nullptr;
  std::printf("subscribe %d\n", reinterpret_cast<Subscribe>(slots[3])(&handle, NoopCallback, nullptr));
  if (how >= 2) std::printf("enable %d\n", reinterpret_cast<Enable>(slots[6])(1, handle, 0xb, 0x1));
}

// Launches record_smid on `stream` with many blocks and returns the distinct SMs it ran on.
int DistinctSms(CUfunction f, CUstream stream, int blocks) {
  CUdeviceptr out = 0;
  if (cuMemAlloc(&out, kMaxSm * sizeof(unsigned)) != CUDA_SUCCESS) return -1;
  cuMemsetD32(out, 0, kMaxSm);
  void* params[] = {&out};
  const CUresult rc = cuLaunchKernel(f, blocks, 1, 1, 32, 1, 1, 0, stream, params, nullptr);
  if (rc != CUDA_SUCCESS) {
    std::printf("launch %s\n", Name(rc));
    return -1;
  }
  cuStreamSynchronize(stream);
  std::vector<unsigned> seen(kMaxSm);
  cuMemcpyDtoH(seen.data(), out, kMaxSm * sizeof(unsigned));
  cuMemFree(out);
  int n = 0;
  for (unsigned v : seen) n += v != 0;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned min_sms = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 8;
  CHECK(cuInit(0));
  CUdevice dev = 0;
  CHECK(cuDeviceGet(&dev, 0));
  int sm_attr = 0;
  CHECK(cuDeviceGetAttribute(&sm_attr, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  std::printf("attr_sms %d\n", sm_attr);

  CUdevResource device_sms{};
  CHECK(cuDeviceGetDevResource(dev, &device_sms, CU_DEV_RESOURCE_TYPE_SM));
  std::printf("device_resource_sms %u min_partition %u alignment %u\n", device_sms.sm.smCount,
              device_sms.sm.minSmPartitionSize, device_sms.sm.smCoscheduledAlignment);

  CUcontext primary = nullptr;
  CHECK(cuDevicePrimaryCtxRetain(&primary, dev));
  CHECK(cuCtxSetCurrent(primary));
  CUdevResource ctx_sms{};
  CHECK(cuCtxGetDevResource(primary, &ctx_sms, CU_DEV_RESOURCE_TYPE_SM));
  std::printf("primary_ctx_resource_sms %u\n", ctx_sms.sm.smCount);

  CUmodule module = nullptr;
  CUfunction record = nullptr;
  CHECK(cuModuleLoadData(&module, kPtx));
  CHECK(cuModuleGetFunction(&record, module, "record_smid"));
  std::printf("primary_distinct_sms %d\n", DistinctSms(record, nullptr, 4 * sm_attr + 64));

  if (const char* how = std::getenv("GREEN_SUBSCRIBE")) SubscribeLaunchCallback(std::atoi(how));

  // Split the device's SMs (as PyTorch's green-context API does) and make a context of group 0.
  unsigned groups = 1;
  CUdevResource group{};
  CUdevResource remaining{};
  CHECK(cuDevSmResourceSplitByCount(&group, &groups, &device_sms, &remaining, 0, min_sms));
  std::printf("split groups %u group_sms %u remaining_sms %u\n", groups, group.sm.smCount,
              remaining.sm.smCount);
  CUdevResourceDesc desc = nullptr;
  CHECK(cuDevResourceGenerateDesc(&desc, &group, 1));
  CUgreenCtx green = nullptr;
  CHECK(cuGreenCtxCreate(&green, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM));
  CUdevResource green_sms{};
  CHECK(cuGreenCtxGetDevResource(green, &green_sms, CU_DEV_RESOURCE_TYPE_SM));
  std::printf("green_resource_sms %u\n", green_sms.sm.smCount);
  CUcontext green_ctx = nullptr;
  CHECK(cuCtxFromGreenCtx(&green_ctx, green));
  CHECK(cuCtxSetCurrent(green_ctx));
  // Modules are per context: load the kernel again in the green context.
  CUmodule gmodule = nullptr;
  CUfunction grecord = nullptr;
  CHECK(cuModuleLoadData(&gmodule, kPtx));
  CHECK(cuModuleGetFunction(&grecord, gmodule, "record_smid"));
  CUstream gstream = nullptr;
  CHECK(cuGreenCtxStreamCreate(&gstream, green, CU_STREAM_NON_BLOCKING, 0));
  const int blocks = 4 * sm_attr + 64;
  const int on_green_stream = DistinctSms(grecord, gstream, blocks);
  const int on_default = DistinctSms(grecord, nullptr, blocks);
  std::printf("green_stream_distinct_sms %d\ngreen_default_stream_distinct_sms %d\n", on_green_stream,
              on_default);
  const bool ok = on_green_stream > 0 && on_default > 0 &&
                  on_green_stream <= static_cast<int>(green_sms.sm.smCount) &&
                  on_default <= static_cast<int>(green_sms.sm.smCount);
  std::printf("SUMMARY ok=%d attr_sms=%d device_sms=%u green_sms=%u ran_on=%d/%d\n", ok ? 1 : 0, sm_attr,
              device_sms.sm.smCount, green_sms.sm.smCount, on_green_stream, on_default);
  cuStreamDestroy(gstream);
  cuCtxSetCurrent(primary);
  cuGreenCtxDestroy(green);
  return ok ? 0 : 1;
}
