// SPDX-License-Identifier: Apache-2.0
// CPU benchmark of the ledger's charge path (quota/ledger.h): the cost of one TryCharge +
// Uncharge pair (what gpushare adds to a cuMemAlloc/cuMemFree pair), side by side with the
// pre-ledger per-process accounting, for 1, 2 and 8 processes sharing one ledger file.
//
//   gpushare_ledger_bench [--seconds S]     (S: per case, default 0.8; see bench/ledger_bench.sh)
//
// Cases (each in fresh forked processes, over a fresh ledger file in a mkdtemp directory):
//   baseline        a std::atomic<uint64_t>: CAS check-and-add, fetch_sub (per process, as
//                   DeviceQuota did before the ledger);
//   within request  the ledger's lock-free fast path: the tenant stays within its request (its
//                   limit equals its request, so anything that left the fast path would be denied);
//   burst           past the request: every charge takes the ledger's robust mutex (each tenant's
//                   request is pre-charged before the start, so each 1 MiB charge is a burst).
// Multi-process cases run with all processes in one tenant (they share the tenant's used_bytes
// word) and with one tenant per process (N tenants bursting at once: the contended lock). All
// processes start together (a futex barrier in shared memory) and stop at the same deadline.
//
// Each process times blocks of P pairs; a block's mean is ns per pair; a process reports the
// median (and p10-p90) of its blocks, a case the median over its processes. "added" is the case's
// median minus the baseline's with the same process count (same CPU oversubscription).
// Exit status: 0 when every case is within the target, 1 when one is not, 2 on an error (a
// denied charge, a failed join, a child that did not finish).
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "quota/ledger.h"

namespace {

using gpushare::quota::LedgerSession;
using gpushare::quota::TenantConfig;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kChargeBytes = 1 * kMiB;
constexpr uint64_t kUsableBytes = 80 * kGiB;
constexpr uint64_t kRequestBytes = 1 * kGiB;       // per tenant; 8 tenants: 8 GiB of 80
constexpr uint64_t kBurstLimitBytes = 2 * kGiB;    // burst case: request + 1 GiB of room
constexpr double kTargetAddedNs = 1000.0;          // per cuMemAlloc/cuMemFree pair
constexpr int kMaxProcs = 8;
constexpr int kWarmupBlocks = 5;
constexpr int kMinBlocks = 30;
constexpr int kMaxBlocks = 20000;
constexpr unsigned char kUuid[16] = {0xbe, 0x7c, 0x4d, 0x11, 0x00, 0x5e, 0x4c, 0x0d,
                                     0x9a, 0x21, 0x6b, 0x3f, 0x80, 0x42, 0xe1, 0x77};

enum class Kind { kBaseline, kWithin, kBurst };

struct Case {
  const char* name;
  Kind kind;
  int procs;
  bool tenant_per_process;
  int pairs_per_block;
};

struct Spread {
  double median = 0, p10 = 0, p90 = 0;
};

// One child's result, written into the shared mapping.
struct ProcResult {
  int done;  // 1 when the child wrote its result
  int ok;
  uint64_t blocks;
  uint64_t pairs;
  uint64_t denials;
  double median_ns, p10_ns, p90_ns;
  int64_t begin_ns, end_ns;  // CLOCK_MONOTONIC around the timed blocks
  int64_t cpu_ns;            // CPU time this process spent in them
  char error[256];
};

// MAP_SHARED | MAP_ANONYMOUS, made before fork: the barrier and the results.
struct Shared {
  uint32_t ready;      // children that finished their setup (atomic_ref)
  uint32_t go;         // futex word: 1 = start
  int64_t start_ns;    // CLOCK_MONOTONIC at go
  int64_t run_ns;      // how long each child keeps timing blocks
  ProcResult results[kMaxProcs];
};

int64_t NowNs(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

long Futex(uint32_t* word, int op, uint32_t val) {
  return syscall(SYS_futex, word, op, val, nullptr, nullptr, 0);
}

Spread SpreadOf(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))]; };
  s.median = at(0.5);
  s.p10 = at(0.1);
  s.p90 = at(0.9);
  return s;
}

// The pre-ledger accounting (DeviceQuota before the ledger): one word per process.
struct BaselineQuota {
  alignas(64) std::atomic<uint64_t> used{0};
  uint64_t limit = kUsableBytes;
  bool TryCharge(uint64_t bytes) {
    uint64_t u = used.load(std::memory_order_relaxed);
    do {
      if (bytes > limit || u > limit - bytes) return false;
    } while (!used.compare_exchange_weak(u, u + bytes, std::memory_order_relaxed));
    return true;
  }
  void Uncharge(uint64_t bytes) { used.fetch_sub(bytes, std::memory_order_relaxed); }
};

