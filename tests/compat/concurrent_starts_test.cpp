// SPDX-License-Identifier: Apache-2.0
// Processes that start together (a Deployment scaling up, a node rebooting) must all start, each
// charged what a lone start is: the fake NVML shows every fake-driver process's memory
// device-wide (GPUSHARE_FAKE_NVML_LIVE), and a context's creation takes time with its memory
// already in use (GPUSHARE_FAKE_CTX_CREATE_MS), so a naive device-wide delta sees the others'
// contexts, as on the H100 (2.7-4.1 GiB "measured" for one context, 45-47 of 48 ready).
// And a context that does not fit says why at warn level.
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "quota/ledger.h"
#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"

namespace {

constexpr long long kMiB = 1ll << 20;
constexpr long long kContext = 300 * kMiB;  // the fake driver's context overhead below
constexpr long long kHeld = 64 * kMiB;      // each client allocates this after its context
constexpr const char* kHostPids = "0";
constexpr const char* kContainerPids = "5000000";  // NVML names pids this far from ours

std::string Scratch() {
  char tmpl[] = "/tmp/gpushare-compat-starts-XXXXXX";
  return mkdtemp(tmpl);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A client under the library, on a 64 GiB fake GPU whose contexts take 150 ms to create.
std::vector<std::string> Env(const std::string& dir, const std::string& tenant, const std::string& pid_offset,
                             std::vector<std::string> extra = {}) {
  const std::string library_path = std::string("LD_LIBRARY_PATH=") + GS_FAKE_DIR + ":" + GS_FAKE_NVML_DIR;
  std::vector<std::string> env = {
      std::string("LD_PRELOAD=") + GS_PRELOAD_PATH, library_path,
      "GPUSHARE_FAKE_DEVICES=64Gi", "GPUSHARE_FAKE_CTX_OVERHEAD=300Mi", "GPUSHARE_FAKE_CTX_CREATE_MS=150",
      "GPUSHARE_FAKE_STATE_DIR=" + dir, "GPUSHARE_FAKE_NVML_LIVE=1", "GPUSHARE_FAKE_NVML_PID_OFFSET=" + pid_offset,
      "GPUSHARE_LEDGER_DIR=" + dir + "/ledger", "GPUSHARE_TENANT=" + tenant, "GPUSHARE_MEM_LIMIT=1Gi",
      "GS_CLIENT_START_FILE=" + dir + "/go", "unset:GPUSHARE_MEM_REQUEST", "unset:GPUSHARE_CONTEXT_OVERHEAD",
      "unset:GPUSHARE_LOG_LEVEL"};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

gpushare::quota::LedgerSnapshot Ledger(const std::string& dir) {
  gpushare::quota::LedgerSnapshot snap;
  const auto paths = gpushare::quota::ListLedgers(dir + "/ledger");
  EXPECT_EQ(paths.size(), 1u);
  std::string error;
  if (!paths.empty()) {
    EXPECT_TRUE(gpushare::quota::ReadLedger(paths[0], &snap, &error)) << error;
  }
  return snap;
}

struct Start {
  e2e::Spawned process;
  std::string tenant;
};

// Spawns `n` clients (each its own tenant, limit 1Gi, holding 64 MiB), then lets them go at
// once; returns them once each has printed whether its context was retained.
std::vector<Start> StartTogether(const std::string& dir, int n, const std::string& pid_offset,
                                 int plain_neighbours = 0) {
  std::vector<Start> starts;
  for (int i = 0; i < n; ++i) {
    const std::string tenant = "t" + std::to_string(i);
    starts.push_back({e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(kHeld)},
                                        Env(dir, tenant, pid_offset)),
                      tenant});
  }
  // Programs without gpushare on the same GPU, creating their contexts at the same moment.
  for (int i = 0; i < plain_neighbours; ++i)
    starts.push_back({e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(kHeld)},
                                        Env(dir, "plain", pid_offset, {"unset:LD_PRELOAD"})),
                      ""});
  usleep(200 * 1000);  // all loaded and waiting
  std::ofstream(dir + "/go").put('\n');
  for (Start& s : starts) e2e::WaitForValue(s.process, "retain_rc", 60);
  return starts;
}

void StopAll(std::vector<Start>& starts) {
  for (Start& s : starts) e2e::KillProgram(s.process);
}

// What one client alone is charged: its context and its 64 MiB.
long long LoneCharge(const std::string& pid_offset, long long* context_bytes) {
  const std::string dir = Scratch();
  std::vector<Start> lone = StartTogether(dir, 1, pid_offset);
  EXPECT_EQ(e2e::WaitForValue(lone[0].process, "held", 30), kHeld) << ReadFile(lone[0].process.err_path);
  const auto snap = Ledger(dir);
  long long used = -1;
  if (snap.tenants.size() == 1 && snap.tenants[0].processes.size() == 1) {
    used = static_cast<long long>(snap.tenants[0].processes[0].used_bytes);
    *context_bytes = static_cast<long long>(snap.tenants[0].processes[0].context_bytes);
  }
  StopAll(lone);
  return used;
}

