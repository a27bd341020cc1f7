// SPDX-License-Identifier: Apache-2.0
// Read-only views of ledger files, for gpushare-smi and other tools: no lock is taken (a tool
// must never stall the tenants), so a snapshot is a consistent-enough copy, re-read when it
// catches a slot mid-update.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "quota/slot_liveness.h"

namespace gpushare::quota {

namespace lf = ledger_file;

namespace {

bool ReadAll(int fd, std::vector<char>* buf) {
  size_t done = 0;
  while (done < buf->size()) {
    const ssize_t n = pread(fd, buf->data() + done, buf->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void Fill(void* base, int fd, const std::string& path, LedgerSnapshot* out) {
  const GsLedgerHeader& h = *lf::Header(base);
  const GsLedgerTenant* tenants = lf::Tenants(base);
  const GsLedgerProcess* processes = lf::Processes(base);
  *out = LedgerSnapshot{};
  out->path = path;
  char uuid[41];
  lf::FormatUuid(h.uuid, uuid);
  out->uuid = uuid;
  out->abi_version = h.abi_version;
  out->total_bytes = h.total_bytes;
  out->usable_bytes = h.usable_bytes;
  out->repairs = h.repairs;
  out->reaped_processes = h.reaped_processes;
  if (lf::NowMonotonicNs() < h.hidden_until_ns) out->hidden_bytes = h.hidden_bytes;
  out->terminations = h.terminations;
  out->compute_epoch = h.compute_epoch;
  out->compute_dead_handovers = h.compute_dead_handovers;
  out->compute_preemptions = h.compute_preemptions;
  out->swaps_out = h.swaps_out;
  out->swap_out_bytes = h.swap_out_bytes;
  out->swaps_in = h.swaps_in;
  out->swap_in_bytes = h.swap_in_bytes;
  if (h.context_overhead_state == GS_CONTEXT_OVERHEAD_READY) {
    out->context_overhead_bytes = h.context_overhead_bytes;
    out->context_overhead_driver = h.context_overhead_driver;
    out->context_overhead_mps = (h.context_overhead_flags & GS_CONTEXT_OVERHEAD_MPS) != 0;
    out->context_overhead_unix_ns = h.context_overhead_unix_ns;
  }
  out->sm_map_ready = h.sm_map_state == GS_SM_MAP_READY;
  if (out->sm_map_ready) {
    out->sm_map = TpcMapOf(h);
    out->sm_map_ns = h.sm_map_ns;
  }
  const uint64_t now = lf::NowMonotonicNs();
  // Only entries that can be waiters: a live process slot of their generation and tenant, a time
  // not in the future (stray bytes in the table are not shown, and the library drops them).
  for (const GsLedgerWaiter& w : h.waiters) {
    if (w.ticket == 0 || w.process_index >= GS_LEDGER_PROCESS_SLOTS || w.tenant_index >= GS_LEDGER_TENANT_SLOTS) continue;
    const GsLedgerProcess& p = processes[w.process_index];
    if (p.state != GS_SLOT_ACTIVE || p.generation != w.generation || p.tenant_index != w.tenant_index ||
        tenants[w.tenant_index].state != GS_SLOT_ACTIVE || w.since_ns == 0 || w.since_ns > now ||
        ProbeSlot(fd, lf::ProcessSlotOffset(w.process_index), GS_LEDGER_PROCESS_SLOT_BYTES) == Liveness::kDead)
      continue;
    out->waiters.push_back({w.ticket, w.bytes, w.process_index, w.tenant_index, now - w.since_ns});
  }
  out->waiting = static_cast<uint32_t>(out->waiters.size());
  std::sort(out->waiters.begin(), out->waiters.end(),
            [](const WaiterSnapshot& a, const WaiterSnapshot& b) { return a.ticket < b.ticket; });
  const GsLedgerTermination* ring = lf::Terminations(base);
  for (uint64_t n = h.terminations > GS_LEDGER_TERMINATION_SLOTS ? h.terminations - GS_LEDGER_TERMINATION_SLOTS + 1 : 1;
       n <= h.terminations; ++n) {
    const GsLedgerTermination& r = ring[(n - 1) % GS_LEDGER_TERMINATION_SLOTS];
    if (r.sequence != n) continue;  // being rewritten
    TerminationSnapshot t;
    t.sequence = r.sequence;
    t.unix_ns = r.unix_ns;
    t.victim = r.victim;
    t.requester = r.requester;
    t.reason = r.reason;
    t.victim_priority = r.victim_priority;
    t.requester_priority = r.requester_priority;
    t.victim_used_bytes = r.victim_used_bytes;
    t.victim_burst_bytes = r.victim_burst_bytes;
    t.victim_idle_ns = r.victim_idle_ns;
    t.requester_bytes = r.requester_bytes;
    out->recent_terminations.push_back(std::move(t));
  }
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants[i];
    if (t.state != GS_SLOT_ACTIVE) continue;
    TenantSnapshot ts;
    ts.slot = i;
    ts.name = t.name;
    ts.request_bytes = t.request_bytes;
    ts.asked_request_bytes = t.asked_request_bytes;
    ts.limit_bytes = t.limit_bytes;
    ts.used_bytes = t.used_bytes & ~GS_TENANT_USED_FROZEN;
    ts.burst_bytes = BurstOf(ts.used_bytes, ts.request_bytes);
    ts.oom_denials = t.oom_denials;
    ts.best_effort = (t.flags & GS_TENANT_BEST_EFFORT) != 0;
    ts.resolver = static_cast<ResolverKind>(t.resolver);
    ts.priority = t.priority;
    ts.idle_timeout_ns = t.idle_timeout_ns;
    ts.kill_grace_ns = t.kill_grace_ns;
    ts.terminate_requested = (t.terminate & GS_TERMINATE_REQUESTED) != 0;
    ts.terminate_reason = static_cast<uint32_t>((t.terminate >> 32) & 0x7fffffffu);
    ts.terminate_requester = static_cast<uint32_t>(t.terminate & 0xffffffffu);
    ts.terminate_unix_ns = t.terminate_unix_ns;
    ts.wait_ns_total = t.wait_ns_total;
    ts.waits = t.waits;
    ts.terminations_total = t.terminations;
    ts.sm_ask = {t.sm_asked_kind, t.sm_asked};
    std::memcpy(ts.sm_mask.words, t.sm_mask, sizeof ts.sm_mask.words);
    ts.sm_granted = t.sm_granted;
    ts.sm_flags = t.sm_flags;
    ts.compute_share_bp = t.compute_share_bp;
    ts.compute_flags = t.compute_flags;
    ts.compute_gpu_ns = t.compute_gpu_ns;
    ts.compute_throttled_ns = t.compute_throttled_ns;
    ts.compute_turns = t.compute_turns;
    ts.compute_express_ns = t.compute_express_ns;
    ts.compute_vtime = t.compute_vtime;
    if (t.compute_window_start_ns != 0) {
      // The previous full bucket (when there was one) and the current one.
      const uint64_t in_current = now > t.compute_window_start_ns ? now - t.compute_window_start_ns : 0;
      const bool has_previous = t.compute_window_gpu_ns[1] != 0 || t.compute_window_throttled_ns[1] != 0;
      ts.compute_recent_window_ns = in_current + (has_previous ? GS_COMPUTE_WINDOW_NS : 0);
      ts.compute_recent_gpu_ns = t.compute_window_gpu_ns[0] + t.compute_window_gpu_ns[1];
      ts.compute_recent_throttled_ns = t.compute_window_throttled_ns[0] + t.compute_window_throttled_ns[1];
    }
    ts.swap_quantum_ns = t.swap_quantum_ns;
    ts.swap_ask_bytes = t.swap_ask_bytes;
    ts.swap_turn_age_ns = now > t.swap_turn_ns ? now - t.swap_turn_ns : 0;
    ts.swaps_out = t.swaps_out;
    ts.swap_out_bytes = t.swap_out_bytes;
    ts.swap_out_ns = t.swap_out_ns;
    ts.swaps_in = t.swaps_in;
    ts.swap_in_bytes = t.swap_in_bytes;
    ts.swap_in_ns = t.swap_in_ns;
    ts.swap_wait_ns = t.swap_wait_ns;
    uint64_t latest_activity = 0;
    for (uint32_t j = 0; j < GS_LEDGER_PROCESS_SLOTS; ++j) {
      const GsLedgerProcess& p = processes[j];
      if (p.state != GS_SLOT_ACTIVE || p.tenant_index != i) continue;
      ProcessSnapshot ps;
      ps.slot = j;
      ps.pid = p.pid;
      ps.used_bytes = p.used_bytes;
      ps.peak_bytes = p.peak_bytes;
      ps.generation = p.generation;
      ps.start_unix_ns = p.start_unix_ns;
      ps.last_active_ns = p.last_active_ns;
      ps.waiting = p.waiting;
      ps.sm_mode = p.sm_mode;
      ts.compute_wanting += p.compute_wanting;
      if (h.compute_owner == j + 1) ts.compute_holds_turn = true;
      ps.swapped_out_bytes = p.swapped_out_bytes;
      ps.swappable_bytes = p.swappable_bytes;
      ps.staging_bytes = p.staging_bytes;
      ps.swap_state = p.swap_state;
      ps.context_bytes = p.context_bytes;
      latest_activity = std::max(latest_activity, p.last_active_ns);
      ps.container_id = p.container_id;
      ps.rejoined = p.rejoined;
      ps.alive = ProbeSlot(fd, lf::ProcessSlotOffset(j), GS_LEDGER_PROCESS_SLOT_BYTES) != Liveness::kDead;
      if (ps.alive && ps.rejoined != 0) out->rejoined_processes += 1;
      if (ps.alive) ts.swapped_out_bytes += ps.swapped_out_bytes;
      ts.processes.push_back(std::move(ps));
    }
    ts.idle_ns = now > latest_activity ? now - latest_activity : 0;
    out->sum_request_bytes += ts.request_bytes;
    out->sum_used_bytes += ts.used_bytes;
    out->sum_burst_bytes += ts.burst_bytes;
    out->tenants.push_back(std::move(ts));
  }
  const uint64_t promised = out->sum_request_bytes + out->sum_burst_bytes;
  out->burst_pool_free_bytes = out->usable_bytes > promised ? out->usable_bytes - promised : 0;
}

}  // namespace

bool ReadLedger(const std::string& path, LedgerSnapshot* out, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  const int fd = lf::OpenRegular(AT_FDCWD, path.c_str(), O_RDONLY, path, error);
  if (fd < 0) {
    if (errno == ENOENT) *error = "gpushare: cannot open the ledger " + path + ": " + std::strerror(ENOENT);
    return false;
  }
  bool ok = false;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *error = "gpushare: cannot stat the ledger " + path + ": " + std::strerror(errno);
  } else {
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    // Read no more than a ledger's worth: a huge foreign file is refused by its header alone.
    std::vector<char> buf(std::min<uint64_t>(size, GS_LEDGER_FILE_BYTES));
    for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
      if (!ReadAll(fd, &buf)) {
        *error = "gpushare: cannot read the ledger " + path + ": truncated or unreadable";
        break;
      }
      GsLedgerHeader header{};
      if (buf.size() >= sizeof header) std::memcpy(&header, buf.data(), sizeof header);
      if (std::string why = lf::CheckHeader(header, size); !why.empty()) {
        *error = "gpushare: refusing the ledger " + path + ": " + why;
        break;
      }
      if (std::string why = lf::CheckSlots(buf.data()); !why.empty()) {
        *error = "gpushare: refusing the ledger " + path + ": " + why;
        continue;  // maybe a slot caught mid-update: read again
      }
      Fill(buf.data(), fd, path, out);
      ok = true;
    }
  }
  close(fd);
  return ok;
}

std::vector<std::string> ListLedgers(const std::string& dir) {
  std::vector<std::string> paths;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return paths;
  static constexpr std::string_view kPrefix = "gpushare-", kSuffix = ".ledger";
  while (dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() != kPrefix.size() + 32 + kSuffix.size() || !name.starts_with(kPrefix) ||
        !name.ends_with(kSuffix))
      continue;
    const std::string_view hex = name.substr(kPrefix.size(), 32);
    if (!std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
      continue;
    paths.push_back((dir.empty() || dir.back() == '/' ? dir : dir + "/") + std::string(name));
  }
  closedir(d);
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace gpushare::quota
