// SPDX-License-Identifier: Apache-2.0
// The swap resolver through the whole library: swap tenants' processes on one fake GPU whose
// bursts collide take turns through host memory, with their contents and addresses kept.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/driver_api.h"
#include "tests/e2e/preload_env.h"

namespace {

constexpr long long kMiB = 1ll << 20;

// A 256 MiB GPU; each tenant 64 MiB request, 200 MiB limit, swap resolver, a 300 ms quantum.
std::vector<std::string> SwapTenant(const std::string& name, std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + name, "GPUSHARE_MEM_REQUEST=64Mi", "GPUSHARE_MEM_LIMIT=200Mi",
                               "GPUSHARE_FAKE_DEVICES=256Mi", "GPUSHARE_RESOLVER=swap",
                               "GPUSHARE_SWAP_QUANTUM=300ms", "GPUSHARE_WAIT_MODE=always",
                               "GPUSHARE_WAIT_TIMEOUT=30s", "GPUSHARE_SWAP_STAGING=96Mi"});
  return e2e::PreloadEnv(extra);
}

e2e::Spawned Work(const std::vector<std::string>& env, long long bytes, int iters, int threads) {
  return e2e::SpawnProgram({GS_SWAP_CLIENT_PATH, "work", std::to_string(bytes), std::to_string(iters),
                            std::to_string(threads)},
                           env);
}

nlohmann::json Ledger() {
  const auto smi = e2e::RunProgram({GS_SMI_PATH, "--json", "--ledger-dir", e2e::ScratchDir() + "/ledger"}, {});
  const nlohmann::json all = nlohmann::json::parse(smi.out);
  for (const auto& l : all["ledgers"])
    if (l["total_bytes"] == 256 * kMiB) return l;
  return nlohmann::json::object();
}

nlohmann::json TenantOf(const nlohmann::json& ledger, const std::string& name) {
  if (ledger.contains("tenants"))
    for (const auto& t : ledger["tenants"])
      if (t["name"] == name) return t;
  return nlohmann::json::object();
}

