// SPDX-License-Identifier: Apache-2.0
// Thread block clusters on a slice: what cuOccupancyMaxActiveClusters reports on a confined
// device. The driver answers for the whole GPU; CUTLASS and cuBLAS size persistent cluster
// grids from that answer, so a slice must be told what it holds. Pure arithmetic, no driver:
// sm_partition.cpp gathers the inputs.
//
// All blocks of a cluster run in one GPC, and never on an unclustered TPC, so the slice holds
// Σ over GPCs g of floor(SMs of the slice in g × blocks per SM / blocks per cluster) clusters.
#pragma once
#include <cstdint>
#include <vector>

#include "sm_partition/slice.h"

namespace gpushare::sm {

// What of a slice clusters can use.
struct SliceGeometry {
  uint32_t gpu_sms = 0;
  uint32_t slice_sms = 0;
  // The slice's SMs in each GPC, by GPC number, without unclustered TPCs; empty when the GPU's
  // GPCs are unknown.
  std::vector<uint32_t> cluster_sms_by_gpc;
};

SliceGeometry GeometryOf(const TpcMap& map, const TpcMask& slice);

// The clusters the slice holds at once, never more than the driver's whole-GPU `gpu_clusters`.
// Without GPCs, or without the cluster's size or the blocks per SM (<= 0: unknown), the
// driver's answer scaled by the slice's share of the SMs, rounded down.
int SliceClusters(const SliceGeometry& slice, int gpu_clusters, int blocks_per_sm, int cluster_blocks);

}  // namespace gpushare::sm
