// SPDX-License-Identifier: Apache-2.0
// SM partitions: GPUSHARE_SM gives a tenant a slice of each GPU's SMs (a count or a share),
// disjoint from other tenants' slices, and every kernel of the tenant runs only there. This is
// the folder's one interface; the hooks and quota/ call nothing else in it.
//
// Mechanism (launch_mask.h): the driver's launch callback writes the slice's TPC-disable mask
// into every launch descriptor, so it holds for unmodified programs: runtime and driver
// launches, cuLaunchKernelEx, cooperative launches, memsets, every thread and stream, CUDA
// graphs (baked in at their first launch), under MPS too. The GPU's bit map (tpc_map.h) is
// measured once per GPU and cached in the ledger; slices come from the ledger (slice.h,
// quota/ledger_sm.cpp).
//
// When the mask cannot be used (the driver's single callback slot is taken, e.g. by CUPTI; or a
// descriptor layout gpushare does not know) the tenant is told at start and, per
// GPUSHARE_SM_FALLBACK, refused (default) or run on every SM. Green contexts are no fallback for
// unmodified programs: the CUDA runtime binds its own primary context internally, out of reach
// (gpu-facts.md, "Handing PyTorch a green context from outside does not confine it").
//
// How to add a mechanism: give ConfineDevice another branch before the fallback, and make
// VisibleSmCount and VisibleMaxActiveClusters report what that mechanism really confines to
// (never fewer SMs than kernels get: cuBLAS sizes its grids from it).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "quota/ledger.h"
#include "src/cuda_api.h"
#include "src/options.h"

namespace gpushare::sm {

// At start, right after `ledger` joined this device's tenant: maps the GPU (or reads the
// ledger's map), takes the tenant's slice and confines every later launch on the device. False
// with *error (what to tell the tenant) when the process must not run.
bool ConfineDevice(int ordinal, CUdevice device, quota::LedgerSession& ledger, std::string* error);

// GPUSHARE_SM of the options, as the ledger stores it.
SmAsk AskOf(const Options& options);

namespace detail {
extern std::atomic<uint32_t> g_visible_sms[kMaxDevices];
bool SawForeignDescriptor();  // launch_mask.h: a launch ran unconfined (unknown layout)
}  // namespace detail

// What cuDeviceGetAttribute(MULTIPROCESSOR_COUNT) reports: the slice's SMs on a confined device,
// so grids (cooperative ones included) are sized to fit it; else the driver's own count.
inline int VisibleSmCount(CUdevice device, int real_count) {
  if (device < 0 || device >= kMaxDevices) return real_count;
  const uint32_t slice = detail::g_visible_sms[device].load(std::memory_order_relaxed);
  if (slice == 0 || detail::SawForeignDescriptor()) return real_count;
  return static_cast<int>(slice);
}

// What cuOccupancyMaxActiveClusters(config) reports on `device`, whose driver answered
// gpu_clusters for the whole GPU: on a confined device, the clusters its slice holds
// (cluster_occupancy.h), so persistent cluster grids fit it; else gpu_clusters.
int VisibleMaxActiveClusters(CUdevice device, CUfunction f, const CUlaunchConfig& config, int gpu_clusters);

}  // namespace gpushare::sm
