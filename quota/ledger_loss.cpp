// SPDX-License-Identifier: Apache-2.0
// LedgerSession when its file is lost under it: truncated (its mapping faults, or its size
// changed), overwritten (its header, or this process's records, no longer what it wrote), removed
// or replaced (the path names another file, a link, or nothing).
//
// What the process holds is counted in held_ too, so nothing is lost with the file. Once lost:
//  - nothing in the old mapping is trusted or touched by the memory accounting;
//  - until it re-joins, allocations are granted only within what it held when the file was lost
//    (it may free and allocate again; it gets no more), frees go on;
//  - the watcher (CheckFile, every tick) re-joins the ledger now at the path, first replacing a
//    damaged file still there, with a successor session whose process slot is charged what this
//    process holds, marked `rejoined`; from then on every charge goes through the successor, and
//    ReconcileLocked keeps what the successor carries equal to held_.
// It says so once, on stderr: what happened, and whether it re-joined or why not.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "quota/ledger.h"
#include "quota/ledger_fault.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "src/log.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

constexpr uint64_t kRejoinRetryNs = 1'000'000'000ull;

}  // namespace

const char* DescribeRejoin(uint32_t rejoined) {
  switch (rejoined) {
    case 0: return "";
    case GS_REJOIN_TRUNCATED: return "truncated";
    case GS_REJOIN_OVERWRITTEN: return "overwritten";
    case GS_REJOIN_REMOVED: return "removed";
    case GS_REJOIN_REPLACED: return "replaced";
    default: return "lost";
  }
}

uint32_t LedgerSession::DamageSeen() const {
  if (ledger_fault::Faulted(fault_slot_)) return GS_REJOIN_TRUNCATED;
  const uint64_t held = Held();  // first, acquire: the shared words it counts are visible after
  const GsLedgerHeader& h = *header_;
  if (std::memcmp(h.magic, GS_LEDGER_MAGIC, sizeof h.magic) != 0 || LoadState(h.initialized) != GS_LEDGER_INITIALIZED ||
      LoadState(h.abi_version) != GS_LEDGER_ABI_VERSION || std::memcmp(h.uuid, uuid_, sizeof uuid_) != 0)
    return GS_REJOIN_OVERWRITTEN;
  if (LoadState(process_->state) != GS_SLOT_ACTIVE || Load(process_->generation) != generation_ ||
      LoadState(process_->tenant_index) != tenant_index_ || LoadState(tenant_->state) != GS_SLOT_ACTIVE)
    return GS_REJOIN_OVERWRITTEN;
  // Charges raise the shared words before held_, frees lower held_ first: neither word can be
  // below held_ unless someone else wrote it. A frozen tenant word is being recounted (or its
  // recounter died: the lock's repair recounts it).
  const uint64_t tenant_used = Load(tenant_->used_bytes);
  if (Load(process_->used_bytes) < held || ((tenant_used & GS_TENANT_USED_FROZEN) == 0 && tenant_used < held))
    return GS_REJOIN_OVERWRITTEN;
  return 0;
}

