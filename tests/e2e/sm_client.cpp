// SPDX-License-Identifier: Apache-2.0
// A CUDA program for the SM-partition end-to-end tests, run with LD_PRELOAD=libgpushare.so
// against the fake driver (linked to it directly). Its kernel records the SMs it ran on, as a
// %smid kernel would. Usage: sm_client SCENARIO
//   paths  every launch path: default stream, a stream, 8 threads, cuLaunchKernelEx, a
//          cooperative launch sized from the reported SM count, a CUDA graph (first launch and
//          replay), and a cooperative launch sized for the whole GPU; prints "<path>_sms N" and
//          "<path>_rc N" per path
//   hold   starts, prints its launch mask, then waits to be killed
//   streams  launches on 40 streams in turn, three rounds (more streams than a thread's event
//          slots under a compute share); prints streams_rc (the first failure, else 0)
//   clusters  cuOccupancyMaxActiveClusters for blocks of 1024 threads: clusters_2 and clusters_8
//          (the config's cluster, on a stream), clusters_required_4 (the function's required
//          cluster, current context), the errors for null arguments, then a cluster launch of
//          clusters_N x N blocks per size (cluster_launch_N_rc, _sms; rc -1 when there is none)
//   contexts  launches on 20 streams and the default stream of a created context, destroys it
//          (its streams with it), again in a second one, then in the primary context across its
//          last release and across a reset; prints contexts_rc (the first failure, else 0) and
//          bad_event_calls (the fake's count of uses of dead events), then waits to be killed
// Always prints init_rc, sm_count (cuDeviceGetAttribute) and launches_at_start (the driver's
// launches before the program's first: the TPC-map sweep).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/driver_api.h"
#include "tests/fake_driver/fake_cuda_control.h"

namespace {

constexpr unsigned kMaxSm = 512;

// The kernel: sm_client_record(uint8_t* seen): seen[s] = 1 for each SM s it ran on.
extern "C" __attribute__((visibility("default"), used)) void sm_client_record(const fakecuda_launch* l) {
  auto* seen = reinterpret_cast<uint8_t*>(*static_cast<CUdeviceptr*>(l->params[0]));
  for (unsigned i = 0; i < l->sm_count; ++i)
    if (l->sm_ids[i] < kMaxSm) seen[l->sm_ids[i]] = 1;
}

void Print(const std::string& key, long long value) { std::printf("%s %lld\n", key.c_str(), value); }

CUfunction g_fn = nullptr;
CUdeviceptr g_seen = 0;

// Distinct SMs recorded since the last call.
long long TakeSms() {
  uint8_t host[kMaxSm] = {};
  cuMemcpyDtoH_v2(host, g_seen, sizeof host);
  cuMemsetD8_v2(g_seen, 0, kMaxSm);
  long long n = 0;
  for (uint8_t v : host) n += v;
  return n;
}

void Report(const std::string& path, CUresult rc) {
  Print(path + "_rc", rc);
  Print(path + "_sms", TakeSms());
}

void Paths(CUcontext ctx, int sm_count) {
  void* args[] = {&g_seen};
  Report("default_stream", cuLaunchKernel(g_fn, 64, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
  CUstream stream = nullptr;
  cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
  Report("stream", cuLaunchKernel(g_fn, 64, 1, 1, 32, 1, 1, 0, stream, args, nullptr));
  std::vector<std::thread> threads;
  std::vector<CUresult> rcs(8, CUDA_SUCCESS);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      cuCtxSetCurrent(ctx);
      CUstream own = nullptr;
      cuStreamCreate(&own, CU_STREAM_NON_BLOCKING);
      rcs[t] = cuLaunchKernel(g_fn, 64, 1, 1, 32, 1, 1, 0, own, args, nullptr);
    });
  for (auto& th : threads) th.join();
  CUresult worst = CUDA_SUCCESS;
  for (CUresult rc : rcs) worst = rc != CUDA_SUCCESS ? rc : worst;
  Report("threads", worst);
  CUlaunchConfig config{};
  config.gridDimX = 64, config.gridDimY = 1, config.gridDimZ = 1;
  config.blockDimX = 32, config.blockDimY = 1, config.blockDimZ = 1;
  config.hStream = stream;
  Report("launch_ex", cuLaunchKernelEx(&config, g_fn, args, nullptr));
  // Cooperative: every block co-resident, sized as programs do, from the reported SM count.
  int per_sm = 0;
  cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, g_fn, 256, 0);
  Report("cooperative", cuLaunchCooperativeKernel(g_fn, static_cast<unsigned>(per_sm * sm_count), 1, 1,
                                                  256, 1, 1, 0, stream, args));
  CUgraph graph = nullptr;
  cuGraphCreate(&graph, 0);
  CUDA_KERNEL_NODE_PARAMS node{};
  node.func = g_fn;
  node.gridDimX = 64, node.gridDimY = 1, node.gridDimZ = 1;
  node.blockDimX = 32, node.blockDimY = 1, node.blockDimZ = 1;
  node.kernelParams = args;
  CUgraphNode n = nullptr;
  cuGraphAddKernelNode_v2(&n, graph, nullptr, 0, &node);
  CUgraphExec exec = nullptr;
  cuGraphInstantiateWithFlags(&exec, graph, 0);
  Report("graph", cuGraphLaunch(exec, stream));
  Report("graph_replay", cuGraphLaunch(exec, stream));
  int real_count = 0;
  const char* whole = std::getenv("SM_CLIENT_WHOLE_GPU_SMS");
  real_count = whole != nullptr ? std::atoi(whole) : 0;
  if (real_count > 0)
    Report("cooperative_whole_gpu", cuLaunchCooperativeKernel(g_fn, static_cast<unsigned>(per_sm * real_count),
                                                              1, 1, 256, 1, 1, 0, stream, args));
}

