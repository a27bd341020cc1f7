// SPDX-License-Identifier: Apache-2.0
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
// Collisions: a burst refused for lack of room (kNoBurstRoom / kNoPhysicalRoom, never kOverLimit)
// goes to the tenant's resolver when the caller passes a wait timeout to TryCharge:
//   wait      waits (futex, FIFO by ticket) until frees let it fit, then retries
//             (quota/resolver_wait.cpp);
//   priority  first marks victims, tenants bursting past their request that are of lower
//             priority, or idle longer than the REQUESTER's idle_timeout_ns, then waits as above
//             for their deaths to be reaped (quota/resolver_priority.cpp).
//   swap      first asks victims, swap tenants bursting past their request whose quantum is
//             over (then tenants idle past the requester's idle_timeout_ns, wholly), to move
//             memory to host memory, then waits as above for their agents to release it
//             (quota/resolver_swap.cpp; the process side is quota/swap_*.cpp).
// How to add another resolver: handle it in LedgerSession::AttemptLocked (resolver_wait.cpp),
// which holds the ledger lock and has already reaped dead processes once before a refusal.
//
// A lost ledger (quota/ledger_loss.cpp): a session whose file is truncated, zeroed, removed or
// replaced under it keeps what its process holds (a process-local count, whatever happens to
// the file), grants nothing past it, says so once, and re-joins the ledger now at the path,
// carrying what it holds, so the accounting heals.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpushare/ledger_abi.h"
#include "sm_partition/slice.h"

namespace gpushare::quota {

inline constexpr const char* kDefaultLedgerDir = "/var/run/gpushare";

enum class ResolverKind : uint32_t {
  kNone = GS_RESOLVER_NONE,
  kWait = GS_RESOLVER_WAIT,
  kPriority = GS_RESOLVER_PRIORITY,
  kSwap = GS_RESOLVER_SWAP,
};
const char* ResolverName(ResolverKind resolver);  // "none", "wait", "priority", "swap"; "?" otherwise

enum class TerminationReason : uint32_t {
  kLowerPriority = GS_TERMINATE_LOWER_PRIORITY,
  kIdle = GS_TERMINATE_IDLE,
};
const char* DescribeTerminationReason(uint32_t reason);  // "lower priority", "idle"; "?" otherwise

// The clock of GsLedgerProcess.last_active_ns and of idleness: CLOCK_MONOTONIC in nanoseconds.
uint64_t ActivityClockNs();

struct TenantConfig {
  std::string name;  // < GS_LEDGER_NAME_BYTES bytes, no NUL
  uint64_t request_bytes = 0;
  uint64_t limit_bytes = 0;
  bool best_effort = false;  // admit with request 0 (and a warning) when the request does not fit
  // Every process of a tenant must agree on these (a mismatch refuses the join).
  ResolverKind resolver = ResolverKind::kNone;
  int32_t priority = 0;          // priority resolver: higher wins
  uint64_t idle_timeout_ns = 0;  // as a requester: a tenant idle longer may be a victim; 0 = never
  uint64_t kill_grace_ns = 0;    // as a victim: its watcher's SIGTERM to SIGKILL
  uint64_t swap_quantum_ns = 0;  // swap resolver: its turn before it may be swapped out again
  sm::SmAsk sm{};                // GPUSHARE_SM (every process of a tenant must agree too)
  uint32_t compute_share_bp = 0; // GPUSHARE_COMPUTE in basis points; 0: no share, never gated
  uint32_t compute_flags = 0;    // GS_COMPUTE_* (agreed too)
};

// What the priority resolver asked of this process's tenant (LedgerSession::TerminationRequested).
struct TerminationRequest {
  uint32_t requester_tenant = 0;  // the requester's tenant slot
  std::string requester;          // its name (read without the lock: for messages)
  TerminationReason reason_code = TerminationReason::kLowerPriority;
  const char* reason = "";        // DescribeTerminationReason
  uint64_t unix_ns = 0;           // when it was marked
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
  uint64_t others_used_bytes = 0;    // memory hidden from the ledger included (NoteHiddenMemory)
};
enum class ChargeVerdict { kGrant, kOverLimit, kNoBurstRoom, kNoPhysicalRoom };
ChargeVerdict DecideCharge(const ChargeQuery& q);
const char* DescribeVerdict(ChargeVerdict verdict);
inline uint64_t BurstOf(uint64_t used, uint64_t request) { return used > request ? used - request : 0; }
// Room in the burst pool and physical room: what a refused charge lacks, or what a victim's
// yield (an exit, a swap-out) gives back.
struct Room {
  uint64_t pool = 0;
  uint64_t physical = 0;
  bool Covers(const Room& need) const { return pool >= need.pool && physical >= need.physical; }
};
// What q's charge lacks (zero in both when it fits; the limit is not considered).
Room ShortfallOf(const ChargeQuery& q);

// The TPC map held in a ledger header (quota/ledger_sm.cpp); meaningful once sm_map_state is
// GS_SM_MAP_READY.
sm::TpcMap TpcMapOf(const GsLedgerHeader& h);

// What a shared context overhead was measured under (quota/ledger_context.cpp): another driver or
// MPS mode measures again.
struct ContextOverheadKey {
  int32_t driver_version = 0;  // cuDriverGetVersion
  bool mps = false;            // CU_DEVICE_ATTRIBUTE_MPS_ENABLED
};

// "<dir>/gpushare-<32 hex>.ledger"
std::string LedgerPath(const std::string& dir, const unsigned char uuid[16]);

class LedgerSession {
 public:
  // Opens (creating it if absent) the ledger of this GPU, validates it, joins the tenant (or
  // is admitted as a new one) and registers this process. nullptr with *error on refusal.
  // total_bytes 0 means usable_bytes; both are taken from the ledger when it already exists.
  // usable_bytes (and total_bytes) bound what the ledger's header says.
  static std::unique_ptr<LedgerSession> Open(const std::string& dir, const unsigned char uuid[16],
                                             uint64_t usable_bytes, const TenantConfig& tenant,
                                             std::string* error, uint64_t total_bytes = 0);
  ~LedgerSession();  // leaves: releases this process's usage, its slot, and the tenant if last
  LedgerSession(const LedgerSession&) = delete;
  LedgerSession& operator=(const LedgerSession&) = delete;

