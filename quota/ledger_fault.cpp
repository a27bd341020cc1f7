// SPDX-License-Identifier: Apache-2.0
#include "quota/ledger_fault.h"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

#include "src/log.h"

namespace gpushare::quota::ledger_fault {

namespace {

struct Slot {
  std::atomic<uintptr_t> base{0};
  std::atomic<size_t> bytes{0};
  std::atomic<uint32_t> faulted{0};
};
// One per mapped ledger: a session per GPU, plus one per re-join after a loss.
constexpr int kSlots = 128;
Slot g_slots[kSlots];

// The handlers ours chains to: [0] the one found at installation, then one per KeepFirst()
// re-installation. Written before g_previous points at them, never rewritten.
constexpr int kMaxReinstalls = 8;
struct sigaction g_chained[kMaxReinstalls + 1];
std::atomic<const struct sigaction*> g_previous{nullptr};
std::atomic<int> g_reinstalls{0};
std::mutex g_install_mu;  // installation, KeepFirst() and the slots' owners; never the handler

static_assert(std::atomic<uintptr_t>::is_always_lock_free && std::atomic<const struct sigaction*>::is_always_lock_free,
              "the handler reads these");

bool ZeroOver(uintptr_t base, size_t bytes) {
  void* at = reinterpret_cast<void*>(base);
  return mmap(at, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == at;
}

void OnSigbus(int sig, siginfo_t* info, void* context);

bool IsOurs(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) != 0 && action.sa_sigaction == OnSigbus;
}

// What the signal would have done without us. Async-signal-safe.
void Forward(int sig, siginfo_t* info, void* context) {
  const struct sigaction* previous = g_previous.load(std::memory_order_acquire);
  const bool by_kernel = info != nullptr && info->si_code > 0;
  if (previous == nullptr || IsOurs(*previous) || previous->sa_handler == SIG_DFL ||
      previous->sa_handler == SIG_IGN) {
    // An ignored SIGBUS sent by kill() stays ignored; a fault is never ignorable (the kernel
    // would have killed the process), nor is an unhandled one.
    if (previous != nullptr && previous->sa_handler == SIG_IGN && !IsOurs(*previous) && !by_kernel) return;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    // Pending until this handler returns (the signal is blocked inside it): then the default
    // action, a core dump, as without us. A fault would recur anyway.
    raise(sig);
    return;
  }
  if ((previous->sa_flags & SA_SIGINFO) != 0) {
    previous->sa_sigaction(sig, info, context);
  } else {
    previous->sa_handler(sig);
  }
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (info != nullptr && info->si_code > 0) {  // a fault, not kill() or raise()
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Slot& s : g_slots) {
      const uintptr_t base = s.base.load(std::memory_order_acquire);
      if (base == 0 || addr < base || addr - base >= s.bytes.load(std::memory_order_relaxed)) continue;
      if (ZeroOver(base, s.bytes.load(std::memory_order_relaxed))) {
        s.faulted.store(1, std::memory_order_release);
        errno = saved_errno;
        return;  // the access runs again, on zeros
      }
      break;
    }
  }
  errno = saved_errno;
  Forward(sig, info, context);
}

// Installs ours, keeping what it replaces in g_chained[index]. Under g_install_mu.
void InstallLocked(int index) {
  struct sigaction ours {};
  ours.sa_sigaction = OnSigbus;
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&ours.sa_mask);
  if (sigaction(SIGBUS, &ours, &g_chained[index]) == 0)
    g_previous.store(&g_chained[index], std::memory_order_release);
}

}  // namespace

int Guard(void* base, size_t bytes) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    const std::lock_guard lock(g_install_mu);
    InstallLocked(0);
  });
  const std::lock_guard lock(g_install_mu);
  for (Slot& s : g_slots) {
    if (s.base.load(std::memory_order_relaxed) != 0) continue;
    s.faulted.store(0, std::memory_order_relaxed);
    s.bytes.store(bytes, std::memory_order_relaxed);
    s.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    return static_cast<int>(&s - g_slots);
  }
  GS_LOG_WARN("gpushare: {} ledger mappings already guarded; a truncated ledger would now kill this process", kSlots);
  return -1;
}

void Unguard(int slot) {
  const std::lock_guard lock(g_install_mu);
  if (slot >= 0 && slot < kSlots) g_slots[slot].base.store(0, std::memory_order_release);
}

bool Faulted(int slot) {
  return slot >= 0 && slot < kSlots && g_slots[slot].faulted.load(std::memory_order_acquire) != 0;
}

bool Abandon(int slot) {
  if (slot < 0 || slot >= kSlots) return false;
  const uintptr_t base = g_slots[slot].base.load(std::memory_order_acquire);
  if (base == 0 || !ZeroOver(base, g_slots[slot].bytes.load(std::memory_order_relaxed))) return false;
  g_slots[slot].faulted.store(1, std::memory_order_release);
  return true;
}

void KeepFirst() {
  if (g_previous.load(std::memory_order_acquire) == nullptr) return;  // never installed
  const std::lock_guard lock(g_install_mu);
  struct sigaction current {};
  if (sigaction(SIGBUS, nullptr, &current) != 0 || IsOurs(current)) return;
  const int n = g_reinstalls.load(std::memory_order_relaxed);
  if (n >= kMaxReinstalls) return;
  g_reinstalls.store(n + 1, std::memory_order_relaxed);
  InstallLocked(n + 1);
  if (n + 1 == kMaxReinstalls)
    GS_LOG_WARN("gpushare: this program keeps replacing the SIGBUS handler; gpushare stops putting its own back, so "
                "a truncated ledger file may kill it");
  else
    GS_LOG_INFO("gpushare: the program replaced gpushare's SIGBUS handler; its handler now runs behind ours");
}

}  // namespace gpushare::quota::ledger_fault