// Two rounds on the default stream and `count` new streams of the current context, with a kernel
// loaded there; then a pause, in which a compute gate's keeper looks at the work in flight.
CUresult LaunchInCurrentContext(int count) {
  CUresult first_error = CUDA_SUCCESS;
  auto note = [&](CUresult rc) {
    if (rc != CUDA_SUCCESS && first_error == CUDA_SUCCESS) first_error = rc;
  };
  CUmodule module = nullptr;
  CUfunction fn = nullptr;
  CUdeviceptr seen = 0;
  note(cuModuleLoadData(&module, "sm client"));
  note(cuModuleGetFunction(&fn, module, "sm_client_record"));
  note(cuMemAlloc_v2(&seen, kMaxSm));
  std::vector<CUstream> streams(static_cast<size_t>(count), nullptr);
  for (CUstream& s : streams) note(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  void* args[] = {&seen};
  for (int round = 0; round < 2; ++round) {
    note(cuLaunchKernel(fn, 4, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
    for (CUstream s : streams) note(cuLaunchKernel(fn, 4, 1, 1, 32, 1, 1, 0, s, args, nullptr));
  }
  usleep(20'000);
  return first_error;
}

void Contexts() {
  CUresult first_error = CUDA_SUCCESS;
  auto note = [&](CUresult rc) {
    if (rc != CUDA_SUCCESS && first_error == CUDA_SUCCESS) first_error = rc;
  };
  // Created contexts, destroyed with their streams (the second one's streams likely get the
  // first one's handles back).
  for (int i = 0; i < 2; ++i) {
    CUcontext created = nullptr;
    note(cuCtxCreate_v2(&created, 0, 0));
    note(LaunchInCurrentContext(20));
    note(cuCtxDestroy_v2(created));
  }
  // The primary context (retained once by main, current again): its last release destroys it.
  note(LaunchInCurrentContext(20));
  note(cuDevicePrimaryCtxRelease_v2(0));
  CUcontext primary = nullptr;
  note(cuDevicePrimaryCtxRetain(&primary, 0));
  note(cuCtxSetCurrent(primary));
  note(LaunchInCurrentContext(20));
  // A reset destroys everything in it too (the fake wants it retained again after).
  note(cuDevicePrimaryCtxReset_v2(0));
  note(cuDevicePrimaryCtxRetain(&primary, 0));
  note(cuCtxSetCurrent(primary));
  note(LaunchInCurrentContext(20));
  note(cuCtxSynchronize());
  Print("contexts_rc", first_error);
  Print("bad_event_calls", static_cast<long long>(fakecuda_bad_event_calls()));
}

void PrintMask() {
  using MaskFn = int (*)(uint32_t*);
  auto fn = reinterpret_cast<MaskFn>(dlsym(RTLD_DEFAULT, "fakecuda_last_launch_mask"));
  uint32_t disable[4] = {};
  Print("masked", fn(disable));
  for (int i = 0; i < 4; ++i) Print("disable" + std::to_string(i), disable[i]);
}

CUlaunchConfig ClusterConfig(CUlaunchAttribute* attr, unsigned cluster_x, CUstream stream) {
  CUlaunchConfig config{};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 1024, config.blockDimY = 1, config.blockDimZ = 1;
  config.hStream = stream;
  if (cluster_x != 0) {
    attr->id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attr->value.clusterDim.x = cluster_x, attr->value.clusterDim.y = 1, attr->value.clusterDim.z = 1;
    config.attrs = attr;
    config.numAttrs = 1;
  }
  return config;
}

void Clusters() {
  CUstream stream = nullptr;
  cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
  int counts[2] = {};
  const unsigned sizes[2] = {2, 8};
  for (int i = 0; i < 2; ++i) {
    CUlaunchAttribute attr{};
    const CUlaunchConfig config = ClusterConfig(&attr, sizes[i], stream);
    const std::string name = "clusters_" + std::to_string(sizes[i]);
    Print(name + "_rc", cuOccupancyMaxActiveClusters(&counts[i], g_fn, &config));
    Print(name, counts[i]);
  }
  // A second handle of the kernel, with a required cluster of 2 x 2 (as __cluster_dims__ gives).
  CUmodule module = nullptr;
  CUfunction required = nullptr;
  cuModuleLoadData(&module, "sm client, required clusters");
  cuModuleGetFunction(&required, module, "sm_client_record");
  cuFuncSetAttribute(required, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, 2);
  cuFuncSetAttribute(required, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT, 2);
  cuFuncSetAttribute(required, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH, 1);
  CUlaunchAttribute none{};
  const CUlaunchConfig plain = ClusterConfig(&none, 0, nullptr);
  int count = 0;
  Print("clusters_required_4_rc", cuOccupancyMaxActiveClusters(&count, required, &plain));
  Print("clusters_required_4", count);
  Print("clusters_null_out_rc", cuOccupancyMaxActiveClusters(nullptr, g_fn, &plain));
  Print("clusters_null_config_rc", cuOccupancyMaxActiveClusters(&count, g_fn, nullptr));
  Print("clusters_unset_rc", cuOccupancyMaxActiveClusters(&count, g_fn, &plain));
  void* args[] = {&g_seen};
  for (int i = 0; i < 2; ++i) {
    const std::string name = "cluster_launch_" + std::to_string(sizes[i]);
    if (counts[i] <= 0) {
      Print(name + "_rc", -1);
      continue;
    }
    CUlaunchAttribute attr{};
    CUlaunchConfig config = ClusterConfig(&attr, sizes[i], stream);
    config.gridDimX = static_cast<unsigned>(counts[i]) * sizes[i];
    Print(name + "_rc", cuLaunchKernelEx(&config, g_fn, args, nullptr));
    Print(name + "_sms", TakeSms());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sm_client paths|hold|streams|contexts\n");
    return 2;
  }
  const std::string scenario = argv[1];
  const CUresult init = cuInit(0);
  Print("init_rc", init);
  if (init != CUDA_SUCCESS) return 0;
  Print("launches_at_start", static_cast<long long>(fakecuda_launches()));
  Print("callback_subscribed", fakecuda_launch_callback_subscribed());
  CUcontext ctx = nullptr;
  cuDevicePrimaryCtxRetain(&ctx, 0);
  cuCtxSetCurrent(ctx);
  int sm_count = 0;
  Print("attr_rc", cuDeviceGetAttribute(&sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  Print("sm_count", sm_count);
  CUmodule module = nullptr;
  cuModuleLoadData(&module, "sm client");
  cuModuleGetFunction(&g_fn, module, "sm_client_record");
  cuMemAlloc_v2(&g_seen, kMaxSm);
  cuMemsetD8_v2(g_seen, 0, kMaxSm);
  void* args[] = {&g_seen};
  Report("first", cuLaunchKernel(g_fn, 64, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
  PrintMask();
  Print("masked_launches", static_cast<long long>(fakecuda_masked_launches()));
  if (scenario == "paths") Paths(ctx, sm_count);
  if (scenario == "clusters") Clusters();
  if (scenario == "streams") {
    std::vector<CUstream> streams(40, nullptr);
    CUresult first_error = CUDA_SUCCESS;
    for (CUstream& s : streams) cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    for (int round = 0; round < 3; ++round)
      for (CUstream s : streams) {
        const CUresult rc = cuLaunchKernel(g_fn, 4, 1, 1, 32, 1, 1, 0, s, args, nullptr);
        if (rc != CUDA_SUCCESS && first_error == CUDA_SUCCESS) first_error = rc;
      }
    Print("streams_sync_rc", cuCtxSynchronize());
    for (CUstream s : streams) cuStreamDestroy_v2(s);
    Print("streams_rc", first_error);
  }
  if (scenario == "contexts") Contexts();
  std::fflush(stdout);
  if (scenario == "hold" || scenario == "contexts") {
    Print("holding", 1);
    std::fflush(stdout);
    for (;;) pause();
  }
  return 0;
}
