// SPDX-License-Identifier: Apache-2.0
// Measuring a GPU's launch-descriptor TPC map: which of the 128 mask bits have a live TPC, and
// how many SMs each holds. Bits are not SM ids (on the H100, 66 of 128 are live, dead ones
// interleaved, each live one an even/odd SM pair), so they are found by a sweep: a tiny kernel
// (PTX below, JIT-compiled by the driver) records %smid per block, launched once with every bit
// enabled and once with each single bit disabled; the SMs missing from a run are that bit's.
// A single disabled bit always leaves live TPCs, so no sweep launch can hang. Then the GPC of
// each bit, from thread block clusters (all blocks of a cluster run in one GPC). About 130 small
// launches in a private context: the first process on a GPU pays it, the ledger caches it.
#pragma once
#include <string>

#include "sm_partition/slice.h"
#include "src/cuda_api.h"

namespace gpushare::sm {

// The sweep's kernel: gpushare_smid_bitmap(uint32_t* bitmap, uint64_t spin_cycles) sets bit
// %smid of bitmap (16 words: SM ids below 512) and spins, so every SM gets blocks.
extern const char kSmidBitmapPtx[];
inline constexpr const char* kSmidBitmapKernel = "gpushare_smid_bitmap";
inline constexpr unsigned kSmidBitmapWords = 16;
// The GPC kernel: gpushare_smid_cluster(uint32_t* out, uint64_t seed), launched in clusters with
// one block per SM, writes each block's %smid to out[block].
extern const char kSmidClusterPtx[];
inline constexpr const char* kSmidClusterKernel = "gpushare_smid_cluster";

// Needs the launch callback (SubscribeLaunchCallback() == kOk): it carries the sweep's masks.
// Call before any program launch (the sweep's masks apply process-wide while it runs).
bool MeasureTpcMap(CUdevice device, TpcMap* out, std::string* error);

}  // namespace gpushare::sm
