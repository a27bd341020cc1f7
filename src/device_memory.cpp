// SPDX-License-Identifier: Apache-2.0
#include "src/device_memory.h"

#include <fmt/format.h>

#include <utility>

namespace gpushare {
namespace {

__extension__ typedef unsigned __int128 u128;
constexpr int kPortionDigits = 12;  // kPortionOne = 10^12

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Within 25% of the device's total, as a ratio of integers (no floating point).
bool Near(u128 claimed, uint64_t total) {
  return claimed * 4 >= u128{total} * 3 && claimed * 4 <= u128{total} * 5;
}

const char* UnitName(AliyunUnit unit) { return unit == AliyunUnit::kGiB ? "GiB" : "MiB"; }

}  // namespace

DeviceMemory DeviceMemory::Bytes(uint64_t bytes, std::string variable, std::string text) {
  DeviceMemory m;
  m.amount = bytes;
  m.variable = std::move(variable);
  m.text = std::move(text);
  return m;
}

std::optional<uint64_t> ParsePortion(std::string_view text) {
  size_t i = 0;
  uint64_t whole = 0;
  int whole_digits = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i, ++whole_digits) {
    if (whole_digits >= 2) return std::nullopt;  // nothing above 1 is a portion
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  uint64_t fraction = 0;
  int fraction_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t start = i;
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      if (fraction_digits < kPortionDigits) {
        fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
        ++fraction_digits;
      }
    }
    if (i == start) return std::nullopt;
  }
  if (i != text.size() || (whole_digits == 0 && fraction_digits == 0)) return std::nullopt;
  for (int d = fraction_digits; d < kPortionDigits; ++d) fraction *= 10;
  const u128 parts = u128{whole} * DeviceMemory::kPortionOne + fraction;
  if (parts == 0 || parts > DeviceMemory::kPortionOne) return std::nullopt;
  return static_cast<uint64_t>(parts);
}

AliyunUnit InferAliyunUnit(uint64_t dev_units, uint64_t device_total_bytes) {
  if (dev_units == 0 || device_total_bytes == 0) return AliyunUnit::kInfer;
  if (Near(u128{dev_units} << 30, device_total_bytes)) return AliyunUnit::kGiB;
  if (Near(u128{dev_units} << 20, device_total_bytes)) return AliyunUnit::kMiB;
  return AliyunUnit::kInfer;
}

std::optional<uint64_t> ResolveDeviceMemory(const DeviceMemory& memory, uint64_t device_total_bytes,
                                            AliyunUnit unit, std::string* error) {
  switch (memory.form) {
    case DeviceMemory::Form::kBytes:
      return memory.amount;
    case DeviceMemory::Form::kPortion:
      return static_cast<uint64_t>(u128{device_total_bytes} * memory.amount / DeviceMemory::kPortionOne);
    case DeviceMemory::Form::kAliyunUnits:
      break;
  }
  if (unit == AliyunUnit::kInfer) {
    unit = InferAliyunUnit(memory.aliyun_dev_units, device_total_bytes);
    if (unit == AliyunUnit::kInfer) {
      *error = fmt::format(
          "ALIYUN_COM_GPU_MEM_DEV={} is neither GiB nor MiB of this device's {} bytes, so the unit of "
          "{}=\"{}\" is unknown; set GPUSHARE_ALIYUN_UNIT=GiB or MiB",
          memory.aliyun_dev_units, device_total_bytes, memory.variable, memory.text);
      return std::nullopt;
    }
  }
  const u128 bytes = u128{memory.amount} << (unit == AliyunUnit::kGiB ? 30 : 20);
  if (bytes > UINT64_MAX) {
    *error = fmt::format("{}=\"{}\" {} is more than 2^64 bytes", memory.variable, memory.text, UnitName(unit));
    return std::nullopt;
  }
  return static_cast<uint64_t>(bytes);
}

}  // namespace gpushare
