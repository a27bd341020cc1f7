// SPDX-License-Identifier: Apache-2.0
// The deprecated launches the CUDA 13 driver still exports: the pre-4.0 execution control
// (cuFuncSetBlockShape, cuFuncSetSharedSize, cuParamSet*, then cuLaunch / cuLaunchGrid /
// cuLaunchGridAsync) and cuLaunchCooperativeKernelMultiDevice. Each runs as cuLaunchKernel does
// (module.cpp): the launch callback, then the kernel, synchronously.
#include <cstring>

#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

// The kernel's arguments: pointers into the parameter buffer at each offset set, in order.
std::vector<void*> legacy_arguments(Function& fn) {
  std::vector<void*> args;
  for (const auto& [offset, bytes] : fn.legacy_arg_bytes)
    if (offset + bytes <= fn.legacy_params.size()) args.push_back(fn.legacy_params.data() + offset);
  return args;
}

CUresult legacy_launch(CUfunction f, int width, int height, CUstream stream) {
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (width <= 0 || height <= 0) return CUDA_ERROR_INVALID_VALUE;
  const unsigned grid[3] = {static_cast<unsigned>(width), static_cast<unsigned>(height), 1};
  std::vector<void*> args = legacy_arguments(*fn);
  return launch_on_stream(f, grid, fn->legacy_block, fn->legacy_shared, stream, args.empty() ? nullptr : args.data());
}

CUresult set_param(CUfunction f, int offset, const void* value, unsigned bytes) {
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (offset < 0 || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const size_t end = static_cast<size_t>(offset) + bytes;
  if (end > fn->legacy_params.size()) return CUDA_ERROR_INVALID_VALUE;  // past cuParamSetSize
  std::memcpy(fn->legacy_params.data() + offset, value, bytes);
  fn->legacy_arg_bytes[static_cast<unsigned>(offset)] = bytes;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuFuncSetBlockShape(CUfunction f, int x, int y, int z) {
  FAKE_ENTER();
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (x <= 0 || y <= 0 || z <= 0) return CUDA_ERROR_INVALID_VALUE;
  fn->legacy_block[0] = static_cast<unsigned>(x);
  fn->legacy_block[1] = static_cast<unsigned>(y);
  fn->legacy_block[2] = static_cast<unsigned>(z);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuFuncSetSharedSize(CUfunction f, unsigned int bytes) {
  FAKE_ENTER();
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  fn->legacy_shared = bytes;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuParamSetSize(CUfunction f, unsigned int bytes) {
  FAKE_ENTER();
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  fn->legacy_params.assign(bytes, 0);
  fn->legacy_arg_bytes.clear();
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuParamSeti(CUfunction f, int offset, unsigned int value) {
  FAKE_ENTER();
  return set_param(f, offset, &value, sizeof value);
}

FAKE_API CUresult cuParamSetf(CUfunction f, int offset, float value) {
  FAKE_ENTER();
  return set_param(f, offset, &value, sizeof value);
}

FAKE_API CUresult cuParamSetv(CUfunction f, int offset, void* ptr, unsigned int bytes) {
  FAKE_ENTER();
  return set_param(f, offset, ptr, bytes);
}

FAKE_API CUresult cuLaunch(CUfunction f) {
  FAKE_ENTER();
  return legacy_launch(f, 1, 1, nullptr);
}

FAKE_API CUresult cuLaunchGrid(CUfunction f, int grid_width, int grid_height) {
  FAKE_ENTER();
  return legacy_launch(f, grid_width, grid_height, nullptr);
}

FAKE_API CUresult cuLaunchGridAsync(CUfunction f, int grid_width, int grid_height, CUstream stream) {
  FAKE_ENTER();
  return legacy_launch(f, grid_width, grid_height, stream);
}

// One cooperative launch per entry, each on its own device's stream (not a default stream).
FAKE_API CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS* list, unsigned int count,
                                                       unsigned int flags) {
  FAKE_ENTER();
  constexpr unsigned kKnownFlags = CUDA_COOPERATIVE_LAUNCH_MULTI_DEVICE_NO_PRE_LAUNCH_SYNC |
                                   CUDA_COOPERATIVE_LAUNCH_MULTI_DEVICE_NO_POST_LAUNCH_SYNC;
  if (list == nullptr || count == 0 || count > drv().devices.size() || (flags & ~kKnownFlags) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<int> devices;
  for (unsigned i = 0; i < count; ++i) {
    const CUDA_LAUNCH_PARAMS& p = list[i];
    if (p.function == nullptr || find_function(p.function) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (p.hStream == nullptr || p.hStream == CU_STREAM_LEGACY || p.hStream == CU_STREAM_PER_THREAD)
      return CUDA_ERROR_INVALID_VALUE;
    Context* c = nullptr;
    FAKE_TRY(stream_context(p.hStream, &c));
    for (int d : devices)
      if (d == c->device) return CUDA_ERROR_INVALID_DEVICE;  // one launch per device
    devices.push_back(c->device);
  }
  for (unsigned i = 0; i < count; ++i) {
    const CUDA_LAUNCH_PARAMS& p = list[i];
    const unsigned grid[3] = {p.gridDimX, p.gridDimY, p.gridDimZ};
    const unsigned block[3] = {p.blockDimX, p.blockDimY, p.blockDimZ};
    FAKE_TRY(launch_on_stream(p.function, grid, block, p.sharedMemBytes, p.hStream, p.kernelParams, true));
  }
  return CUDA_SUCCESS;
}
