// SPDX-License-Identifier: Apache-2.0
// Futex words: a thread sleeps until a 32-bit word moves from the value it saw (or a timeout),
// and another bumps the word and wakes it. Words in the ledger's file mapping are shared across
// processes; a word in one process's memory is private (cheaper: no inode lookup).
#pragma once
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>

namespace gpushare {

enum class FutexScope { kShared, kPrivate };

inline void FutexWait(const void* word, uint32_t seen, uint64_t timeout_ns, FutexScope scope) {
  const timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000ull), static_cast<long>(timeout_ns % 1'000'000'000ull)};
  syscall(SYS_futex, word, scope == FutexScope::kShared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

// Wakes up to `count` sleepers (INT_MAX: all).
inline void FutexWake(const void* word, int count, FutexScope scope) {
  syscall(SYS_futex, word, scope == FutexScope::kShared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

}  // namespace gpushare
