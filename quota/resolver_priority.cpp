// SPDX-License-Identifier: Apache-2.0
// The priority resolver: a refused burst takes memory from tenants that burst past their own
// request and are of lower priority than the requester, or idle longer than the requester's
// GPUSHARE_IDLE_TIMEOUT. Lower priority goes first, then the longest idle, and only as many as
// the shortfall needs; a guarantee (memory within a request) is never taken.
//
// Tenants live in other containers and PID namespaces, so nobody here kills anyone: the victim's
// tenant slot is marked, and the watcher thread of each of its processes (quota/watcher.cpp)
// sends itself SIGTERM, then SIGKILL after its grace. The requester waits as in wait-retry; the
// victims' memory comes back when their dead slots are reaped.
#include <algorithm>
#include <cstring>
#include <vector>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

struct Candidate {
  uint32_t slot;
  int32_t priority;
  uint64_t idle_ns;
  uint32_t reason;
  Room gain;
};

void CopyName(char (&out)[GS_LEDGER_NAME_BYTES], const char* name) {
  std::memset(out, 0, sizeof out);
  std::memcpy(out, name, strnlen(name, sizeof out - 1));
}

}  // namespace

uint64_t LedgerSession::TenantIdleNsLocked(uint32_t tenant, uint64_t now_ns) const {
  uint64_t latest = 0;
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes_[i];
    if (LoadState(p.state) != GS_SLOT_ACTIVE || p.tenant_index != tenant) continue;
    latest = std::max(latest, __atomic_load_n(&p.last_active_ns, __ATOMIC_RELAXED));
  }
  return now_ns > latest ? now_ns - latest : 0;
}

bool LedgerSession::MarkVictimsLocked(const ChargeQuery& q) {
  const Room need = ShortfallOf(q);
  auto covered = [&](const Room& g) { return g.Covers(need); };

  const uint64_t now = lf::NowMonotonicNs();
  Room pending;
  bool any_pending = false;
  std::vector<Candidate> candidates;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants_[i];
    if (i == tenant_index_ || LoadState(t.state) != GS_SLOT_ACTIVE) continue;
    const uint64_t used = Load(t.used_bytes) & kUsedMask;
    const uint64_t t_burst = BurstOf(used, t.request_bytes);
    // Its exit gives back its whole use physically, and to the burst pool its burst plus the
    // request it no longer holds.
    const Room gain{t_burst + t.request_bytes, used};
    if ((Load(t.terminate) & GS_TERMINATE_REQUESTED) != 0) {
      pending.pool += gain.pool;
      pending.physical += gain.physical;
      any_pending = true;
      continue;
    }
    if (t_burst == 0) continue;  // within its guarantee: never a victim
    const uint64_t idle = TenantIdleNsLocked(i, now);
    uint32_t reason = 0;
    if (t.priority < priority_) reason = GS_TERMINATE_LOWER_PRIORITY;
    else if (idle_timeout_ns_ > 0 && idle > idle_timeout_ns_) reason = GS_TERMINATE_IDLE;
    if (reason != 0) candidates.push_back({i, t.priority, idle, reason, gain});
  }
  if (covered(pending)) return any_pending;
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.idle_ns > b.idle_ns;
  });
  Room total = pending;
  size_t needed = 0;
  while (needed < candidates.size() && !covered(total)) {
    total.pool += candidates[needed].gain.pool;
    total.physical += candidates[needed].gain.physical;
    ++needed;
  }
  if (!covered(total)) return any_pending;  // terminating them all would not be enough: just wait

  for (size_t k = 0; k < needed; ++k) {
    const Candidate& c = candidates[k];
    GsLedgerTenant& victim = tenants_[c.slot];
    const uint64_t used = Load(victim.used_bytes) & kUsedMask;
    const uint64_t n = A(header_->terminations).load(std::memory_order_relaxed) + 1;
    GsLedgerTermination& r = lf::Terminations(map_)[(n - 1) % GS_LEDGER_TERMINATION_SLOTS];
    __atomic_store_n(&r.sequence, 0, __ATOMIC_RELEASE);
    r.unix_ns = lf::NowUnixNs();
    r.victim_used_bytes = used;
    r.victim_burst_bytes = BurstOf(used, victim.request_bytes);
    r.reason = c.reason;
    r.victim_priority = victim.priority;
    r.requester_priority = priority_;
    r.reserved0 = 0;
    r.victim_idle_ns = c.idle_ns;
    r.requester_bytes = q.bytes;
    CopyName(r.victim, victim.name);
    CopyName(r.requester, tenant_->name);
    __atomic_store_n(&r.sequence, n, __ATOMIC_RELEASE);
    A(header_->terminations).store(n, std::memory_order_release);

    victim.terminate_unix_ns = r.unix_ns;
    A(victim.terminations).fetch_add(1, std::memory_order_relaxed);
    __atomic_store_n(&victim.terminate,
                     GS_TERMINATE_REQUESTED | (static_cast<uint64_t>(c.reason) << 32) | tenant_index_,
                     __ATOMIC_RELEASE);
    GS_LOG_WARN("gpushare: {}: tenant '{}' (priority {}) needs {} bytes; terminating tenant '{}' "
                "(priority {}, {}, idle {:.1f} s, using {} bytes of which {} burst)",
                path_, tenant_->name, priority_, q.bytes, victim.name, victim.priority,
                DescribeTerminationReason(c.reason), c.idle_ns / 1e9, used, r.victim_burst_bytes);
  }
  return true;
}

}  // namespace gpushare::quota