  // Check and reserve as one step across processes. Within the request: a few atomics on this
  // tenant's and process's slots; past it: the ledger lock. A burst refused for lack of room
  // (not past the limit) with wait_timeout_ns > 0 goes to the tenant's resolver (priority marks
  // victims) and waits for frees, FIFO among waiters, until granted or the timeout passes (false).
  // wait_on_retry_only: a thread's first refusal returns at once and only its retry (within
  // kRetryWindowNs) waits, so a caching allocator frees its own cache first (GPUSHARE_WAIT_MODE).
  bool TryCharge(uint64_t bytes, uint64_t wait_timeout_ns = 0, bool wait_on_retry_only = false);
  static constexpr uint64_t kRetryWindowNs = 5'000'000'000ull;
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

  // The driver refused memory the ledger would grant: `physical_free_bytes` is what the device
  // really has free now. The gap to the ledger's own free figure is memory no charge accounts
  // for (the driver's, a process without gpushare, a dead process not yet torn down); it counts
  // as used by others for kHiddenTtlNs, so colliding bursts go to the resolvers instead of the
  // driver's out-of-memory. Returns the gap.
  uint64_t NoteHiddenMemory(uint64_t physical_free_bytes);
  static constexpr uint64_t kHiddenTtlNs = 500'000'000ull;

  // This process was active at now_ns (ActivityClockNs): one relaxed store into its slot.
  void NoteActivity(uint64_t now_ns);

