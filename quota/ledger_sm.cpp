// SPDX-License-Identifier: Apache-2.0
// SM slices in the ledger: the GPU's TPC map, measured once and cached in the header, and each
// tenant's slice, chosen under the lock from bits no other active tenant holds. A tenant's bits
// go back to the pool with its slot (RemoveTenantLocked frees the slot; free slots hold nothing).
#include <cstring>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

sm::TpcMask MaskOf(const uint32_t (&words)[4]) {
  sm::TpcMask m;
  std::memcpy(m.words, words, sizeof m.words);
  return m;
}

}  // namespace

sm::TpcMap TpcMapOf(const GsLedgerHeader& h) {
  sm::TpcMap map;
  map.sm_count = h.sm_count;
  map.live = MaskOf(h.sm_live);
  std::memcpy(map.sms_per_bit, h.sm_per_bit, sizeof map.sms_per_bit);
  std::memcpy(map.gpc_of_bit, h.sm_gpc_of_bit, sizeof map.gpc_of_bit);
  map.qmd_version = h.sm_qmd_version;
  map.driver_version = h.sm_driver_version;
  return map;
}

bool LedgerSession::CachedTpcMap(int32_t driver_version, sm::TpcMap* out) const {
  if (__atomic_load_n(&header_->sm_map_state, __ATOMIC_ACQUIRE) != GS_SM_MAP_READY) return false;
  if (header_->sm_driver_version != driver_version) return false;
  const sm::TpcMap map = TpcMapOf(*header_);
  if (!map.Check().empty()) return false;
  *out = map;
  return true;
}

void LedgerSession::PublishTpcMap(sm::TpcMap* map, uint64_t took_ns) {
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) return;  // the map stays this process's own; the next one measures again
  sm::TpcMap theirs;
  if (CachedTpcMap(map->driver_version, &theirs)) {
    *map = theirs;  // a concurrent first process published first: slices must use one map
    return;
  }
  __atomic_store_n(&header_->sm_map_state, GS_SM_MAP_NONE, __ATOMIC_RELEASE);
  header_->sm_count = map->sm_count;
  header_->sm_qmd_version = map->qmd_version;
  header_->sm_driver_version = map->driver_version;
  header_->sm_map_unix_ns = lf::NowUnixNs();
  header_->sm_map_ns = took_ns;
  std::memcpy(header_->sm_live, map->live.words, sizeof header_->sm_live);
  std::memcpy(header_->sm_per_bit, map->sms_per_bit, sizeof header_->sm_per_bit);
  std::memcpy(header_->sm_gpc_of_bit, map->gpc_of_bit, sizeof header_->sm_gpc_of_bit);
  __atomic_store_n(&header_->sm_map_state, GS_SM_MAP_READY, __ATOMIC_RELEASE);
}

bool LedgerSession::AssignSmSlice(const sm::TpcMap& map, bool allow_overlap, sm::SliceChoice* out,
                                  std::string* error, sm::Placement placement) {
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) {
    *error = "gpushare: ledger " + path_ + ": " + guard.Describe();
    return false;
  }
  const sm::SmAsk ask{tenant_->sm_asked_kind, tenant_->sm_asked};
  const sm::TpcMask mine = MaskOf(tenant_->sm_mask);
  // Another process of this tenant chose already: adopt its slice (same map: the ledger's).
  if (mine.Any() && !(mine & ~map.live).Any()) {
    out->mask = mine;
    out->sms = map.SmsOf(mine);
    out->overlaps = (tenant_->sm_flags & GS_SM_OVERLAPS) != 0;
    return true;
  }
  uint8_t holders[sm::kTpcBits] = {};
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants_[i];
    if (i == tenant_index_ || LoadState(t.state) != GS_SLOT_ACTIVE) continue;
    const sm::TpcMask theirs = MaskOf(t.sm_mask);
    for (unsigned b = 0; b < sm::kTpcBits; ++b)
      if (theirs.Test(b) && holders[b] < 255) ++holders[b];
  }
  *out = sm::ChooseSlice(map, holders, sm::AskedSms(ask, map.sm_count), allow_overlap, placement);
  if (!out->error.empty()) {
    *error = "gpushare: tenant '" + std::string(tenant_->name) + "' asks GPUSHARE_SM " +
             sm::DescribeAsk(ask) + " of " + path_ + ": " + out->error;
    return false;
  }
  std::memcpy(tenant_->sm_mask, out->mask.words, sizeof tenant_->sm_mask);
  tenant_->sm_granted = out->sms;
  tenant_->sm_flags = out->overlaps ? GS_SM_OVERLAPS : 0;
  return true;
}

void LedgerSession::MarkSmUnconfined() {
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) return;
  if (!MaskOf(tenant_->sm_mask).Any()) tenant_->sm_flags |= GS_SM_UNCONFINED;
}

void LedgerSession::SetProcessSmMode(uint32_t mode) { __atomic_store_n(&process_->sm_mode, mode, __ATOMIC_RELEASE); }

}  // namespace gpushare::quota
