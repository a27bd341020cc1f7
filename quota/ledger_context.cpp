// SPDX-License-Identifier: Apache-2.0
// A lone CUDA context's own memory, in the ledger: measured once per GPU, driver and MPS mode by
// the first process that could measure it alone, and reused by every later process, so that
// contexts created together are not charged each other's memory (quota/context_overhead.cpp).
// The measuring turn is an OFD lock on the fields' byte range: it needs no shared state of its
// own and the kernel drops it when its holder dies.
#include <cstddef>

#include "quota/ledger.h"
#include "quota/ledger_file.h"
#include "quota/robust_lock.h"
#include "quota/slot_liveness.h"

namespace gpushare::quota {

namespace lf = ledger_file;
using namespace ledger_file;

namespace {

constexpr off_t kTurnOffset = offsetof(GsLedgerHeader, context_overhead_bytes);
constexpr off_t kTurnBytes = GS_LEDGER_HEADER_BYTES - kTurnOffset;
static_assert(kTurnBytes == 32, "the turn covers exactly the context_overhead_* fields");

uint32_t FlagsOf(const ContextOverheadKey& key) { return key.mps ? GS_CONTEXT_OVERHEAD_MPS : 0u; }

}  // namespace

// Once the file is lost (quota/ledger_loss.cpp), the ledger that carries this process answers.
bool LedgerSession::CachedContextOverhead(const ContextOverheadKey& key, uint64_t* bytes) const {
  if (Lost()) {
    const LedgerSession* next = successor();
    return next != nullptr && next->CachedContextOverhead(key, bytes);
  }
  if (LoadState(header_->context_overhead_state) != GS_CONTEXT_OVERHEAD_READY) return false;
  // Relaxed atomics: a publisher for another key rewrites them under the lock while we read.
  if (__atomic_load_n(&header_->context_overhead_driver, __ATOMIC_RELAXED) != key.driver_version ||
      __atomic_load_n(&header_->context_overhead_flags, __ATOMIC_RELAXED) != FlagsOf(key))
    return false;
  *bytes = Load(header_->context_overhead_bytes);
  return true;
}

bool LedgerSession::PublishContextOverhead(const ContextOverheadKey& key, uint64_t bytes) {
  if (Lost()) {
    LedgerSession* next = successor();
    return next != nullptr && next->PublishContextOverhead(key, bytes);
  }
  RobustLockGuard guard(header_->lock, kLockTimeoutMs, [this] { RepairLocked(); });
  if (!guard.held()) return false;
  uint64_t theirs = 0;
  if (CachedContextOverhead(key, &theirs) && theirs != 0) return true;  // the first wins
  StoreState(header_->context_overhead_state, GS_CONTEXT_OVERHEAD_NONE);
  A(header_->context_overhead_bytes).store(bytes, std::memory_order_relaxed);
  __atomic_store_n(&header_->context_overhead_driver, key.driver_version, __ATOMIC_RELAXED);
  __atomic_store_n(&header_->context_overhead_flags, FlagsOf(key), __ATOMIC_RELAXED);
  A(header_->context_overhead_unix_ns).store(lf::NowUnixNs(), std::memory_order_relaxed);
  StoreState(header_->context_overhead_state, GS_CONTEXT_OVERHEAD_READY);
  return true;
}

bool LedgerSession::TryHoldOverheadTurn() { return HoldSlotLock(fd_, kTurnOffset, kTurnBytes); }

void LedgerSession::ReleaseOverheadTurn() { ReleaseSlotLock(fd_, kTurnOffset, kTurnBytes); }

void LedgerSession::AddProcessContextBytes(uint64_t bytes) {
  if (Lost()) {
    if (LedgerSession* next = successor()) next->AddProcessContextBytes(bytes);
    return;
  }
  A(process_->context_bytes).fetch_add(bytes, std::memory_order_relaxed);
}

void LedgerSession::SubtractProcessContextBytes(uint64_t bytes) {
  if (Lost()) {
    if (LedgerSession* next = successor()) next->SubtractProcessContextBytes(bytes);
    return;
  }
  auto held = A(process_->context_bytes);
  uint64_t v = held.load(std::memory_order_relaxed);
  while (!held.compare_exchange_weak(v, v > bytes ? v - bytes : 0, std::memory_order_relaxed)) {
  }
}

}  // namespace gpushare::quota