  // The watcher's check, every tick (quota/ledger_loss.cpp): whether the file is still the one
  // this session mapped, whole and with this process's records in it; once it is lost, re-joins
  // the ledger at the path (retrying every second). Cheap: one lstat and a few loads.
  void CheckFile();
  // Why the file was lost (GS_REJOIN_*), 0 while it is not.
  uint32_t lost_reason() const { return lost_reason_.load(std::memory_order_acquire); }
  // The session that carries this process's memory in the ledger now at the path, once re-joined.
  LedgerSession* successor() const { return successor_.load(std::memory_order_acquire); }
  // Whether the priority resolver marked this process's tenant as a victim: one load of its
  // tenant slot, no lock (the requester's name is read only when marked).
  bool TerminationRequested(TerminationRequest* out) const;
  // SM slices (quota/ledger_sm.cpp). The GPU's TPC map as cached in the header, when one was
  // measured under driver_version; false when none is (or another driver's is).
  bool CachedTpcMap(int32_t driver_version, sm::TpcMap* out) const;
  // Publishes a measured map (under the lock); a valid map already there for this driver wins
  // and is returned in *map instead.
  void PublishTpcMap(sm::TpcMap* map, uint64_t took_ns);
  // This tenant's slice, under the lock: the one its first process chose (adopted when the map
  // is the same), else a new one from the bits no other active tenant holds. False with *error
  // when the slice cannot be disjoint and overlap is not allowed (or the ask cannot be met).
  bool AssignSmSlice(const sm::TpcMap& map, bool allow_overlap, sm::SliceChoice* out, std::string* error,
                     sm::Placement placement = sm::Placement::kGpc);
  // The tenant asked for a slice but runs on every SM (GPUSHARE_SM_FALLBACK=unconfined, profiling).
  void MarkSmUnconfined();
  // How this process confines its kernels (GS_SM_MODE_*), for gpushare-smi.
  void SetProcessSmMode(uint32_t mode);
  // Context overhead (quota/ledger_context.cpp). The figure published for this key, unchecked
  // (callers bound it); false when none is (or another driver's or MPS mode's is).
  bool CachedContextOverhead(const ContextOverheadKey& key, uint64_t* bytes) const;
  // Publishes a lone measurement under the lock unless one for this key is there already (the
  // first wins). False when the lock could not be had.
  bool PublishContextOverhead(const ContextOverheadKey& key, uint64_t bytes);
  // The measuring turn: this open file's OFD lock on the header's context_overhead_* fields, so
  // that processes starting together measure one at a time. False when another process holds
  // it. Released by ReleaseOverheadTurn, or by the kernel when the process dies.
  bool TryHoldOverheadTurn();
  void ReleaseOverheadTurn();
  // This process's live contexts' own memory (GsLedgerProcess.context_bytes), for the tools.
  void AddProcessContextBytes(uint64_t bytes);
  void SubtractProcessContextBytes(uint64_t bytes);
  // Compute shares (compute/turn.cpp): the mapping, the lock and slot liveness.
  GsLedgerHeader* header() const { return header_; }
  GsLedgerTenant* tenant_slots() const { return tenants_; }
  GsLedgerProcess* process_slots() const { return processes_; }
  GsLedgerTenant* tenant() const { return tenant_; }
  GsLedgerProcess* process() const { return process_; }
  // Runs fn under the ledger lock (repairing first after a holder's death); false when the lock
  // could not be had (a stopped holder).
  bool WithLock(const std::function<void()>& fn);
  // Whether process slot `slot` belongs to a live process (this process's own slot is alive).
  bool ProcessAlive(uint32_t slot) const;
  // Swap (quota/resolver_swap.cpp), for this process's agent. What requesters ask this tenant
  // to swap out (0: nothing), and the futex word's value read before it.
  uint64_t SwapAsk(uint32_t* seq) const;
  // Sleeps until the ask word moves past `seq` or timeout_ns passes.
  void WaitForSwapAsk(uint32_t seq, uint64_t timeout_ns) const;
  // This process moved `bytes` out (already uncharged) in `ns`; the ask is lowered by
  // `answered` (what it freed, or all it saw when it has nothing more to give).
  void NoteSwappedOut(uint64_t bytes, uint64_t ns, uint64_t answered);
  // It brought `bytes` back (charged again) in `ns`, after waiting `wait_ns` for the memory;
  // its tenant's turn begins.
  void NoteSwappedIn(uint64_t bytes, uint64_t ns, uint64_t wait_ns);
  void SetSwapState(uint32_t state);               // GS_SWAP_*
  // Its resident VMM-backed bytes (what it could move out) and its bytes out now.
  void SetSwapBytes(uint64_t swappable_bytes, uint64_t out_bytes);
  void SetStagingBytes(uint64_t bytes);            // pinned host staging it holds
  uint64_t swap_quantum_ns() const { return swap_quantum_ns_; }
  ResolverKind resolver() const { return resolver_; }
  int32_t priority() const { return priority_; }
  uint64_t idle_timeout_ns() const { return idle_timeout_ns_; }
  uint64_t kill_grace_ns() const { return kill_grace_ns_; }

