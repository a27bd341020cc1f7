// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/sm_partition.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>

#include "sm_partition/cluster_occupancy.h"
#include "sm_partition/launch_mask.h"
#include "sm_partition/tpc_map.h"
#include "src/log.h"
#include "src/real_driver.h"
#include "src/runtime.h"

namespace gpushare::sm {
namespace detail {
std::atomic<uint32_t> g_visible_sms[kMaxDevices] = {};
// The ledger's cached map was measured under this driver, so its descriptors should have the
// layout seen then; if one does not, its launches run everywhere and the full count is shown.
bool SawForeignDescriptor() { return ForeignDescriptorLaunches() != 0; }
}  // namespace detail

namespace {

// Written by ConfineDevice before g_visible_sms[device] is set (release), read after it is.
SliceGeometry g_geometry[kMaxDevices];

// Always on stderr (not only at GPUSHARE_LOG_LEVEL): the tenant must learn it at start.
void Tell(const std::string& line) {
  fmt::print(stderr, "gpushare: {}\n", line);
  std::fflush(stderr);
}

// The map: the ledger's, else measured here (the first process on this GPU) and published.
bool MapOf(CUdevice device, quota::LedgerSession& ledger, TpcMap* map, std::string* why) {
  int driver_version = 0;
  Real().cuDriverGetVersion(&driver_version);
  if (ledger.CachedTpcMap(driver_version, map)) return true;
  const auto start = std::chrono::steady_clock::now();
  if (!MeasureTpcMap(device, map, why)) return false;
  const auto took = std::chrono::steady_clock::now() - start;
  ledger.PublishTpcMap(map, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
  GS_LOG_INFO("gpushare: mapped the TPC mask of device {} in {:.1f} ms: {} SMs on {} live bits ({}); {} GPCs; "
              "no clusters on bits {}", device, std::chrono::duration<double, std::milli>(took).count(),
              map->sm_count, map->live.Count(), DescribeBits(map->live), map->Gpcs().size(),
              DescribeBits(map->Unclustered()));
  return true;
}

bool Unconfined(int ordinal, const SmAsk& ask, const std::string& why, quota::LedgerSession& ledger,
                std::string* error) {
  if (Opts().sm_fallback != option_kind::SmFallbackValue::kUnconfined) {
    *error = fmt::format("GPUSHARE_SM asks for {} on device {}, but kernels cannot be confined: {} "
                         "(GPUSHARE_SM_FALLBACK=unconfined runs them on every SM instead)",
                         DescribeAsk(ask), ordinal, why);
    return false;
  }
  Tell(fmt::format("GPUSHARE_SM asks for {} on device {}, but kernels cannot be confined: {}; "
                   "running on every SM (GPUSHARE_SM_FALLBACK=unconfined)", DescribeAsk(ask), ordinal, why));
  ledger.MarkSmUnconfined();
  ledger.SetProcessSmMode(GS_SM_MODE_UNCONFINED);
  return true;
}

// Blocks per cluster: the config's cluster, else the function's required one; 0 when neither.
int ClusterBlocksOf(CUfunction f, const CUlaunchConfig& config) {
  if (config.attrs != nullptr)
    for (unsigned i = 0; i < config.numAttrs; ++i)
      if (config.attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) {
        const auto& dim = config.attrs[i].value.clusterDim;
        const uint64_t blocks = uint64_t{dim.x} * dim.y * dim.z;
        return static_cast<int>(std::min<uint64_t>(blocks, INT_MAX));
      }
  uint64_t blocks = 1;
  for (const CUfunction_attribute attrib : {CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH,
                                            CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT,
                                            CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH}) {
    int dim = 0;
    if (Real().cuFuncGetAttribute(&dim, attrib, f) != CUDA_SUCCESS || dim <= 0) return 0;
    blocks *= static_cast<uint64_t>(dim);
  }
  return static_cast<int>(std::min<uint64_t>(blocks, INT_MAX));
}

}  // namespace

int VisibleMaxActiveClusters(CUdevice device, CUfunction f, const CUlaunchConfig& config, int gpu_clusters) {
  if (device < 0 || device >= kMaxDevices) return gpu_clusters;
  if (detail::g_visible_sms[device].load(std::memory_order_acquire) == 0 || detail::SawForeignDescriptor())
    return gpu_clusters;
  const uint64_t threads = uint64_t{config.blockDimX} * config.blockDimY * config.blockDimZ;
  int blocks_per_sm = 0;
  if (threads > INT_MAX ||
      Real().cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, f, static_cast<int>(threads),
                                                         config.sharedMemBytes) != CUDA_SUCCESS)
    blocks_per_sm = 0;
  return SliceClusters(g_geometry[device], gpu_clusters, blocks_per_sm, ClusterBlocksOf(f, config));
}

SmAsk AskOf(const Options& options) { return {options.sm.kind, options.sm.value}; }

bool ConfineDevice(int ordinal, CUdevice device, quota::LedgerSession& ledger, std::string* error) {
  const SmAsk ask = AskOf(Opts());
  if (!ask.any()) return true;
  if (Opts().sm_profiling) {
    Tell(fmt::format("GPUSHARE_SM_PROFILING=true: the driver's launch-callback slot is left to "
                     "profilers, so GPUSHARE_SM ({}) is not enforced on device {}: kernels run on every SM",
                     DescribeAsk(ask), ordinal));
    ledger.MarkSmUnconfined();
    ledger.SetProcessSmMode(GS_SM_MODE_UNCONFINED);
    return true;
  }
  const Subscription sub = SubscribeLaunchCallback();
  if (sub != Subscription::kOk) return Unconfined(ordinal, ask, DescribeSubscription(sub), ledger, error);
  TpcMap map;
  std::string why;
  if (!MapOf(device, ledger, &map, &why))
    return Unconfined(ordinal, ask, "mapping the launch descriptor's TPC mask failed: " + why, ledger, error);
  SliceChoice slice;
  const bool overlap = Opts().sm_conflict == option_kind::SmConflictValue::kOverlap;
  const Placement placement =
      Opts().sm_placement == option_kind::SmPlacementValue::kSpread ? Placement::kSpread : Placement::kGpc;
  if (!ledger.AssignSmSlice(map, overlap, &slice, error, placement)) return false;
  if (!PublishDeviceMask(ordinal, slice.mask, map.live)) {
    *error = fmt::format("the slice of device {} holds no live TPC", ordinal);
    return false;
  }
  g_geometry[ordinal] = GeometryOf(map, slice.mask);
  detail::g_visible_sms[ordinal].store(slice.sms, std::memory_order_release);
  ledger.SetProcessSmMode(GS_SM_MODE_MASK);
  if (slice.overlaps)
    Tell(fmt::format("device {}: too few TPCs are free for a disjoint slice of {}; sharing TPCs with "
                     "other tenants (GPUSHARE_SM_CONFLICT=overlap): bits {}", ordinal, DescribeAsk(ask),
                     DescribeBits(slice.mask)));
  GS_LOG_INFO("gpushare: device {}: kernels confined to {} of {} SMs in {} GPCs (asked {}; TPC bits {})",
              ordinal, slice.sms, map.sm_count, map.GpcsOf(slice.mask), DescribeAsk(ask),
              DescribeBits(slice.mask));
  return true;
}

}  // namespace gpushare::sm
