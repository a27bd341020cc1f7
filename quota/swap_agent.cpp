// SPDX-License-Identifier: Apache-2.0
#include "quota/swap_agent.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "quota/activity.h"
#include "quota/device_quota.h"
#include "quota/swap_gate.h"
#include "quota/swap_staging.h"
#include "quota/swap_table.h"
#include "src/log.h"
#include "src/real_driver.h"

namespace gpushare::quota::swap {
namespace detail {
Stripe g_stripes[kStripes];
std::atomic<bool> g_enabled{false};
std::atomic<uint32_t> g_gate{0};
thread_local int t_stripe = 0;
thread_local int t_depth = 0;

int ChooseStripe() {
  static std::atomic<int> next{0};
  const int s = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  t_stripe = s + 1;
  return s;
}
}  // namespace detail

int64_t InFlight() {
  int64_t sum = 0;
  for (const detail::Stripe& s : detail::g_stripes) sum += s.inflight.load(std::memory_order_seq_cst);
  return sum;
}

namespace {

enum class State { kResident, kSwappingOut, kOut, kSwappingIn };

constexpr uint64_t kAskPollNs = 50'000'000;        // the agent rereads its asks at least this often
constexpr uint64_t kCaptureRetryNs = 20'000'000;   // a swap-out postponed by a capture is retried
constexpr uint64_t kDrainTimeoutNs = 30'000'000'000ull;  // gated calls that never leave: give up

struct Agent {
  std::mutex mu;
  std::condition_variable cv;
  State state = State::kResident;  // under mu
  bool charging = false;           // under mu: a swap-in waits for its charge (nothing mapped yet)
  bool moving = false;             // under mu: the agent moves memory out during that wait
  std::vector<DeviceQuota*> quotas;  // swap devices, fixed once the agent runs
  uint64_t staging_bytes = 0;
  Staging staging;                 // used under the swap table's lock, prepared by the agent
  std::atomic<int> captures{0};
  std::once_flag started;
};

Agent& TheAgent() {
  static Agent* agent = new Agent;  // leaked: gated calls may run during exit
  return *agent;
}

uint32_t LedgerState(State s) {
  switch (s) {
    case State::kResident: return GS_SWAP_RESIDENT;
    case State::kSwappingOut: return GS_SWAP_SWAPPING_OUT;
    case State::kOut: return GS_SWAP_OUT;
    case State::kSwappingIn: return GS_SWAP_SWAPPING_IN;
  }
  return GS_SWAP_RESIDENT;
}

// Under a.mu.
void SetStateLocked(Agent& a, State s) {
  a.state = s;
  detail::g_gate.store(s == State::kResident ? 0 : 1, std::memory_order_seq_cst);
  for (DeviceQuota* q : a.quotas)
    if (LedgerSession* session = q->session()) session->SetSwapState(LedgerState(s));
  a.cv.notify_all();
}

// Waits for the calls that passed the gate before it closed; false after kDrainTimeoutNs.
bool WaitForGatedCalls() {
  const uint64_t deadline = ActivityClockNs() + kDrainTimeoutNs;
  while (InFlight() != 0) {
    if (ActivityClockNs() > deadline) return false;
    usleep(50);
  }
  return true;
}

// Every context with swappable memory finishes its work; false (with the error logged) if one
// cannot (a lost context must not be unmapped under, and its memory is useless anyway).
bool Drain() {
  for (CUcontext ctx : Contexts()) {
    CUresult rc = Real().cuCtxPushCurrent_v2(ctx);
    if (rc == CUDA_SUCCESS) {
      rc = Real().cuCtxSynchronize();
      CUcontext popped = nullptr;
      Real().cuCtxPopCurrent_v2(&popped);
    }
    if (rc != CUDA_SUCCESS) {
      GS_LOG_ERROR("gpushare: swap-out: synchronizing context {} failed ({}); not swapping out",
                   static_cast<void*>(ctx), static_cast<int>(rc));
      return false;
    }
  }
  return true;
}

// Answers `ask` bytes on `quota`. Returns false when it must be retried later (a capture open).
bool SwapOut(Agent& a, DeviceQuota& quota, uint64_t ask) {
  LedgerSession* session = quota.session();
  State before;
  {
    std::lock_guard lock(a.mu);
    before = a.state;
    // A swap-in waiting for its charge has nothing running and nothing mapped yet: what is still
    // resident may go too (else two tenants each waiting for the other's memory would deadlock).
    // Once it maps, ask again later.
    if (before == State::kSwappingIn && !a.charging) return false;
    if (before != State::kSwappingIn) SetStateLocked(a, State::kSwappingOut);
    else a.moving = true;
  }
  const uint64_t start = ActivityClockNs();
  bool ok = true;
  if (before == State::kResident) {
    ok = WaitForGatedCalls();
    if (!ok) GS_LOG_ERROR("gpushare: swap-out: gated calls did not leave in {} s; not swapping out",
                          kDrainTimeoutNs / 1'000'000'000ull);
    if (ok && a.captures.load(std::memory_order_seq_cst) > 0) {
      // A capture is open: a drain would invalidate it. Reopen; the capture ends, then retry.
      std::lock_guard lock(a.mu);
      SetStateLocked(a, State::kResident);
      return false;
    }
    ok = ok && Drain();
  }
  const uint64_t moved = ok ? swap::SwapOut(quota, ask, a.staging) : 0;
  const uint64_t took = ActivityClockNs() - start;
  {
    std::lock_guard lock(a.mu);
    if (before != State::kSwappingIn) SetStateLocked(a, OutBytes(nullptr) > 0 ? State::kOut : State::kResident);
    a.moving = false;
    a.cv.notify_all();
  }
  // Answered with what moved, or with everything asked when nothing more can move.
  session->NoteSwappedOut(moved, took, moved > 0 ? moved : ask);
  if (moved > 0)
    GS_LOG_INFO("gpushare: device {}: swapped out {} bytes (asked {}) in {:.1f} ms ({:.1f} GB/s)",
                quota.ordinal(), moved, ask, took / 1e6, took > 0 ? moved / (took / 1e9) / 1e9 : 0.0);
  return true;
}

void PrepareStaging(Agent& a) {
  if (a.staging.prepared() || a.staging_bytes == 0) return;
  const std::vector<CUcontext> contexts = Contexts();
  if (contexts.empty()) return;  // no context yet to page-lock with
  a.staging.Prepare(a.staging_bytes, contexts.front());
  for (DeviceQuota* q : a.quotas)
    if (LedgerSession* s = q->session()) s->SetStagingBytes(a.staging.pinned_bytes());
}

[[noreturn]] void Run() {
  Agent& a = TheAgent();
  std::vector<uint64_t> postponed_until(a.quotas.size(), 0);
  for (;;) {
    PrepareStaging(a);
    uint32_t seq = 0;
    bool waited = false;
    for (size_t i = 0; i < a.quotas.size(); ++i) {
      DeviceQuota& q = *a.quotas[i];
      LedgerSession* session = q.session();
      uint32_t s = 0;
      const uint64_t ask = session->SwapAsk(&s);
      if (i == 0) seq = s;
      if (ask == 0 || ActivityClockNs() < postponed_until[i]) continue;
      if (!a.staging.prepared()) PrepareStaging(a);
      if (!SwapOut(a, q, ask)) postponed_until[i] = ActivityClockNs() + kCaptureRetryNs;
      waited = true;
    }
    if (waited) continue;  // look again at once: more may have been asked meanwhile
    if (a.quotas.size() == 1) {
      a.quotas[0]->session()->WaitForSwapAsk(seq, kAskPollNs);
    } else {
      usleep(kAskPollNs / 5000);
    }
  }
}

// The calling thread swaps every allocation back in. Under a.mu on entry and exit (unlocked in
// between); the state is kSwappingIn.
CUresult SwapInLocked(Agent& a, std::unique_lock<std::mutex>& lock) {
  a.charging = true;
  lock.unlock();
  const uint64_t start = ActivityClockNs();
  // Charge first, waiting as any burst does (the ledger asks others to swap out for it).
  std::vector<std::pair<DeviceQuota*, uint64_t>> charged;
  CUresult rc = CUDA_SUCCESS;
  for (DeviceQuota* q : QuotasWithMemoryOut()) {
    const uint64_t bytes = OutBytes(q);
    if (!q->TryChargeWaiting(bytes)) {
      GS_LOG_WARN("gpushare: device {}: swap-in of {} bytes refused (GPUSHARE_WAIT_TIMEOUT passed); the call "
                  "returns CUDA_ERROR_OUT_OF_MEMORY and the next one tries again", q->ordinal(), bytes);
      rc = CUDA_ERROR_OUT_OF_MEMORY;
      break;
    }
    charged.emplace_back(q, bytes);
  }
  const uint64_t charged_at = ActivityClockNs();
  {
    // The agent may be moving more out for another tenant meanwhile: wait for it to finish, and
    // keep it from starting again until the next swap-in.
    std::unique_lock relock(a.mu);
    a.cv.wait(relock, [&] { return !a.moving; });
    a.charging = false;
  }
  std::map<DeviceQuota*, uint64_t> budget(charged.begin(), charged.end());
  if (rc == CUDA_SUCCESS) {
    rc = SwapIn(a.staging, budget, [&](DeviceQuota& q, uint64_t bytes) {
      for (auto& [cq, c] : charged)
        if (cq == &q) c = c > bytes ? c - bytes : 0;  // what is left is handed back below
      const uint64_t now = ActivityClockNs();
      q.session()->NoteSwappedIn(bytes, now - charged_at, charged_at - start);
      GS_LOG_INFO("gpushare: device {}: swapped in {} bytes in {:.1f} ms after waiting {:.1f} ms for them",
                  q.ordinal(), bytes, (now - charged_at) / 1e6, (charged_at - start) / 1e6);
    });
  }
  for (auto& [q, left] : charged) q->Uncharge(left);  // freed meanwhile, or still out
  lock.lock();
  return rc;
}

}  // namespace

namespace detail {

CUresult WaitAtGate() {
  Agent& a = TheAgent();
  std::unique_lock lock(a.mu);
  for (;;) {
    switch (a.state) {
      case State::kResident:
        return CUDA_SUCCESS;
      case State::kOut: {
        SetStateLocked(a, State::kSwappingIn);
        const CUresult rc = SwapInLocked(a, lock);
        SetStateLocked(a, OutBytes(nullptr) > 0 ? State::kOut : State::kResident);
        if (rc != CUDA_SUCCESS) return rc;
        break;
      }
      case State::kSwappingOut:
      case State::kSwappingIn:
        a.cv.wait(lock);
        break;
    }
  }
}

}  // namespace detail

void AddQuota(DeviceQuota& quota, uint64_t staging_bytes) {
  Agent& a = TheAgent();
  a.quotas.push_back(&quota);
  a.staging_bytes += staging_bytes;
  detail::g_enabled.store(true, std::memory_order_relaxed);
}

void StartAgentThread() {
  Agent& a = TheAgent();
  if (a.quotas.empty()) return;
  std::call_once(a.started, [] { std::thread(Run).detach(); });
}

void NoteCaptureBegun() { TheAgent().captures.fetch_add(1, std::memory_order_seq_cst); }

void NoteCaptureEnded() {
  auto& c = TheAgent().captures;
  int n = c.load(std::memory_order_relaxed);
  while (n > 0 && !c.compare_exchange_weak(n, n - 1, std::memory_order_seq_cst)) {
  }
}

}  // namespace gpushare::quota::swap