 private:
  struct WaitState;
  enum class Attempt { kGranted, kRefused, kWait, kLost };
  LedgerSession() = default;
  static std::unique_ptr<LedgerSession> OpenSession(const std::string& dir, const unsigned char uuid[16],
                                                    uint64_t usable_bytes, const TenantConfig& tenant,
                                                    std::string* error, uint64_t total_bytes, uint32_t rejoin);
  // ledger_loss.cpp: the lost ledger.
  bool Lost() const { return (held_.load(std::memory_order_relaxed) & kLostBit) != 0; }
  uint64_t Held() const { return held_.load(std::memory_order_acquire) & ~kLostBit; }
  void AddHeld(uint64_t bytes) { held_.fetch_add(bytes, std::memory_order_release); }
  // Lowers held_ first on a free (so held_ never exceeds the slot's copy); false once lost.
  bool LowerHeld(uint64_t bytes);
  // Why the mapping no longer holds this process's records (GS_REJOIN_*); 0 when it does.
  uint32_t DamageSeen() const;
  uint32_t InspectFile() const;
  void MarkLost(uint32_t reason);
  [[gnu::cold, gnu::noinline]] bool TryChargeLost(uint64_t bytes, uint64_t wait_timeout_ns, bool wait_on_retry_only);
  [[gnu::cold, gnu::noinline]] void AdjustLost(uint64_t bytes, bool add);
  void ReconcileLocked();
  void Rejoin();
  // resolver_wait.cpp: the locked path, the waiter table and the futex.
  [[gnu::cold, gnu::noinline]] bool TryChargeSlow(uint64_t bytes, uint64_t wait_timeout_ns,
                                                  bool wait_on_retry_only);
  Attempt AttemptLocked(uint64_t bytes, WaitState* w);
  bool CommitLocked(const ChargeQuery& q);
  bool EnqueueLocked(WaitState* w);
  void DequeueLocked(WaitState* w);
  void EndWaitLocked(WaitState* w, bool granted);
  // Whether a burst must yield to an older waiter (one that fits now, or one waiting too long).
  bool MustYieldLocked(uint64_t ticket);
  void DropStaleWaitersLocked();
  bool WaiterPlausibleLocked(const GsLedgerWaiter& e, uint64_t now) const;
  // Wakes waiters when there are any: after anything that lowers use or releases a request.
  void NotifyFreed() {
    if (__atomic_load_n(&header_->waiting, __ATOMIC_SEQ_CST) != 0) WakeWaiters();
  }
  [[gnu::cold, gnu::noinline]] void WakeWaiters();
  // resolver_priority.cpp: marks victims for a refused burst; true when some are pending (marked,
  // by anyone, and not yet gone).
  bool MarkVictimsLocked(const ChargeQuery& q);
  // resolver_swap.cpp: asks victims to swap out for a refused burst; true when some asks are
  // pending (made, by anyone, and not yet answered).
  bool AskSwapVictimsLocked(const ChargeQuery& q);
  uint64_t TenantIdleNsLocked(uint32_t tenant, uint64_t now_ns) const;
  [[gnu::cold, gnu::noinline]] void AdjustSlow(uint64_t bytes, bool add);
  // Adds (or removes) bytes on the tenant/process pair; false if the tenant is frozen.
  bool AdjustAtomic(uint64_t bytes, bool add);
  bool Join(const TenantConfig& tenant, std::string* error);
  void AdoptResolver(const TenantConfig& tenant);
  bool ClaimProcessSlot(std::string* error);
  ChargeQuery QueryFor(uint64_t bytes) const { return QueryFor(tenant_index_, bytes); }
  ChargeQuery QueryFor(uint32_t tenant, uint64_t bytes) const;
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
  ResolverKind resolver_ = ResolverKind::kNone;
  int32_t priority_ = 0;
  uint64_t idle_timeout_ns_ = 0;
  uint64_t kill_grace_ns_ = 0;
  uint64_t swap_quantum_ns_ = 0;
  std::string path_;
  // What opened it, to re-join after a loss.
  std::string dir_;
  unsigned char uuid_[16] = {};
  TenantConfig config_;
  uint64_t measured_usable_bytes_ = 0;
  uint64_t measured_total_bytes_ = 0;
  dev_t dev_ = 0;  // the file mapped
  ino_t ino_ = 0;
  uint64_t generation_ = 0;  // of this process's slot
  int fault_slot_ = -1;      // quota/ledger_fault.h
  // What this process holds, counted here too (the slot's used_bytes is the shared copy, lost
  // with the file); kLostBit once the file is lost.
  static constexpr uint64_t kLostBit = 1ull << 63;
  std::atomic<uint64_t> held_{0};
  std::atomic<uint32_t> lost_reason_{0};
  std::atomic<uint64_t> lost_budget_{0};  // lost and not re-joined: the most it may hold (what it held)
  std::mutex lost_mu_;                    // lost: held_ against what successor_ carries
  uint64_t carried_ = 0;                  // of held_, what successor_ was charged (under lost_mu_)
  std::atomic<LedgerSession*> successor_{nullptr};  // owned; never replaced once set
  uint64_t next_rejoin_ns_ = 0;           // watcher only
  std::string rejoin_error_;              // watcher only: the last failure, said once
};

// What happened to the file a re-joined process came from: "truncated", "overwritten",
// "removed", "replaced"; "" for 0.
const char* DescribeRejoin(uint32_t rejoined);

// Read-only view of one ledger file.
struct ProcessSnapshot {
  uint32_t slot = 0;
  uint32_t pid = 0;  // in the process's own PID namespace
  uint64_t used_bytes = 0;
  uint64_t peak_bytes = 0;
  uint64_t generation = 0;
  uint64_t start_unix_ns = 0;
  uint64_t last_active_ns = 0;  // ActivityClockNs
  uint32_t waiting = 0;         // its threads waiting for memory
  uint32_t sm_mode = 0;         // GS_SM_MODE_*
  uint64_t swapped_out_bytes = 0;  // in host staging now
  uint64_t swappable_bytes = 0;    // resident and VMM-backed
  uint64_t staging_bytes = 0;      // pinned host staging held
  uint32_t swap_state = 0;         // GS_SWAP_*
  uint64_t context_bytes = 0;      // its live contexts' own memory, within used_bytes
  bool alive = false;  // its slot lock is held
  uint32_t rejoined = 0;  // GS_REJOIN_*: it carried its memory here from a ledger file lost under it
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
  ResolverKind resolver = ResolverKind::kNone;
  int32_t priority = 0;
  uint64_t idle_timeout_ns = 0;
  uint64_t kill_grace_ns = 0;
  uint64_t idle_ns = 0;  // since its latest activity (its processes' last_active_ns), at the read
  bool terminate_requested = false;  // marked by the priority resolver
  uint32_t terminate_reason = 0;     // GS_TERMINATE_*
  uint32_t terminate_requester = 0;  // tenant slot
  uint64_t terminate_unix_ns = 0;
  uint64_t wait_ns_total = 0;       // time its allocations spent waiting
  uint64_t waits = 0;               // its waits that ended
  uint64_t terminations_total = 0;  // times the priority resolver marked it
  sm::SmAsk sm_ask;                 // GPUSHARE_SM; kind GS_SM_ASK_NONE without a slice
  sm::TpcMask sm_mask;              // the TPC bits it runs on (none: every SM)
  uint32_t sm_granted = 0;          // SMs behind them
  uint32_t sm_flags = 0;            // GS_SM_OVERLAPS, GS_SM_UNCONFINED
  uint32_t compute_share_bp = 0;    // GPUSHARE_COMPUTE in basis points; 0: none
  uint32_t compute_flags = 0;       // GS_COMPUTE_*
  uint64_t compute_gpu_ns = 0;      // GPU time received in turns, in all
  uint64_t compute_throttled_ns = 0;  // time its launches waited at the gate, in all
  uint64_t compute_turns = 0;
  uint64_t compute_express_ns = 0;  // of compute_gpu_ns, what it got launching without the turn
  uint64_t compute_vtime = 0;
  // Over the recent window (the previous full GS_COMPUTE_WINDOW_NS bucket and the current one).
  uint64_t compute_recent_gpu_ns = 0;
  uint64_t compute_recent_throttled_ns = 0;
  uint64_t compute_recent_window_ns = 0;  // the span those two cover
  bool compute_holds_turn = false;
  uint32_t compute_wanting = 0;     // its processes' threads waiting at the gate now
  // Swap: its quantum, what it is asked to give, and its records.
  uint64_t swap_quantum_ns = 0;
  uint64_t swap_ask_bytes = 0;
  uint64_t swap_turn_age_ns = 0;    // since its current turn began, at the read
  uint64_t swapped_out_bytes = 0;   // its live processes' bytes in host staging now
  uint64_t swaps_out = 0, swap_out_bytes = 0, swap_out_ns = 0;
  uint64_t swaps_in = 0, swap_in_bytes = 0, swap_in_ns = 0, swap_wait_ns = 0;
  std::vector<ProcessSnapshot> processes;
};
struct WaiterSnapshot {
  uint64_t ticket = 0;
  uint64_t bytes = 0;
  uint32_t process_slot = 0;
  uint32_t tenant_slot = 0;
  uint64_t waited_ns = 0;  // so far, at the read
};
struct TerminationSnapshot {
  uint64_t sequence = 0;  // 1 for the first mark ever
  uint64_t unix_ns = 0;
  std::string victim, requester;
  uint32_t reason = 0;  // GS_TERMINATE_*
  int32_t victim_priority = 0, requester_priority = 0;
  uint64_t victim_used_bytes = 0, victim_burst_bytes = 0, victim_idle_ns = 0, requester_bytes = 0;
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
  uint64_t hidden_bytes = 0;           // in use outside every charge, while still current
  uint64_t repairs = 0;
  uint64_t reaped_processes = 0;
  uint32_t waiting = 0;       // threads waiting for memory (the waiters below)
  uint32_t rejoined_processes = 0;  // live processes that carried their memory here from a lost file
  uint64_t terminations = 0;  // marks ever recorded
  uint64_t swaps_out = 0, swap_out_bytes = 0, swaps_in = 0, swap_in_bytes = 0;  // every tenant
  // A lone CUDA context's own memory as measured by the first process that could (0: none yet).
  uint64_t context_overhead_bytes = 0;
  int32_t context_overhead_driver = 0;  // cuDriverGetVersion then
  bool context_overhead_mps = false;    // measured under MPS
  uint64_t context_overhead_unix_ns = 0;
  bool sm_map_ready = false;  // the TPC map was measured (sm_map)
  sm::TpcMap sm_map;
  uint64_t sm_map_ns = 0;     // how long measuring it took
  uint64_t compute_epoch = 0;           // turns granted
  uint64_t compute_dead_handovers = 0;  // turns taken back from dead holders
  uint64_t compute_preemptions = 0;
  std::vector<TenantSnapshot> tenants;
  std::vector<WaiterSnapshot> waiters;                     // by ticket
  std::vector<TerminationSnapshot> recent_terminations;    // the last <= 32, oldest first
};
// False with *error (naming the file) when it is unreadable, foreign or fails validation.
bool ReadLedger(const std::string& path, LedgerSnapshot* out, std::string* error);
// Paths of the ledger files in dir, sorted; empty when there are none or dir is unreadable.
std::vector<std::string> ListLedgers(const std::string& dir);

}  // namespace gpushare::quota
