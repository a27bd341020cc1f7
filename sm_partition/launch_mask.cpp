// SPDX-License-Identifier: Apache-2.0
#include "sm_partition/launch_mask.h"

#include <atomic>
#include <cstring>
#include <mutex>

#include "sm_partition/launch_descriptor.h"
#include "src/log.h"
#include "src/options.h"
#include "src/real_driver.h"

namespace gpushare::sm {
namespace {

// What the callback reads: published whole (a new table per change, the old one leaked: a
// handful per process, all at start), so a launch sees one consistent table.
struct MaskTable {
  bool single = false;                 // one confined device: `single_disable` applies to all
  uint32_t single_disable[4] = {};
  uint8_t confined[kMaxDevices] = {};  // several: per device, found with cuCtxGetDevice
  uint32_t disable[kMaxDevices][4] = {};
};

std::atomic<const MaskTable*> g_table{nullptr};
const MaskTable* g_published = nullptr;  // the devices' table, restored after a sweep
std::mutex g_publish_mu;
std::atomic<uint32_t> g_last_version{0};
std::atomic<uint64_t> g_foreign{0};
std::atomic<bool> g_warned_foreign{false};

[[gnu::cold, gnu::noinline]] void WarnForeignLayout(uint32_t version) {
  GS_LOG_ERROR("gpushare: a kernel launch descriptor has version byte {:#x}, not {:#x} (Hopper "
               "V04_00): gpushare does not touch descriptors of a layout it does not know, so this "
               "and every such launch runs on every SM",
               version, qmd::kVersionHopper);
}

[[gnu::cold, gnu::noinline]] const uint32_t* DisableForCurrentDevice(const MaskTable* t) {
  CUdevice dev = -1;
  if (Real().cuCtxGetDevice == nullptr || Real().cuCtxGetDevice(&dev) != CUDA_SUCCESS) return nullptr;
  if (dev < 0 || dev >= kMaxDevices || t->confined[dev] == 0) return nullptr;
  return t->disable[dev];
}

void OnLaunch(void*, uint32_t domain, uint32_t cbid, const void* params) {
  const MaskTable* t = g_table.load(std::memory_order_acquire);
  if (t == nullptr || domain != qmd::kLaunchDomain || cbid != qmd::kLaunchCbid || params == nullptr)
    return;
  if (*static_cast<const uint32_t*>(params) < qmd::kMinParamsBytes) return;
  auto* desc = static_cast<uint8_t*>(static_cast<void* const*>(params)[qmd::kDescriptorSlot]);
  if (desc == nullptr) return;
  const uint32_t version = desc[qmd::kVersionByte];
  if (g_last_version.load(std::memory_order_relaxed) != version)
    g_last_version.store(version, std::memory_order_relaxed);
  if (__builtin_expect(version != qmd::kVersionHopper, 0)) {
    g_foreign.fetch_add(1, std::memory_order_relaxed);
    if (!g_warned_foreign.exchange(true, std::memory_order_relaxed)) WarnForeignLayout(version);
    return;
  }
  const uint32_t* disable = t->single ? t->single_disable : DisableForCurrentDevice(t);
  if (disable == nullptr) return;
  uint32_t* words = reinterpret_cast<uint32_t*>(desc);
  std::memcpy(words + qmd::kMaskWord, disable, 4 * sizeof(uint32_t));
  words[qmd::kValidWord] |= qmd::kValidBit;
}

Subscription SubscribeOnce() {
  if (Real().cuGetExportTable == nullptr) return Subscription::kNoTable;
  const void* table = nullptr;
  CUuuid id{};
  std::memcpy(id.bytes, qmd::kCallbackTableId, sizeof id.bytes);
  if (Real().cuGetExportTable(&table, &id) != CUDA_SUCCESS || table == nullptr)
    return Subscription::kNoTable;
  auto* slots = static_cast<void* const*>(table);
  if (reinterpret_cast<uintptr_t>(slots[qmd::kTableSizeSlot]) < qmd::kMinTableBytes)
    return Subscription::kNoTable;
  auto subscribe = reinterpret_cast<qmd::SubscribeFn>(slots[qmd::kSubscribeSlot]);
  auto enable = reinterpret_cast<qmd::EnableFn>(slots[qmd::kEnableSlot]);
  if (subscribe == nullptr || enable == nullptr) return Subscription::kNoTable;
  void* handle = nullptr;
  const int rc = subscribe(&handle, &OnLaunch, nullptr);
  if (rc == qmd::kAlreadyAcquired) return Subscription::kTaken;
  if (rc != 0) {
    GS_LOG_WARN("gpushare: subscribing to the launch callback failed ({})", rc);
    return Subscription::kFailed;
  }
  const int erc = enable(1, handle, qmd::kLaunchDomain, qmd::kLaunchCbid);
  if (erc != 0) {
    GS_LOG_WARN("gpushare: enabling the launch callback failed ({})", erc);
    return Subscription::kFailed;
  }
  return Subscription::kOk;
}

}  // namespace

const char* DescribeSubscription(Subscription s) {
  switch (s) {
    case Subscription::kOk: return "subscribed";
    case Subscription::kNoTable: return "this driver has no launch-callback table gpushare knows";
    case Subscription::kTaken:
      return "the driver's launch-callback slot is taken (a profiler, CUPTI, or another tool "
             "subscribed first)";
    case Subscription::kFailed: return "the driver refused the launch-callback subscription";
  }
  return "?";
}

Subscription SubscribeLaunchCallback() {
  static const Subscription result = SubscribeOnce();
  return result;
}

bool PublishDeviceMask(int device, const TpcMask& enabled, const TpcMask& live) {
  if (device < 0 || device >= kMaxDevices || !(enabled & live).Any()) return false;
  const TpcMask disable = ~enabled;
  std::lock_guard<std::mutex> lock(g_publish_mu);
  auto* next = new MaskTable(g_published != nullptr ? *g_published : MaskTable{});
  next->confined[device] = 1;
  std::memcpy(next->disable[device], disable.words, sizeof disable.words);
  int count = 0, last = -1;
  for (int d = 0; d < kMaxDevices; ++d)
    if (next->confined[d] != 0) ++count, last = d;
  next->single = count == 1;
  if (next->single) std::memcpy(next->single_disable, next->disable[last], sizeof next->single_disable);
  g_published = next;
  g_table.store(next, std::memory_order_release);
  return true;
}

void SetSweepMask(const TpcMask& disabled) {
  std::lock_guard<std::mutex> lock(g_publish_mu);
  auto* sweep = new MaskTable;
  sweep->single = true;
  std::memcpy(sweep->single_disable, disabled.words, sizeof disabled.words);
  const MaskTable* old = g_table.exchange(sweep, std::memory_order_acq_rel);
  if (old != g_published) delete old;  // the previous sweep step's: the sweep's launches are done
}

void ClearSweepMask() {
  std::lock_guard<std::mutex> lock(g_publish_mu);
  const MaskTable* old = g_table.exchange(g_published, std::memory_order_acq_rel);
  if (old != g_published) delete old;
}

uint32_t LastDescriptorVersion() { return g_last_version.load(std::memory_order_relaxed); }
uint64_t ForeignDescriptorLaunches() { return g_foreign.load(std::memory_order_relaxed); }

}  // namespace gpushare::sm
