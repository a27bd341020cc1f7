// SPDX-License-Identifier: Apache-2.0
// The ledger lock: a process-shared robust pthread mutex living in the shared mapping.
//
// A holder SIGKILLed at any instruction leaves the mutex to the next locker with EOWNERDEAD
// (glibc nptl/pthread_mutex_lock.c); RobustLock::Acquire then runs the caller's repair, and only
// after it succeeds marks the mutex consistent. If the repairer dies too, the next locker repairs
// again. The mutex type is NORMAL, not ERRORCHECK: owner tids come from different PID namespaces
// and may collide with ours, which ERRORCHECK would misread as "already held by me".
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace gpushare::quota {

// Initialises a mutex in `storage` (at least kRobustLockBytes, 8-aligned, zeroed) that lives in a
// MAP_SHARED mapping. False with *error set on failure.
bool InitRobustLock(void* storage, std::string* error);
inline constexpr uint32_t kRobustLockBytes = 64;

enum class LockStatus { kAcquired, kTimedOut, kError };

// Holds the lock for its lifetime. `repair` runs (lock held) when the previous owner died;
// a lock that cannot be acquired within timeout_ms reports kTimedOut (a holder that is stopped,
// not dead), so no caller ever hangs on a frozen co-tenant.
class RobustLockGuard {
 public:
  RobustLockGuard(void* storage, int timeout_ms, const std::function<void()>& repair);
  ~RobustLockGuard();
  RobustLockGuard(const RobustLockGuard&) = delete;
  RobustLockGuard& operator=(const RobustLockGuard&) = delete;

  LockStatus status() const { return status_; }
  bool held() const { return status_ == LockStatus::kAcquired; }
  bool repaired() const { return repaired_; }
  // Why the lock is not held, for error messages.
  std::string Describe() const;

 private:
  void* storage_;
  LockStatus status_ = LockStatus::kError;
  int errno_ = 0;
  bool repaired_ = false;
};

}  // namespace gpushare::quota
