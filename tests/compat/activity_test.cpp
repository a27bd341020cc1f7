// SPDX-License-Identifier: Apache-2.0
// Every launch-like entry point counts as activity (issue 15, finding 2): a tenant whose only
// work is replaying CUDA graphs (vLLM and TensorRT-LLM decode that way) is busy, not idle, to a
// priority requester's GPUSHARE_IDLE_TIMEOUT; and each entry point, called once, moves its
// process's last-active time in the ledger.
#include <gtest/gtest.h>

#include <cuda.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kGiB = 1ll << 30;

// 16 GiB GPU; each tenant 4Gi request, 12Gi limit: 8 GiB of burst pool between them.
std::vector<std::string> Tenant(const std::string& name, std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + name, "GPUSHARE_MEM_REQUEST=4Gi", "GPUSHARE_MEM_LIMIT=12Gi",
                               "GPUSHARE_FAKE_DEVICES=16Gi"});
  return e2e::PreloadEnv(extra);
}

nlohmann::json Ledger() {
  const auto smi = e2e::RunProgram({GS_SMI_PATH, "--json", "--ledger-dir", e2e::ScratchDir() + "/ledger"}, {});
  return nlohmann::json::parse(smi.out)["ledgers"].at(0);
}

TEST(Activity, AGraphOnlyTenantIsNotTerminatedAsIdle) {
  // Holds all but 64 MiB of its 12 GiB limit (nearly 8 GiB of burst: what is left of the pool is
  // less than one of the requester's 64 MiB steps), then only replays a graph for 5 s.
  constexpr long long kHeld = 12 * kGiB - (64ll << 20);
  auto graphs = e2e::SpawnProgram({GS_ACTIVITY_CLIENT_PATH, "graphs", std::to_string(kHeld), "5"},
                                  Tenant("graphs", {}));
  ASSERT_EQ(e2e::WaitForValue(graphs, "held"), kHeld);
  // Same priority; takes from tenants idle for 1 s. The graph tenant has allocated nothing for
  // 2 s by the time this one bursts into its memory.
  sleep(2);
  const e2e::ClientResult requester = e2e::RunProgram(
      {GS_CLIENT_PATH, "link", "fill"},
      Tenant("requester", {"GPUSHARE_RESOLVER=priority", "GPUSHARE_IDLE_TIMEOUT=1s", "GPUSHARE_WAIT_MODE=always",
                           "GPUSHARE_WAIT_TIMEOUT=1s"}));
  EXPECT_EQ(requester.Int("filled_bytes"), 4 * kGiB) << "the requester got only its request: nobody was idle";
  EXPECT_EQ(requester.Int("fill_stop_rc"), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(e2e::WaitForExit(graphs, 20), 0) << "the graph-replaying tenant was terminated as idle";
  EXPECT_GT(e2e::WaitForValue(graphs, "replays", 1), 125);
  const nlohmann::json ledger = Ledger();
  EXPECT_TRUE(ledger["recent_terminations"].empty()) << ledger["recent_terminations"].dump();
}

TEST(Activity, EveryLaunchLikeEntryPointMovesTheIdleClock) {
  constexpr int kClients = 4;  // in parallel: each entry point takes two watcher ticks
  std::vector<e2e::Spawned> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(e2e::SpawnProgram({GS_ACTIVITY_CLIENT_PATH, "entries", std::to_string(i), std::to_string(kClients)},
                                        e2e::PreloadEnv({"GPUSHARE_TENANT=entries", "GPUSHARE_MEM_LIMIT=1Gi"})));
  std::set<std::string> moved;
  long long total = -1;
  for (auto& c : clients) {
    total = e2e::WaitForValue(c, "entries_done", 60);
    ASSERT_GT(total, 0) << "a client did not finish";
    ASSERT_EQ(e2e::WaitForExit(c, 10), 0);
    std::ifstream out(c.out_path);
    for (std::string line; std::getline(out, line);) {
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.compare(0, 12, "entries_done") == 0) continue;
      const std::string name = line.substr(0, space), verdict = line.substr(space + 1);
      // One row per entry point: "<name> moved" is the pass.
      EXPECT_EQ(verdict, "moved") << name << " did not count as activity";
      if (verdict == "moved") moved.insert(name);
    }
  }
  EXPECT_EQ(static_cast<long long>(moved.size()), total);
}

}  // namespace