template <typename Quota>
void TimeBlocks(Quota& q, int pairs, int64_t deadline_ns, std::vector<double>* samples,
                ProcResult* r) {
  auto block = [&]() {
    uint64_t denied = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < pairs; ++i) {
      if (q.TryCharge(kChargeBytes)) {
        q.Uncharge(kChargeBytes);
      } else {
        ++denied;
      }
    }
    const auto t1 = std::chrono::steady_clock::now();
    r->denials += denied;
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / pairs;
  };
  for (int i = 0; i < kWarmupBlocks; ++i) block();
  r->begin_ns = NowNs();
  const int64_t cpu0 = NowNs(CLOCK_THREAD_CPUTIME_ID);
  while (samples->size() < static_cast<size_t>(kMaxBlocks) &&
         (samples->size() < static_cast<size_t>(kMinBlocks) || NowNs() < deadline_ns)) {
    samples->push_back(block());
  }
  r->cpu_ns = NowNs(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  r->end_ns = NowNs();
  r->blocks = samples->size();
  r->pairs = samples->size() * static_cast<uint64_t>(pairs);
}

// Adapts a session to TimeBlocks.
struct LedgerQuota {
  LedgerSession* s;
  bool TryCharge(uint64_t bytes) { return s->TryCharge(bytes); }
  void Uncharge(uint64_t bytes) { s->Uncharge(bytes); }
};

void Fail(ProcResult* r, const std::string& what) {
  r->ok = 0;
  std::snprintf(r->error, sizeof r->error, "%s", what.c_str());
}

void Arrive(Shared* sh) {
  std::atomic_ref<uint32_t>(sh->ready).fetch_add(1, std::memory_order_acq_rel);
}

void AwaitGo(Shared* sh) {
  std::atomic_ref<uint32_t> go(sh->go);
  while (go.load(std::memory_order_acquire) == 0) Futex(&sh->go, FUTEX_WAIT, 0);
}

// A child's whole life: set up (join, pre-charge), barrier, time blocks, report, leave.
void RunChild(const Case& c, int index, const std::string& dir, Shared* sh) {
  ProcResult* r = &sh->results[index];
  r->ok = 1;
  std::vector<double> samples;
  samples.reserve(kMaxBlocks);
  if (c.kind == Kind::kBaseline) {
    auto quota = std::make_unique<BaselineQuota>();
    Arrive(sh);
    AwaitGo(sh);
    TimeBlocks(*quota, c.pairs_per_block, sh->start_ns + sh->run_ns, &samples, r);
  } else {
    const bool burst = c.kind == Kind::kBurst;
    const TenantConfig tenant{c.tenant_per_process ? "t" + std::to_string(index) : std::string("t"),
                              kRequestBytes, burst ? kBurstLimitBytes : kRequestBytes, false};
    std::string error;
    auto session = LedgerSession::Open(dir, kUuid, kUsableBytes, tenant, &error);
    if (!session) {
      Fail(r, "LedgerSession::Open: " + error);
      Arrive(sh);
      return;
    }
    // Burst: fill the tenant's request (its processes share it) so every charge is past it.
    const int in_tenant = c.tenant_per_process ? 1 : c.procs;
    const uint64_t prefill = burst ? kRequestBytes / static_cast<uint64_t>(in_tenant) : 0;
    if (prefill && !session->TryCharge(prefill)) {
      Fail(r, "pre-charge of the request was denied");
      Arrive(sh);
      return;
    }
    Arrive(sh);
    AwaitGo(sh);
    if (burst && session->tenant_used_bytes() < session->request_bytes()) {
      Fail(r, "tenant below its request at the start: charges would not be bursts");
    }
    LedgerQuota q{session.get()};
    TimeBlocks(q, c.pairs_per_block, sh->start_ns + sh->run_ns, &samples, r);
    if (session->process_used_bytes() != prefill) Fail(r, "process usage did not return to the pre-charge");
    if (prefill) session->Uncharge(prefill);
  }
  const Spread s = SpreadOf(samples);
  r->median_ns = s.median;
  r->p10_ns = s.p10;
  r->p90_ns = s.p90;
  if (r->denials) Fail(r, std::to_string(r->denials) + " charges denied (must never be)");
}

struct CaseResult {
  const Case* c = nullptr;
  bool ok = true;
  std::string error;
  std::vector<ProcResult> procs;
  double median_ns = 0;  // median over processes of their medians
  double min_ns = 0, max_ns = 0;
  double p10_ns = 0, p90_ns = 0;  // median over processes of their p10 / p90
  uint64_t pairs = 0;
  double cpus_busy = 0;  // sum of the processes' CPU time / the case's wall time: real overlap
};

double MedianOf(std::vector<double> v) { return SpreadOf(std::move(v)).median; }

