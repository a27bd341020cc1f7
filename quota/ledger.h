// The node-wide ledger: co-tenant processes (any container, any PID namespace) share one GPU with
// Kubernetes-style request/limit, through a memory-mapped file per GPU (include/gpushare/
// ledger_abi.h) that survives any of them being SIGKILLed at any instruction.
//
// This file defines:
//   TenantConfig, LedgerSession   this process's membership in one GPU's ledger
//   ChargeQuery, DecideCharge     the one decision for a charge past the tenant's request
//   LedgerSnapshot, ReadLedger,   a read-only view for tools (no GPU, no CUDA needed)
//   ListLedgers, LedgerPath
//
// Accounting: a tenant may always hold up to its request (held back for it: admission keeps
// sum(requests) <= usable). Past it, up to its limit, it draws from the burst pool
//   usable - sum(requests) - sum(other tenants' bursts),  burst = max(0, used - request).
//
// How to add a resolver (wait, priority, swap) for a refused burst: extend DecideCharge's verdict
// and handle it in LedgerSession::TryChargeSlow (ledger.cpp), which holds the ledger lock and
// has already reaped dead processes once before a refusal.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpushare/ledger_abi.h"

namespace gpushare::quota {

inline constexpr const char* kDefaultLedgerDir = "/var/run/gpushare";

struct TenantConfig {
  std::string name;  // < GS_LEDGER_NAME_BYTES bytes, no NUL
  uint64_t request_bytes = 0;
  uint64_t limit_bytes = 0;
  bool best_effort = false;  // admit with request 0 (and a warning) when the request does not fit
};

// Everything a charge decision sees, read under the ledger lock.
struct ChargeQuery {
  uint64_t bytes = 0;
  uint64_t tenant_used_bytes = 0;
  uint64_t request_bytes = 0;
  uint64_t limit_bytes = 0;
  uint64_t usable_bytes = 0;
  uint64_t sum_request_bytes = 0;    // every active tenant's, this one's included
  uint64_t others_burst_bytes = 0;   // sum of max(0, used - request) over the other tenants
  uint64_t others_used_bytes = 0;
};
enum class ChargeVerdict { kGrant, kOverLimit, kNoBurstRoom, kNoPhysicalRoom };
ChargeVerdict DecideCharge(const ChargeQuery& q);
const char* DescribeVerdict(ChargeVerdict verdict);
inline uint64_t BurstOf(uint64_t used, uint64_t request) { return used > request ? used - request : 0; }

// "<dir>/gpushare-<32 hex>.ledger"
std::string LedgerPath(const std::string& dir, const unsigned char uuid[16]);

class LedgerSession {
 public:
  // Opens (creating it if absent) the ledger of this GPU, validates it, joins the tenant (or
  // is admitted as a new one) and registers this process. nullptr with *error on refusal.
  // total_bytes 0 means usable_bytes; both are taken from the ledger when it already exists.
  static std::unique_ptr<LedgerSession> Open(const std::string& dir, const unsigned char uuid[16],
                                             uint64_t usable_bytes, const TenantConfig& tenant,
                                             std::string* error, uint64_t total_bytes = 0);
  ~LedgerSession();  // leaves: releases this process's usage, its slot, and the tenant if last
  LedgerSession(const LedgerSession&) = delete;
  LedgerSession& operator=(const LedgerSession&) = delete;

  // Check and reserve as one step across processes. Within the request: a few atomics on this
  // tenant's and process's slots; past it: the ledger lock.
  bool TryCharge(uint64_t bytes);
  // Memory the driver already handed out: charged even past the limit.
  void ForceCharge(uint64_t bytes);
  void Uncharge(uint64_t bytes);

  uint64_t tenant_used_bytes() const;
  uint64_t process_used_bytes() const;
  // What this tenant could allocate right now (<= limit - used).
  uint64_t available_bytes() const;
  uint64_t request_bytes() const { return request_bytes_; }
  uint64_t limit_bytes() const { return limit_bytes_; }
  uint64_t usable_bytes() const { return usable_bytes_; }
  bool best_effort() const { return best_effort_; }
  const std::string& path() const { return path_; }
  uint32_t tenant_index() const { return tenant_index_; }
  uint32_t process_index() const { return process_index_; }

  // Releases dead processes' usage (and tenants left with none); returns how many.
  size_t Reap();

 private:
  LedgerSession() = default;
  [[gnu::cold, gnu::noinline]] bool TryChargeSlow(uint64_t bytes);
  [[gnu::cold, gnu::noinline]] void AdjustSlow(uint64_t bytes, bool add);
  // Adds (or removes) bytes on the tenant/process pair; false if the tenant is frozen.
  bool AdjustAtomic(uint64_t bytes, bool add);
  bool Join(const TenantConfig& tenant, std::string* error);
  bool ClaimProcessSlot(std::string* error);
  ChargeQuery QueryFor(uint64_t bytes) const;
  size_t ReapLocked(bool all_tenants);
  void RepairLocked();
  void Leave();
  void RemoveTenantLocked(uint32_t index);

  friend class LedgerSessionTest;

  int fd_ = -1;
  void* map_ = nullptr;
  GsLedgerHeader* header_ = nullptr;
  GsLedgerTenant* tenants_ = nullptr;
  GsLedgerProcess* processes_ = nullptr;
  GsLedgerTenant* tenant_ = nullptr;
  GsLedgerProcess* process_ = nullptr;
  uint32_t tenant_index_ = 0;
  uint32_t process_index_ = UINT32_MAX;
  uint64_t request_bytes_ = 0;
  uint64_t limit_bytes_ = 0;
  uint64_t usable_bytes_ = 0;
  bool best_effort_ = false;
  std::string path_;
};

// Read-only view of one ledger file.
struct ProcessSnapshot {
  uint32_t slot = 0;
  uint32_t pid = 0;  // in the process's own PID namespace
  uint64_t used_bytes = 0;
  uint64_t peak_bytes = 0;
  uint64_t generation = 0;
  uint64_t start_unix_ns = 0;
  bool alive = false;  // its slot lock is held
  std::string container_id;
};
struct TenantSnapshot {
  uint32_t slot = 0;
  std::string name;
  uint64_t request_bytes = 0;
  uint64_t asked_request_bytes = 0;
  uint64_t limit_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t burst_bytes = 0;
  uint64_t oom_denials = 0;
  bool best_effort = false;
  std::vector<ProcessSnapshot> processes;
};
struct LedgerSnapshot {
  std::string path;
  std::string uuid;  // GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  uint32_t abi_version = 0;
  uint64_t total_bytes = 0;
  uint64_t usable_bytes = 0;
  uint64_t sum_request_bytes = 0;
  uint64_t sum_used_bytes = 0;
  uint64_t sum_burst_bytes = 0;
  uint64_t burst_pool_free_bytes = 0;  // usable - sum(requests) - sum(bursts), never negative
  uint64_t repairs = 0;
  uint64_t reaped_processes = 0;
  std::vector<TenantSnapshot> tenants;
};
// False with *error (naming the file) when it is unreadable, foreign or fails validation.
bool ReadLedger(const std::string& path, LedgerSnapshot* out, std::string* error);
// Paths of the ledger files in dir, sorted; empty when there are none or dir is unreadable.
std::vector<std::string> ListLedgers(const std::string& dir);

}  // namespace gpushare::quota
