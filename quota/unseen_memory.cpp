// SPDX-License-Identifier: Apache-2.0
#include "quota/unseen_memory.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "quota/activity.h"
#include "src/log.h"
#include "src/nvml.h"

namespace gpushare::quota {
namespace {

// Allocations that leave less headroom than this re-read NVML first (an NVML query costs tens
// of microseconds: too much for every allocation, nothing near the limit).
uint64_t ReconcileMargin(const DeviceQuota& quota) {
  return std::min<uint64_t>(quota.limit_bytes() / 8, 1ull << 30);
}

}  // namespace

void ReconcileUnseen(DeviceQuota& quota) {
  static std::mutex mu;
  const int saved_errno = errno;  // callers are CUDA entry points: leave errno as it was
  char uuid[41];
  FormatUuid(quota.uuid(), uuid);
  std::lock_guard lock(mu);
  uint64_t process_used = 0;
  if (NvmlProcessUsedBytes(uuid, static_cast<unsigned int>(getpid()), process_used)) {
    const uint64_t charged = quota.process_used_bytes();
    const uint64_t seen = charged - std::min(charged, quota.unseen_bytes());
    const uint64_t unseen = process_used > seen ? process_used - seen : 0;
    if (unseen != quota.unseen_bytes())
      GS_LOG_DEBUG("device {}: driver holds {} bytes beyond our allocations", quota.ordinal(), unseen);
    quota.SetUnseen(unseen);
  }
  errno = saved_errno;
}

Charge ChargeAllocation(DeviceQuota& quota, uint64_t bytes) {
  NoteActivity();
  if (quota.headroom_bytes() < bytes + ReconcileMargin(quota)) ReconcileUnseen(quota);
  return Charge::Try(&quota, bytes);
}

}  // namespace gpushare::quota