uint32_t LedgerSession::InspectFile() const {
  struct stat st {};
  // The file this session mapped first (whoever replaced it since), then the path.
  if (fstat(fd_, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_ &&
      static_cast<uint64_t>(st.st_size) != GS_LEDGER_FILE_BYTES)
    return GS_REJOIN_TRUNCATED;
  if (lstat(path_.c_str(), &st) != 0) return errno == ENOENT || errno == ENOTDIR ? GS_REJOIN_REMOVED : 0;
  if (st.st_dev != dev_ || st.st_ino != ino_) return GS_REJOIN_REPLACED;
  if (static_cast<uint64_t>(st.st_size) != GS_LEDGER_FILE_BYTES) return GS_REJOIN_TRUNCATED;
  return DamageSeen();
}

void LedgerSession::MarkLost(uint32_t reason) {
  uint32_t none = 0;
  if (!lost_reason_.compare_exchange_strong(none, reason, std::memory_order_acq_rel)) return;
  const uint64_t before = held_.fetch_or(kLostBit, std::memory_order_acq_rel);
  lost_budget_.store(before & ~kLostBit, std::memory_order_release);
}

bool LedgerSession::TryChargeLost(uint64_t bytes, uint64_t wait_timeout_ns, bool wait_on_retry_only) {
  if (LedgerSession* next = successor()) {
    if (!next->TryCharge(bytes, wait_timeout_ns, wait_on_retry_only)) return false;
    const std::lock_guard lock(lost_mu_);
    AddHeld(bytes);
    carried_ += bytes;
    return true;
  }
  // No ledger counts it now: only what it held when the file was lost.
  const uint64_t budget = lost_budget_.load(std::memory_order_acquire);
  uint64_t h = held_.load(std::memory_order_relaxed);
  do {
    const uint64_t held = h & ~kLostBit;
    if (held > budget || bytes > budget - held) return false;
  } while (!held_.compare_exchange_weak(h, h + bytes, std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

void LedgerSession::AdjustLost(uint64_t bytes, bool add) {
  uint64_t h = held_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t held = h & ~kLostBit;
    const uint64_t next = add ? h + bytes : h - (held > bytes ? bytes : held);
    if (held_.compare_exchange_weak(h, next, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  if (successor() == nullptr) return;
  const std::lock_guard lock(lost_mu_);
  ReconcileLocked();
}

void LedgerSession::ReconcileLocked() {
  LedgerSession* next = successor();
  if (next == nullptr) return;
  // carried_ never exceeds what the successor holds for us (it also has grants being booked),
  // so the uncharge is never clamped.
  const uint64_t held = Held();
  if (held > carried_) next->ForceCharge(held - carried_);
  if (held < carried_) next->Uncharge(carried_ - held);
  carried_ = held;
}

void LedgerSession::CheckFile() {
  const ErrnoKeeper keep_errno;
  if (!Lost()) {
    const uint32_t why = InspectFile();
    if (why == 0) return;
    MarkLost(why);
  }
  if (lost_reason() == GS_REJOIN_TRUNCATED && !ledger_fault::Faulted(fault_slot_)) {
    // Seen before any access faulted: zeros now, so that none does (a longer file maps whole).
    struct stat st {};
    if (fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) < GS_LEDGER_FILE_BYTES)
      ledger_fault::Abandon(fault_slot_);
  }
  if (LedgerSession* next = successor()) {
    next->CheckFile();
    const std::lock_guard lock(lost_mu_);
    ReconcileLocked();
    return;
  }
  Rejoin();
}

void LedgerSession::Rejoin() {
  const uint64_t now = lf::NowMonotonicNs();
  if (now < next_rejoin_ns_) return;
  next_rejoin_ns_ = now + kRejoinRetryNs;
  const uint32_t reason = lost_reason();
  const std::string what = "gpushare: the ledger " + path_ + " was " + DescribeRejoin(reason) +
                           " under this process (pid " + std::to_string(getpid()) + ", tenant '" + config_.name + "')";
  // The memory it holds must be counted even where its request no longer fits.
  TenantConfig rejoining = config_;
  rejoining.best_effort = true;
  std::string error;
  std::unique_ptr<LedgerSession> next =
      OpenSession(dir_, uuid_, measured_usable_bytes_, rejoining, &error, measured_total_bytes_, reason);
  if (next == nullptr) {
    if (error != rejoin_error_) {
      rejoin_error_ = error;
      const std::string why = error.rfind("gpushare: ", 0) == 0 ? error.substr(10) : error;
      fmt::print(stderr, "{}: it keeps the {} bytes it holds and is granted no more until it can re-join ({}; "
                 "retried every second)\n", what, Held(), why);
      std::fflush(stderr);
    }
    return;
  }
  const bool degraded = next->best_effort() && !config_.best_effort && config_.request_bytes > 0;
  uint64_t carried = 0;
  {
    const std::lock_guard lock(lost_mu_);
    carried_ = 0;
    carried = Held();
    next->ForceCharge(carried);
    carried_ = carried;
    successor_.store(next.release(), std::memory_order_release);
  }
  // Re-joined the very file (only this process's records in it were overwritten): the old slot
  // stays ours (its lock keeps others from claiming it, and compute still writes there) but must
  // not count twice, so it is emptied and the totals recounted from the slots.
  if (successor()->dev_ == dev_ && successor()->ino_ == ino_ && !ledger_fault::Faulted(fault_slot_)) {
    RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
    if (guard.held()) {
      A(process_->used_bytes).store(0, std::memory_order_release);
      ReapLocked(/*all_tenants=*/true);
    }
  }
  fmt::print(stderr, "{}: it re-joined the ledger now at that path, carrying the {} bytes it holds{}\n", what, carried,
             degraded ? "; its request could not be guaranteed again, so it runs best-effort (request 0)" : "");
  std::fflush(stderr);
}

}  // namespace gpushare::quota
