// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/cluster_occupancy.h"

#include <algorithm>

namespace gpushare::sm {

SliceGeometry GeometryOf(const TpcMap& map, const TpcMask& slice) {
  SliceGeometry g;
  g.gpu_sms = map.sm_count;
  g.slice_sms = map.SmsOf(slice);
  const std::vector<TpcMask> gpcs = map.Gpcs();
  g.cluster_sms_by_gpc.reserve(gpcs.size());
  for (const TpcMask& gpc : gpcs) g.cluster_sms_by_gpc.push_back(map.SmsOf(gpc & slice));
  return g;
}

int SliceClusters(const SliceGeometry& slice, int gpu_clusters, int blocks_per_sm, int cluster_blocks) {
  if (gpu_clusters <= 0) return gpu_clusters;
  const auto most = static_cast<uint64_t>(gpu_clusters);
  uint64_t clusters = 0;
  if (slice.cluster_sms_by_gpc.empty() || blocks_per_sm <= 0 || cluster_blocks <= 0) {
    if (slice.gpu_sms == 0) return gpu_clusters;
    clusters = most * slice.slice_sms / slice.gpu_sms;
  } else {
    const auto per_sm = static_cast<uint64_t>(blocks_per_sm);
    const auto size = static_cast<uint64_t>(cluster_blocks);
    for (const uint32_t sms : slice.cluster_sms_by_gpc) clusters += sms * per_sm / size;
  }
  return static_cast<int>(std::min(clusters, most));
}

}  // namespace gpushare::sm