class ConcurrentStarts : public ::testing::TestWithParam<const char*> {};

TEST_P(ConcurrentStarts, AllBecomeReadyEachChargedWhatALoneStartIs) {
  long long lone_context = -1;
  const long long lone = LoneCharge(GetParam(), &lone_context);
  ASSERT_EQ(lone, kContext + kHeld) << "a lone start is charged its context and its allocation";
  ASSERT_EQ(lone_context, kContext);

  const std::string dir = Scratch();
  constexpr int kStarts = 20;
  std::vector<Start> starts = StartTogether(dir, kStarts, GetParam());
  int ready = 0;
  for (Start& s : starts) {
    const long long held = e2e::WaitForValue(s.process, "held", 30);
    if (held == kHeld) ++ready;
    EXPECT_EQ(held, kHeld) << s.tenant << " did not start: " << ReadFile(s.process.err_path);
  }
  EXPECT_EQ(ready, kStarts);
  const auto snap = Ledger(dir);
  EXPECT_EQ(snap.context_overhead_bytes, static_cast<uint64_t>(kContext)) << "the lone figure, shared";
  EXPECT_EQ(snap.tenants.size(), static_cast<size_t>(kStarts));
  for (const auto& t : snap.tenants) {
    ASSERT_EQ(t.processes.size(), 1u) << t.name;
    EXPECT_EQ(static_cast<long long>(t.processes[0].used_bytes), lone) << t.name;
    EXPECT_EQ(static_cast<long long>(t.processes[0].context_bytes), lone_context) << t.name;
  }
  StopAll(starts);
}

TEST_P(ConcurrentStarts, ProgramsWithoutGpushareStartingBesideAreNotCharged) {
  // Their contexts are in the device-wide delta and in NVML's list, but in no ledger: the first
  // measurements race with them, and later ones find the GPU quiet.
  const std::string dir = Scratch();
  constexpr int kStarts = 8, kPlain = 6;
  std::vector<Start> starts = StartTogether(dir, kStarts, GetParam(), kPlain);
  for (Start& s : starts)
    EXPECT_EQ(e2e::WaitForValue(s.process, "held", 30), kHeld) << s.tenant << ": " << ReadFile(s.process.err_path);
  const auto snap = Ledger(dir);
  EXPECT_EQ(snap.context_overhead_bytes, static_cast<uint64_t>(kContext)) << "published only once measured alone";
  EXPECT_EQ(snap.tenants.size(), static_cast<size_t>(kStarts));
  for (const auto& t : snap.tenants) {
    ASSERT_EQ(t.processes.size(), 1u) << t.name;
    // A raced measurement is charged this process's own NVML figure (its context) or, where
    // NVML's pids cannot be attributed, the median newcomer's (a context, perhaps with its 64 MiB).
    EXPECT_GE(static_cast<long long>(t.processes[0].context_bytes), kContext) << t.name;
    EXPECT_LE(static_cast<long long>(t.processes[0].context_bytes), kContext + kHeld) << t.name;
  }
  StopAll(starts);
}

std::string PidsName(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == kHostPids ? "HostPids" : "ContainerPids";
}
INSTANTIATE_TEST_SUITE_P(Compat, ConcurrentStarts, ::testing::Values(kHostPids, kContainerPids), PidsName);

TEST(ConcurrentStarts, ARefusedContextSaysWhyAtWarnLevel) {
  const std::string dir = Scratch();
  std::ofstream(dir + "/go").put('\n');
  // Measured: a 300 MiB context under a 256 MiB limit. Default log level (warn).
  const auto measured = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                        Env(dir, "small", kHostPids, {"GPUSHARE_MEM_LIMIT=256Mi"}));
  EXPECT_EQ(measured.Int("retain_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_NE(measured.err.find("warning: device 0: CUDA context refused (CUDA_ERROR_OUT_OF_MEMORY): its own memory, "
                              "300.0 MiB (measured alone), does not fit the tenant's quota: limit 256.0 MiB"),
            std::string::npos)
      << measured.err;
  EXPECT_NE(measured.err.find("GPUSHARE_CONTEXT_OVERHEAD"), std::string::npos) << measured.err;
  // Fixed by the operator.
  const auto fixed = e2e::RunProgram({GS_CLIENT_PATH, "link", "fill"},
                                     Env(dir, "fixed", kHostPids,
                                         {"GPUSHARE_MEM_LIMIT=128Mi", "GPUSHARE_CONTEXT_OVERHEAD=256Mi"}));
  EXPECT_EQ(fixed.Int("retain_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_NE(fixed.err.find("its own memory, 256.0 MiB (GPUSHARE_CONTEXT_OVERHEAD), does not fit the tenant's quota: "
                           "limit 128.0 MiB"),
            std::string::npos)
      << fixed.err;
}

}  // namespace