TEST(Swap, AllocationsAnswerPointerQueriesAsCuMemAllocMemory) {
  const auto r = e2e::RunProgram({GS_SWAP_CLIENT_PATH, "attrs"}, SwapTenant("attrs"));
  EXPECT_EQ(r.Int("alloc_rc"), CUDA_SUCCESS) << r.err;
  EXPECT_EQ(r.Int("charged"), 6 * kMiB) << "5 MiB + 1 byte is charged as 3 granules of 2 MiB";
  EXPECT_EQ(r.Int("aligned_2mib"), 1);
  EXPECT_EQ(r.Int("context_rc"), CUDA_SUCCESS);
  EXPECT_EQ(r.Int("context_is_current"), 1) << "VMM memory would answer a null context";
  EXPECT_EQ(r.Int("memory_type"), CU_MEMORYTYPE_DEVICE);
  EXPECT_EQ(r.Int("range_start_ok"), 1);
  EXPECT_EQ(r.Int("range_size"), 5 * kMiB + 1) << "the size asked for, as cuMemAlloc memory reports";
  EXPECT_EQ(r.Int("device_pointer_ok"), 1);
  EXPECT_EQ(r.Int("ordinal"), 0);
  EXPECT_EQ(r.Int("host_pointer_rc"), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(r.Int("attrs_rc"), CUDA_SUCCESS);
  EXPECT_EQ(r.Int("attrs_ok"), 1);
  EXPECT_EQ(r.Int("range_rc"), CUDA_SUCCESS);
  EXPECT_EQ(r.Int("range_ok"), 1);
  EXPECT_EQ(r.Int("past_end_rc"), CUDA_ERROR_NOT_FOUND);
  for (const char* key : {"memset8_rc", "memset16_rc", "memset32_rc", "dtod_rc", "unified_rc", "free_rc", "free_q_rc"})
    EXPECT_EQ(r.Int(key), CUDA_SUCCESS) << key;
  EXPECT_EQ(r.Int("contents_ok"), 1);
  EXPECT_EQ(r.Int("after_free_rc"), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(r.Int("released"), 1) << "the free gave back the rounded charge";
}

TEST(Swap, TenantsTakeTurnsAndKeepTheirContentsAndAddresses) {
  // Each wants ~164 MiB of a 256 MiB GPU: they cannot both be resident.
  auto a = Work(SwapTenant("a"), 160 * kMiB, 150, 4);
  ASSERT_EQ(e2e::WaitForValue(a, "filled"), 1);
  auto b = Work(SwapTenant("b"), 160 * kMiB, 150, 1);
  EXPECT_EQ(e2e::WaitForValue(b, "done", 60), 1) << "b got its memory and finished";
  EXPECT_EQ(e2e::WaitForValue(a, "done", 60), 1) << "a was swapped back in and finished";
  for (auto* p : {&a, &b}) {
    EXPECT_EQ(e2e::WaitForValue(*p, "bitexact", 1), 1);
    EXPECT_EQ(e2e::WaitForValue(*p, "memset2d_ok", 1), 1) << "2D memsets and copies of swappable memory";
    EXPECT_EQ(e2e::WaitForValue(*p, "addresses_kept", 1), 1);
    EXPECT_EQ(e2e::WaitForValue(*p, "errors", 1), 0) << "no launch ran on unmapped memory";
    EXPECT_EQ(e2e::WaitForValue(*p, "sync_rc", 1), CUDA_SUCCESS) << "no context was lost";
  }
  const nlohmann::json ledger = Ledger();
  const nlohmann::json ta = TenantOf(ledger, "a"), tb = TenantOf(ledger, "b");
  ASSERT_FALSE(ta.empty()) << ledger.dump();
  ASSERT_FALSE(tb.empty()) << ledger.dump();
  EXPECT_GE(ta["swap"]["swaps_out"], 1) << ledger.dump();
  EXPECT_GE(ta["swap"]["swaps_in"], 1) << "a's first launch after its swap-out swapped in";
  EXPECT_GE(tb["swap"]["swaps_out"], 1) << "round robin: b yielded back once its quantum was over";
  EXPECT_GT(ta["swap"]["swap_out_bytes"], 0);
  EXPECT_LE(ta["swap"]["swap_in_bytes"].get<long long>(), ta["swap"]["swap_out_bytes"].get<long long>());
  EXPECT_LE(ledger["sum_used_bytes"].get<long long>(), 256 * kMiB);
  EXPECT_EQ(ledger["swaps_out"], ta["swap"]["swaps_out"].get<long long>() + tb["swap"]["swaps_out"].get<long long>());
  e2e::KillProgram(a);
  e2e::KillProgram(b);
}

TEST(Swap, NoSwapOutWhileAStreamCaptureIsOpen) {
  auto a = e2e::SpawnProgram({GS_SWAP_CLIENT_PATH, "capture", "1000", std::to_string(160 * kMiB), "150", "1"},
                             SwapTenant("a"));
  ASSERT_EQ(e2e::WaitForValue(a, "capturing"), 1);
  auto b = Work(SwapTenant("b"), 160 * kMiB, 20, 1);
  EXPECT_EQ(e2e::WaitForValue(a, "capture_rc", 60), CUDA_SUCCESS) << "the drain waited for the capture to end";
  EXPECT_EQ(e2e::WaitForValue(b, "done", 60), 1);
  EXPECT_EQ(e2e::WaitForValue(a, "done", 60), 1);
  EXPECT_EQ(e2e::WaitForValue(a, "bitexact", 1), 1);
  EXPECT_EQ(e2e::WaitForValue(a, "errors", 1), 0);
  EXPECT_GE(TenantOf(Ledger(), "a")["swap"]["swaps_out"], 1) << "it swapped once the capture ended";
  e2e::KillProgram(a);
  e2e::KillProgram(b);
}

TEST(Swap, AProcessKilledMidSwapLeavesTheLedgerConsistent) {
  // a's copies to host are slow (200 ms each): it is killed while swapping out.
  auto a = Work(SwapTenant("a", {"GPUSHARE_FAKE_DTOH_DELAY_MS=200"}), 160 * kMiB, 100000, 1);
  ASSERT_EQ(e2e::WaitForValue(a, "filled"), 1);
  auto b = e2e::SpawnProgram({GS_CLIENT_PATH, "link", "hold", std::to_string(160 * kMiB)},
                             SwapTenant("b"));
  bool caught = false;
  for (int i = 0; i < 200 && !caught; ++i) {
    const nlohmann::json ta = TenantOf(Ledger(), "a");
    if (!ta.empty() && !ta["processes"].empty() && ta["processes"][0]["swap_state"] == "swapping-out") caught = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(caught) << "a never started swapping out";
  e2e::KillProgram(a);
  EXPECT_GE(e2e::WaitForValue(b, "held", 30), 160 * kMiB) << "a's memory was released with its slot";
  const nlohmann::json ledger = Ledger();
  EXPECT_TRUE(TenantOf(ledger, "a").empty()) << "a's slot was reaped: " << ledger.dump();
  const nlohmann::json tb = TenantOf(ledger, "b");
  ASSERT_FALSE(tb.empty());
  EXPECT_EQ(ledger["sum_used_bytes"], tb["used_bytes"]) << "nothing of a is still counted";
  EXPECT_LE(tb["used_bytes"].get<long long>(), 200 * kMiB);
  e2e::KillProgram(b);
}

}  // namespace