CaseResult RunCase(const Case& c, const std::string& dir, double seconds) {
  CaseResult out;
  out.c = &c;
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    out.ok = false;
    out.error = std::string("mmap: ") + std::strerror(errno);
    return out;
  }
  auto* sh = static_cast<Shared*>(mem);
  std::memset(sh, 0, sizeof *sh);
  sh->run_ns = static_cast<int64_t>(seconds * 1e9);
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids;
  for (int i = 0; i < c.procs; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      RunChild(c, i, dir, sh);
      std::atomic_ref<int>(sh->results[i].done).store(1, std::memory_order_release);
      _exit(0);
    }
    if (pid < 0) {
      out.ok = false;
      out.error = std::string("fork: ") + std::strerror(errno);
      break;
    }
    pids.push_back(pid);
  }
  // Barrier: every child has joined (and pre-charged); then start them at once.
  const int64_t setup_deadline = NowNs() + 20'000'000'000;
  std::atomic_ref<uint32_t> ready(sh->ready);
  while (ready.load(std::memory_order_acquire) < pids.size() && NowNs() < setup_deadline) usleep(200);
  if (ready.load(std::memory_order_acquire) < pids.size()) {
    out.ok = false;
    out.error = "children did not reach the barrier";
  }
  sh->start_ns = NowNs();
  std::atomic_ref<uint32_t>(sh->go).store(1, std::memory_order_release);
  Futex(&sh->go, FUTEX_WAKE, INT_MAX);
  for (size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      out.ok = false;
      out.error = "child " + std::to_string(i) + " did not exit cleanly";
    }
  }
  std::vector<double> medians, p10s, p90s;
  int64_t begin = INT64_MAX, end = 0, cpu = 0;
  for (size_t i = 0; i < pids.size(); ++i) {
    const ProcResult& r = sh->results[i];
    out.procs.push_back(r);
    if (!r.done || !r.ok) {
      out.ok = false;
      out.error = "process " + std::to_string(i) + ": " + (r.done ? r.error : "no result");
      continue;
    }
    medians.push_back(r.median_ns);
    p10s.push_back(r.p10_ns);
    p90s.push_back(r.p90_ns);
    out.pairs += r.pairs;
    begin = std::min(begin, r.begin_ns);
    end = std::max(end, r.end_ns);
    cpu += r.cpu_ns;
  }
  if (end > begin) out.cpus_busy = static_cast<double>(cpu) / static_cast<double>(end - begin);
  if (!medians.empty()) {
    out.median_ns = MedianOf(medians);
    out.min_ns = *std::min_element(medians.begin(), medians.end());
    out.max_ns = *std::max_element(medians.begin(), medians.end());
    out.p10_ns = MedianOf(p10s);
    out.p90_ns = MedianOf(p90s);
  }
  munmap(mem, sizeof(Shared));
  return out;
}

