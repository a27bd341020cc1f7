// SPDX-License-Identifier: Apache-2.0
// Every constant of the launch-descriptor mechanism, in one place. Measured on an H100 with
// driver 580.159.04 (CUDA 13.0); see ../shared/docs/gpu-facts.md, "The launch-descriptor TPC
// mask confines everything". Undocumented by NVIDIA (libsmctrl, RTAS 2023, uses the same
// table): anything that does not match what is below is refused, never guessed.
#pragma once
#include <cstdint>

namespace gpushare::sm::qmd {

// cuGetExportTable id of the driver's callback table (the one CUPTI uses).
inline constexpr unsigned char kCallbackTableId[16] = {0x2c, 0x8e, 0x0a, 0xd8, 0x07, 0x10, 0xab, 0x4e,
                                                       0x90, 0xdd, 0x54, 0x71, 0x9f, 0xe5, 0xf7, 0x4b};
// Entries of that table (void* slots). t[0] holds the table's size in bytes (0x60 measured).
inline constexpr int kTableSizeSlot = 0;
inline constexpr uint64_t kMinTableBytes = 7 * sizeof(void*);  // up to and including kEnableSlot
inline constexpr int kSubscribeSlot = 3;  // CUresult subscribe(void** handle, Callback, void* userdata)
inline constexpr int kEnableSlot = 6;     // CUresult enable(uint32_t on, void* handle, uint32_t domain, uint32_t cbid)
// The launch callback: domain 0xb, id 1; fires in the launching thread once per kernel launch
// (memsets, cooperative and cluster launches, a graph's first launch) before the descriptor is
// uploaded.
inline constexpr uint32_t kLaunchDomain = 0xb;
inline constexpr uint32_t kLaunchCbid = 0x1;
using Callback = void (*)(void* userdata, uint32_t domain, uint32_t cbid, const void* params);
using SubscribeFn = int (*)(void** handle, Callback callback, void* userdata);
using EnableFn = int (*)(uint32_t enable, void* handle, uint32_t domain, uint32_t cbid);
inline constexpr int kAlreadyAcquired = 210;  // CUDA_ERROR_ALREADY_ACQUIRED: CUPTI holds the slot

// Callback parameters: a struct whose first uint32 is its size (0x58 measured); pointer slot 4
// is the host copy of the descriptor about to be uploaded.
inline constexpr uint32_t kMinParamsBytes = 5 * sizeof(void*);
inline constexpr int kDescriptorSlot = 4;

// The descriptor (QMD). Its version byte; only V04_00 (Hopper) is written to. Pre-Hopper
// V01_06/V02_xx and Blackwell V05_00 keep the mask elsewhere or not at all.
inline constexpr int kVersionByte = 72;
inline constexpr uint8_t kVersionHopper = 0x40;
// V04_00: 32-bit words 76..79 (bytes 304..319) are a 128-bit set-bit-disables-TPC mask, applied
// only when word 0 bit 31 is set.
inline constexpr int kMaskWord = 76;
inline constexpr int kValidWord = 0;
inline constexpr uint32_t kValidBit = 1u << 31;
inline constexpr int kDescriptorBytes = 320;  // what the fake driver hands the callback, at least

}  // namespace gpushare::sm::qmd
