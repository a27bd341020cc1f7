// SPDX-License-Identifier: Apache-2.0
// An amount of device memory as a variable gave it: bytes, or relative to the device it applies
// to, because schedulers write it so (KAI's GPU_PORTION is a fraction of the device; aliyun's
// ALIYUN_COM_GPU_MEM_CONTAINER counts GiB or MiB, whichever its device plugin was set to).
// Resolved per device once its total is known (after cuInit, or from NVML).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gpushare {

enum class AliyunUnit { kInfer, kGiB, kMiB };

struct DeviceMemory {
  enum class Form { kBytes, kPortion, kAliyunUnits };
  static constexpr uint64_t kPortionOne = 1'000'000'000'000ull;  // a whole device, in portion units

  Form form = Form::kBytes;
  uint64_t amount = 0;            // bytes | portion in kPortionOne parts | aliyun units
  uint64_t aliyun_dev_units = 0;  // kAliyunUnits: ALIYUN_COM_GPU_MEM_DEV, the device in those units (0: unset)
  std::string variable;           // where it came from ("GPUSHARE_MEM_LIMIT_1", "GPU_PORTION"), for messages
  std::string text;               // the value as written
  // A scheduler's amount: on a smaller device it is the whole device (HAMi-core caps its limit at
  // the device's memory in cuMemGetInfo_v2, src/cuda/memory.c). Ours are taken as written.
  bool cap_at_device = false;

  static DeviceMemory Bytes(uint64_t bytes, std::string variable, std::string text);
  bool relative() const { return form != Form::kBytes; }
};

// "GPU_PORTION" style fractions: "0.5", "1", ".25"; more than 12 decimals are truncated. In
// kPortionOne parts; nullopt unless 0 < value <= 1.
std::optional<uint64_t> ParsePortion(std::string_view text);

// The unit ALIYUN_COM_GPU_MEM_DEV was written in: the one whose size puts it within 25% of the
// device's real total (aliyun's plugin floors the total to whole GiB, so 79 stands for an
// 80 GB H100's 79.6 GiB). kInfer when neither fits.
AliyunUnit InferAliyunUnit(uint64_t dev_units, uint64_t device_total_bytes);

// The bytes `memory` stands for on a device of `device_total_bytes` (`unit` from
// GPUSHARE_ALIYUN_UNIT, kInfer to infer it). nullopt with *error naming the variable.
std::optional<uint64_t> ResolveDeviceMemory(const DeviceMemory& memory, uint64_t device_total_bytes,
                                            AliyunUnit unit, std::string* error);

}  // namespace gpushare