const CaseResult* BaselineFor(const std::vector<CaseResult>& results, int procs) {
  for (const CaseResult& r : results)
    if (r.c->kind == Kind::kBaseline && r.c->procs == procs && r.ok) return &r;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S per case (default 0.8)]\n", argv[0]);
      return 2;
    }
  }
  if (!(seconds > 0)) seconds = 0.8;

  // pairs_per_block: a block of the fast paths lasts tens of microseconds, well inside a
  // scheduler time slice; bursts are slower per pair, so fewer per block.
  static const Case kCases[] = {
      {"baseline (std::atomic)", Kind::kBaseline, 1, false, 2000},
      {"ledger, within request", Kind::kWithin, 1, false, 2000},
      {"ledger, burst", Kind::kBurst, 1, false, 200},
      {"baseline (std::atomic)", Kind::kBaseline, 2, false, 2000},
      {"ledger, within request, 1 tenant", Kind::kWithin, 2, false, 2000},
      {"ledger, within request, 2 tenants", Kind::kWithin, 2, true, 2000},
      {"ledger, burst, 1 tenant", Kind::kBurst, 2, false, 200},
      {"ledger, burst, 2 tenants", Kind::kBurst, 2, true, 200},
      {"baseline (std::atomic)", Kind::kBaseline, 8, false, 2000},
      {"ledger, within request, 1 tenant", Kind::kWithin, 8, false, 2000},
      {"ledger, within request, 8 tenants", Kind::kWithin, 8, true, 2000},
      {"ledger, burst, 1 tenant", Kind::kBurst, 8, false, 200},
      {"ledger, burst, 8 tenants", Kind::kBurst, 8, true, 200},
  };

  char tmpl[] = "/tmp/gpushare-ledger-bench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno));
    return 2;
  }
  const std::string root = tmpl;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  char load[128] = "?";
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (!std::fgets(load, sizeof load, f)) std::snprintf(load, sizeof load, "?");
    std::fclose(f);
    load[std::strcspn(load, "\n")] = 0;
  }

  std::printf("gpushare ledger benchmark: TryCharge+Uncharge pairs of %llu MiB, usable %llu GiB, "
              "request %llu GiB per tenant (burst limit %llu GiB)\n",
              static_cast<unsigned long long>(kChargeBytes / kMiB),
              static_cast<unsigned long long>(kUsableBytes / kGiB),
              static_cast<unsigned long long>(kRequestBytes / kGiB),
              static_cast<unsigned long long>(kBurstLimitBytes / kGiB));
  std::printf("%.2f s per case; ns per pair = median of per-block means (spread: p10-p90 of blocks, "
              "median over processes); ledger files under %s; %ld CPUs online, "
              "load average %s\n\n",
              seconds, root.c_str(), cpus, load);

  std::vector<CaseResult> results;
  int case_index = 0;
  for (const Case& c : kCases) {
    const std::string dir = root + "/case" + std::to_string(case_index++);
    std::filesystem::create_directory(dir);
    results.push_back(RunCase(c, dir, seconds));
    const CaseResult& r = results.back();
    std::printf("%-34s x%d: ", c.name, c.procs);
    if (!r.ok) {
      std::printf("ERROR: %s\n", r.error.c_str());
      continue;
    }
    std::printf("%8.1f ns/pair (p10-p90 %.1f-%.1f), %llu pairs, %.2f CPUs busy", r.median_ns,
                r.p10_ns, r.p90_ns, static_cast<unsigned long long>(r.pairs), r.cpus_busy);
    if (c.procs > 1) {
      std::printf("; per process:");
      for (const ProcResult& p : r.procs) std::printf(" %.1f", p.median_ns);
    }
    std::printf("\n");
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);

  auto row = [](const char* name, const char* procs, const char* busy, const char* ns,
                const char* added, const char* target, const char* verdict) {
    std::printf("%-34s | %-9s | %-9s | %-23s | %-19s | %-23s | %s\n", name, procs, busy, ns, added,
                target, verdict);
  };
  std::printf("\n");
  row("case", "processes", "CPUs busy", "ns per pair (median)", "vs baseline (added)",
      "target (added per pair)", "verdict");
  std::printf("%s\n", std::string(34 + 9 + 9 + 23 + 19 + 23 + 7 + 18, '-').c_str());
  bool any_error = false, any_fail = false;
  for (const CaseResult& r : results) {
    const Case& c = *r.c;
    char procs[32], busy[32], ns[64], add[32];
    std::snprintf(procs, sizeof procs, "%d%s", c.procs, cpus > 0 && c.procs > cpus ? " (*)" : "");
    const char* target = c.kind == Kind::kBaseline ? "-" : "<= 1000 ns";
    if (!r.ok) {
      any_error = true;
      const std::string verdict = "ERROR: " + r.error;
      row(c.name, procs, "-", "-", "-", target, verdict.c_str());
      continue;
    }
    std::snprintf(busy, sizeof busy, "%.2f", r.cpus_busy);
    std::snprintf(ns, sizeof ns, "%.1f [%.1f-%.1f]", r.median_ns, r.p10_ns, r.p90_ns);
    if (c.kind == Kind::kBaseline) {
      row(c.name, procs, busy, ns, "(reference)", target, "-");
      continue;
    }
    const CaseResult* base = BaselineFor(results, c.procs);
    if (!base) {
      any_error = true;
      row(c.name, procs, busy, ns, "-", target, "ERROR: no baseline");
      continue;
    }
    const double added = r.median_ns - base->median_ns;
    const bool pass = added <= kTargetAddedNs;
    any_fail |= !pass;
    std::snprintf(add, sizeof add, "%+.1f ns", added);
    row(c.name, procs, busy, ns, add, target, pass ? "PASS" : "FAIL");
  }
  std::printf(
      "\n[a-b]: p10-p90 of the per-block means (N processes: median over the processes of each).\n"
      "CPUs busy: the processes' CPU time over the case's wall time, i.e. how many really ran at\n"
      "once (below N when the machine is shared or has fewer CPUs; the medians then mostly come\n"
      "from blocks that ran alone, and contention shows in the p90).\n"
      "added: minus the baseline with the same number of processes (the same CPU oversubscription).\n"
      "Every charge was granted (a denial is reported as an ERROR).\n");
  if (cpus > 0 && cpus < kMaxProcs) {
    std::printf(
        "(*) %d processes on %ld CPUs: they also contend for the CPUs, so a lock holder can be "
        "descheduled while others wait for it; the %s-process rows are the fair view of "
        "concurrent tenants on this machine.\n",
        kMaxProcs, cpus, cpus >= 2 ? "2" : "1");
  }
  return any_error ? 2 : any_fail ? 1 : 0;
}
