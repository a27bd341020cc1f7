// SPDX-License-Identifier: Apache-2.0
#include "compute/gate.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "src/futex.h"

namespace gpushare::compute {
namespace {

// A waiter re-checks the holder's liveness this often (a SIGKILLed holder wakes nobody).
constexpr uint64_t kLivenessCheckNs = 20'000'000;
// Upper bound of one futex sleep of a waiter, and of the keeper's sleep while others wait.
constexpr uint64_t kWaitSliceNs = 5'000'000;
constexpr uint64_t kKeeperPollNs = 200'000;
constexpr uint64_t kKeeperIdlePollNs = 2'000'000;  // alone with the turn: only accounting waits on it
constexpr useconds_t kDrainPollUs = 50;
constexpr useconds_t kExpressPollUs = 100;  // how late an express burst's end may be seen (charged)
constexpr uint64_t kExpressAccrueNs = 1'000'000;  // a running express burst is charged this often

}  // namespace

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Gate::Gate(std::unique_ptr<Turn> turn, std::unique_ptr<Tracker> tracker, const GateConfig& config)
    : turn_(std::move(turn)), tracker_(std::move(tracker)), config_(config) {}

Gate::~Gate() {
  stop_.store(true);
  if (keeper_.joinable()) keeper_.join();
}

void Gate::StartKeeper() { keeper_ = std::thread([this] { Keep(); }); }

void Gate::EnterSlow() {
  const int saved_errno = errno;
  in_gate_.fetch_sub(1, std::memory_order_seq_cst);
  uint64_t start = MonotonicNs();
  bool wanting = false;
  uint64_t last_arbitration = 0;
  for (;;) {
    const uint32_t seq = turn_->Seq();
    const uint64_t now = MonotonicNs();
    const uint64_t strict_until = strict_until_ns_.load(std::memory_order_acquire);
    if (now < strict_until) {  // GPUSHARE_COMPUTE_STRICT: sitting out the rest of the period
      if (wanting) {  // not a candidate meanwhile
        turn_->EndWant(now - start);
        wanting = false;
        start = strict_until;  // the pause is the tenant's own cap, not throttling by others
      }
      const uint64_t ns = strict_until - now;
      timespec ts{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
      nanosleep(&ts, nullptr);
      continue;
    }
    in_gate_.fetch_add(1, std::memory_order_seq_cst);
    if (turn_->Held() && !closing_.load(std::memory_order_seq_cst)) {
      // The turn's GPU time starts at its first launch, not at the grant: the futex wake-up
      // between the two is nobody's GPU time.
      uint64_t unset = 0;
      if (turn_started_ns_.compare_exchange_strong(unset, MonotonicNs(), std::memory_order_acq_rel)) WakeKeeper();
      break;
    }
    if (!turn_->Held() && turn_->MayExpress(now)) {
      uint64_t unset = 0;
      if (express_since_ns_.compare_exchange_strong(unset, now, std::memory_order_acq_rel)) WakeKeeper();
      break;
    }
    in_gate_.fetch_sub(1, std::memory_order_seq_cst);
    if (!wanting) {
      turn_->BeginWant(now);
      wanting = true;
    }
    // Nobody holds the turn (take it), or the holder may have died (take it back).
    if (turn_->Free() || now - last_arbitration >= kLivenessCheckNs) {
      last_arbitration = now;
      turn_->Arbitrate(now);
      continue;
    }
    turn_->WaitSeq(seq, kWaitSliceNs);
  }
  if (wanting) turn_->EndWant(MonotonicNs() - start);
  errno = saved_errno;
}

void Gate::WakeKeeper() {
  keeper_word_.fetch_add(1, std::memory_order_release);
  FutexWake(&keeper_word_, 1, FutexScope::kPrivate);
}

bool Gate::SettleExpress() {
  uint64_t since = express_since_ns_.load(std::memory_order_acquire);
  if (since == 0) return true;
  const uint64_t launches = launches_.load(std::memory_order_acquire);
  const bool drained = in_gate_.load(std::memory_order_seq_cst) == 0 && tracker_->Drained();
  const uint64_t now = MonotonicNs();
  // A launch that slipped in after the check belongs to the burst, which goes on.
  if (drained && launches == launches_.load(std::memory_order_acquire) &&
      in_gate_.load(std::memory_order_seq_cst) == 0) {
    if (express_since_ns_.compare_exchange_strong(since, 0, std::memory_order_acq_rel))
      turn_->ChargeExpress(since, now);
    return true;
  }
  // A burst that never drains (a busy tenant that was light a moment ago) is charged as it
  // goes, so its recent use rises and it soon waits for turns again.
  if (now - since >= kExpressAccrueNs && express_since_ns_.compare_exchange_strong(since, now, std::memory_order_acq_rel))
    turn_->ChargeExpress(since, now);
  return false;
}

void Gate::HandOver(uint64_t drained_ns, bool preempted) {
  closing_.store(true, std::memory_order_seq_cst);
  while (in_gate_.load(std::memory_order_seq_cst) != 0) usleep(kDrainPollUs);
  while (!tracker_->Drained()) usleep(kDrainPollUs);
  const uint64_t end = drained_ns != 0 ? drained_ns : MonotonicNs();
  const uint64_t started = turn_started_ns_.exchange(0, std::memory_order_acq_rel);
  const uint64_t pause = turn_->Release(end, started, preempted);
  // A turn without a launch (granted while the tenant sat out) is no reason to sit out longer.
  if (pause != 0 && started != 0) strict_until_ns_.store(end + pause, std::memory_order_release);
  closing_.store(false, std::memory_order_seq_cst);
}

void Gate::Keep() {
  tracker_->OnKeeperThread();
  uint64_t seen_launches = launches_.load(std::memory_order_relaxed);
  uint64_t last_busy = MonotonicNs();
  while (!stop_.load(std::memory_order_relaxed)) {
    if (!turn_->Held()) {
      const uint32_t word = keeper_word_.load(std::memory_order_acquire);
      if (!SettleExpress()) {
        usleep(kExpressPollUs);
        continue;
      }
      if (!turn_->Held()) FutexWait(&keeper_word_, word, kWaitSliceNs, FutexScope::kPrivate);
      last_busy = MonotonicNs();
      seen_launches = launches_.load(std::memory_order_relaxed);
      continue;
    }
    // An express burst still running when the turn came: charged up to now, the turn from here.
    if (const uint64_t since = express_since_ns_.exchange(0, std::memory_order_acq_rel); since != 0)
      turn_->ChargeExpress(since, MonotonicNs());
    const uint32_t kick = turn_->Kick();
    const uint64_t now = MonotonicNs();
    const uint64_t launches = launches_.load(std::memory_order_relaxed);
    const bool launched = launches != seen_launches || in_gate_.load(std::memory_order_relaxed) != 0;
    seen_launches = launches;
    if (launched || !tracker_->Drained()) last_busy = now;
    bool others = false;
    const YieldVerdict verdict = turn_->Check(now, &others);
    // GPUSHARE_COMPUTE_STRICT: even alone, a turn lasts one quantum, then the tenant sits out.
    const bool strict_over = turn_->strict() && now - turn_->grant_ns() >= config_.turn.quantum_ns;
    if (verdict != YieldVerdict::kKeep || strict_over) {
      HandOver(0, verdict == YieldVerdict::kPreempt);
      continue;
    }
    if (now - last_busy >= config_.idle_ns) {
      // Idle: charge the turn up to its last sign of work, not the idle tail.
      HandOver(last_busy, false);
      continue;
    }
    turn_->WaitKick(kick, others ? kKeeperPollNs : (config_.idle_ns > kKeeperIdlePollNs ? config_.idle_ns : kKeeperIdlePollNs));
  }
}

}  // namespace gpushare::compute
