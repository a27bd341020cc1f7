// SPDX-License-Identifier: Apache-2.0
// A tenant's last activity, for the priority resolver's idle test, at next to no cost on the hot
// path: launches store a coarse clock (updated by the watcher thread every 100 ms) into a
// process-local word with relaxed atomics; the watcher copies it into the ledger.
#pragma once
#include <atomic>
#include <cstdint>

namespace gpushare::quota {
namespace detail {
extern std::atomic<uint64_t> g_coarse_now_ns;
extern std::atomic<uint64_t> g_last_active_ns;
}  // namespace detail

// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the node (quota/ledger.h).
uint64_t ActivityClockNs();

// A launch, copy or allocation happened. No lock, no syscall; the store happens once per tick,
// so launching threads share the cache lines read-only in between.
inline void NoteActivity() {
  const uint64_t now = detail::g_coarse_now_ns.load(std::memory_order_relaxed);
  if (detail::g_last_active_ns.load(std::memory_order_relaxed) != now)
    detail::g_last_active_ns.store(now, std::memory_order_relaxed);
}

}  // namespace gpushare::quota
