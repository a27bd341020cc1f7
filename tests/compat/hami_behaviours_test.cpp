// SPDX-License-Identifier: Apache-2.0
// What HAMi-core's own black-box programs (test/ in Project-HAMi/HAMi-core) expect of an
// interposer, checked on gpushare with HAMi's variables: tests/compat/hami_client.cpp runs each
// behaviour under LD_PRELOAD=libgpushare.so against the fake driver.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kMiB = 1ll << 20;

// A pod as HAMi's device plugin starts it: its limit per device, in MiB.
std::vector<std::string> HamiPod(std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"CUDA_DEVICE_MEMORY_LIMIT_0=1024m", "GPUSHARE_FAKE_DEVICES=16Gi",
                               "GPUSHARE_TENANT=hami-pod"});
  return e2e::PreloadEnv(extra);
}

e2e::ClientResult RunScenario(const std::string& scenario, const std::vector<std::string>& env = HamiPod()) {
  return e2e::RunProgram({GS_HAMI_CLIENT_PATH, scenario}, env);
}

TEST(HamiBehaviours, OddSizesAreChargedExactlyAndOversizeIsRefused) {
  const auto r = RunScenario("odd_sizes");
  ASSERT_EQ(r.Int("start_ok"), 1) << r.err;
  EXPECT_EQ(r.Int("odd_failures"), 0) << r.out;
  EXPECT_EQ(r.Int("odd_free_restored"), 1);
  EXPECT_EQ(r.Int("oversize_refused"), 10) << "1 GiB + 2 bytes under a 1024m limit";
  EXPECT_EQ(r.Int("oversize_free_restored"), 1);
}

TEST(HamiBehaviours, PageLockedHostMemoryIsNotCharged) {
  const auto r = RunScenario("host");
  ASSERT_EQ(r.Int("start_ok"), 1) << r.err;
  EXPECT_EQ(r.Int("host_failures"), 0) << r.out;
  EXPECT_EQ(r.Int("host_charged"), 0);
}

TEST(HamiBehaviours, FourThreadsCreatingPhysicalMemoryAtOnceAllSucceed) {
  const auto r = RunScenario("vmm_threads");
  ASSERT_EQ(r.Int("start_ok"), 1) << r.err;
  EXPECT_EQ(r.Int("vmm_failures"), 0) << r.out;
  EXPECT_EQ(r.Int("vmm_charged"), 4 * r.Int("vmm_size"));
  EXPECT_EQ(r.Int("vmm_free_restored"), 1);
}

TEST(HamiBehaviours, ChildrenOfAParentThatNeverUsedCudaAllAllocate) {
  const auto r = e2e::RunProgram({GS_HAMI_CLIENT_PATH, "fork_children"}, HamiPod(), 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.Int("children_ok"), 4) << r.out << r.err;
}

// The parent's process slot in the ledger, from gpushare-smi --json: alive, and its charge.
struct ParentSlot {
  bool found = false;
  bool alive = false;
  long long used = -1;
};

ParentSlot SlotOf(int pid) {
  const auto smi = e2e::RunProgram({GS_SMI_PATH, "--json", "--ledger-dir", e2e::ScratchDir() + "/ledger"}, {});
  ParentSlot slot;
  const auto doc = nlohmann::json::parse(smi.out, nullptr, false);
  if (doc.is_discarded()) return slot;
  for (const auto& dev : doc.value("ledgers", nlohmann::json::array()))
    for (const auto& tenant : dev.value("tenants", nlohmann::json::array()))
      for (const auto& proc : tenant.value("processes", nlohmann::json::array()))
        if (proc.value("pid", -1) == pid) {
          slot.found = true;
          slot.alive = proc.value("alive", false);
          slot.used = proc.value("used_bytes", -1ll);
        }
  return slot;
}

void ExpectChildExitLeavesTheParent(const std::string& scenario) {
  auto env = HamiPod({"HAMI_CLIENT_HOLD_S=20"});
  auto parent = e2e::SpawnProgram({GS_HAMI_CLIENT_PATH, scenario}, env);
  ASSERT_EQ(e2e::WaitForValue(parent, "holding"), 1);
  EXPECT_EQ(e2e::WaitForValue(parent, "child_exited"), 1);
  EXPECT_EQ(e2e::WaitForValue(parent, "parent_charge_kept"), 1) << "the child's exit uncharged the parent";
  EXPECT_EQ(e2e::WaitForValue(parent, "parent_allocates"), 1);
  const ParentSlot slot = SlotOf(parent.pid);
  EXPECT_TRUE(slot.found && slot.alive) << "the ledger no longer shows the parent alive";
  EXPECT_GE(slot.used, 256 * kMiB);
  e2e::KillProgram(parent);
}

TEST(HamiBehaviours, AForkedChildsExitLeavesTheParentsMembership) { ExpectChildExitLeavesTheParent("fork_exit"); }

TEST(HamiBehaviours, ARawCloneChildsExitLeavesTheParentsMembership) {
  ExpectChildExitLeavesTheParent("clone_exit");
}

}  // namespace
