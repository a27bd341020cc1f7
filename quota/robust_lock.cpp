// SPDX-License-Identifier: Apache-2.0
#include "quota/robust_lock.h"

#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "src/log.h"

namespace gpushare::quota {

static_assert(sizeof(pthread_mutex_t) <= kRobustLockBytes, "the ledger reserves 64 bytes");

namespace {

pthread_mutex_t* AsMutex(void* storage) { return static_cast<pthread_mutex_t*>(storage); }

}  // namespace

bool InitRobustLock(void* storage, std::string* error) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_NORMAL);
  if (rc == 0) rc = pthread_mutex_init(AsMutex(storage), &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0 && error != nullptr) *error = std::string("pthread_mutex_init: ") + std::strerror(rc);
  return rc == 0;
}

RobustLockGuard::RobustLockGuard(void* storage, int timeout_ms, const std::function<void()>& repair)
    : storage_(storage) {
  const int saved_errno = errno;
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += static_cast<long>(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  int rc = pthread_mutex_clocklock(AsMutex(storage_), CLOCK_MONOTONIC, &deadline);
  if (rc == EOWNERDEAD) {
    // The previous holder died inside the critical section: whatever it was changing is
    // rebuilt from the slots before anyone else may look.
    GS_LOG_WARN("gpushare: a ledger lock holder died; rebuilding the ledger's totals");
    if (repair) repair();
    pthread_mutex_consistent(AsMutex(storage_));
    repaired_ = true;
    rc = 0;
  }
  if (rc == 0) {
    status_ = LockStatus::kAcquired;
  } else {
    status_ = rc == ETIMEDOUT ? LockStatus::kTimedOut : LockStatus::kError;
    errno_ = rc;
  }
  errno = saved_errno;
}

RobustLockGuard::~RobustLockGuard() {
  if (status_ == LockStatus::kAcquired) pthread_mutex_unlock(AsMutex(storage_));
}

std::string RobustLockGuard::Describe() const {
  switch (status_) {
    case LockStatus::kAcquired: return "held";
    case LockStatus::kTimedOut:
      return "timed out waiting for the ledger lock (a co-tenant holding it is stopped?)";
    case LockStatus::kError: break;
  }
  return std::string("ledger lock: ") + std::strerror(errno_) +
         (errno_ == ENOTRECOVERABLE ? " (delete the ledger file once no process uses it)" : "");
}

}  // namespace gpushare::quota
