// SPDX-License-Identifier: Apache-2.0
#include "quota/watcher.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "quota/activity.h"
#include "quota/device_quota.h"
#include "quota/ledger_fault.h"
#include "src/log.h"

namespace gpushare::quota {
namespace detail {
alignas(64) std::atomic<uint64_t> g_coarse_now_ns{0};
alignas(64) std::atomic<uint64_t> g_last_active_ns{0};
}  // namespace detail

namespace {

constexpr useconds_t kTickUs = 100'000;

// The priority resolver chose this process's tenant as a victim: SIGTERM now, SIGKILL after
// the grace period if the program is still there.
[[noreturn]] void Terminate(DeviceQuota& quota, const TerminationRequest& request) {
  char uuid[41];
  FormatUuid(quota.uuid(), uuid);
  GS_LOG_ERROR("terminating this process (pid {}): on {} its tenant yields its burst to tenant '{}' ({}); "
               "SIGKILL in {} ms unless it exits",
               getpid(), uuid, request.requester, request.reason, quota.session()->kill_grace_ns() / 1'000'000);
  kill(getpid(), SIGTERM);
  const uint64_t deadline = ActivityClockNs() + quota.session()->kill_grace_ns();
  while (ActivityClockNs() < deadline) usleep(kTickUs);
  GS_LOG_ERROR("grace period over: SIGKILL");
  kill(getpid(), SIGKILL);
  for (;;) pause();
}

void Watch() {
  for (;;) {
    const uint64_t now = ActivityClockNs();
    detail::g_coarse_now_ns.store(now, std::memory_order_relaxed);
    const uint64_t last_active = detail::g_last_active_ns.load(std::memory_order_relaxed);
    ledger_fault::KeepFirst();
    ForEachQuota([&](DeviceQuota& q) {
      LedgerSession* session = q.session();
      if (session == nullptr) return;
      session->CheckFile();
      if (last_active != 0) session->NoteActivity(last_active);
      TerminationRequest request;
      if (session->TerminationRequested(&request)) Terminate(q, request);
    });
    usleep(kTickUs);
  }
}

}  // namespace

void StartWatcher() {
  static std::once_flag once;
  std::call_once(once, [] {
    detail::g_coarse_now_ns.store(ActivityClockNs(), std::memory_order_relaxed);
    detail::g_last_active_ns.store(ActivityClockNs(), std::memory_order_relaxed);
    std::thread(Watch).detach();
  });
}

}  // namespace gpushare::quota
