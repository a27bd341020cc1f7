// SPDX-License-Identifier: Apache-2.0
// SM partitions through the whole library: GPUSHARE_SM under LD_PRELOAD against the fake
// driver, whose kernels run on the SMs their launch descriptor's TPC mask enables (the fake's
// default map is the H100's: 132 SMs on 66 live bits of 128, 2 SMs each).
#include <cuda.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/client_runner.h"
#include "tests/e2e/preload_env.h"

namespace {

std::vector<std::string> Env(const std::string& tenant, const std::string& sm, std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"GPUSHARE_TENANT=" + tenant, "GPUSHARE_FAKE_DEVICES=16Gi"});
  if (!sm.empty()) extra.insert(extra.begin(), "GPUSHARE_SM=" + sm);
  return e2e::PreloadEnv(extra);
}

e2e::ClientResult RunClient(const std::vector<std::string>& env, const std::string& scenario = "paths") {
  return e2e::RunProgram({GS_SM_CLIENT_PATH, scenario}, env);
}

nlohmann::json Smi() {
  const auto r = e2e::RunProgram({GS_SMI_PATH, "--json", "--ledger-dir", e2e::ScratchDir() + "/ledger"}, {});
  return nlohmann::json::parse(r.out);
}

unsigned Popcount(const e2e::ClientResult& r) {
  unsigned n = 0;
  for (int i = 0; i < 4; ++i) n += __builtin_popcountll(static_cast<unsigned long long>(r.Int("disable" + std::to_string(i))));
  return n;
}

TEST(SmPartition, EveryLaunchPathRunsOnTheSliceAndSeesItsSize) {
  const auto r = RunClient(Env("a", "32", {"SM_CLIENT_WHOLE_GPU_SMS=132"}));
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("sm_count"), 32) << "cuDeviceGetAttribute reports the slice";
  for (const char* path : {"first", "default_stream", "stream", "threads", "launch_ex", "cooperative", "graph",
                           "graph_replay"}) {
    EXPECT_EQ(r.Int(std::string(path) + "_rc"), 0) << path << "\n" << r.err;
    EXPECT_EQ(r.Int(std::string(path) + "_sms"), 32) << path;
  }
  EXPECT_EQ(r.Int("masked"), 1);
  // 128 mask bits, 16 enabled (32 SMs): the other 112 are disabled.
  EXPECT_EQ(Popcount(r), 128u - 16u);
  // A grid sized for the whole GPU cannot be co-resident on the slice (a GPU would hang): what
  // the virtualised SM count prevents.
  EXPECT_NE(r.Int("cooperative_whole_gpu_rc"), 0);
}

TEST(SmPartition, UnderMpsTheMapMustComeFromTheLedger) {
  // An MPS client cannot measure the map: refused, saying what to do.
  const auto mps_first = RunClient(Env("a", "66", {"GPUSHARE_FAKE_MPS=1"}));
  EXPECT_NE(mps_first.Int("init_rc"), 0);
  EXPECT_NE(mps_first.err.find("cannot be measured under MPS"), std::string::npos) << mps_first.err;
  EXPECT_NE(mps_first.err.find("before the MPS daemon"), std::string::npos) << mps_first.err;
  // Mapped once without MPS, MPS clients read the map and get their slices.
  const auto premap = RunClient(Env("premap", "8"));
  ASSERT_EQ(premap.Int("init_rc"), 0) << premap.err;
  const auto mps = RunClient(Env("b", "66", {"GPUSHARE_FAKE_MPS=1"}));
  ASSERT_EQ(mps.Int("init_rc"), 0) << mps.err;
  EXPECT_EQ(mps.Int("launches_at_start"), 0) << "the map came from the ledger";
  EXPECT_EQ(mps.Int("first_sms"), 66);
}

TEST(SmPartition, APercentRoundsUpToWholeTpcs) {
  const auto r = RunClient(Env("a", "25%"));  // 25% of 132 = 33 SMs: 17 TPCs of 2
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("sm_count"), 34);
  EXPECT_EQ(r.Int("first_sms"), 34);
  const auto t = Smi()["ledgers"][0];
  EXPECT_EQ(t["sm_map"]["sm_count"], 132);
  EXPECT_EQ(t["sm_map"]["granularity_sms"], 2);
  EXPECT_EQ(t["tenants"][0]["sm_asked"], "25% of the SMs");
  EXPECT_EQ(t["tenants"][0]["sm_granted"], 34);
}

TEST(SmPartition, TheFirstProcessMapsTheGpuAndLaterOnesReadTheLedger) {
  const auto first = RunClient(Env("a", "8"));
  ASSERT_EQ(first.Int("init_rc"), 0) << first.err;
  // One launch with every bit, one per bit disabled, then 8 to 48 cluster launches for the GPCs.
  EXPECT_GE(first.Int("launches_at_start"), 129 + 8);
  EXPECT_LE(first.Int("launches_at_start"), 129 + 48);
  const auto map = Smi()["ledgers"][0]["sm_map"];
  EXPECT_EQ(map["gpcs"], nlohmann::json({"0-3", "9-16", "18-25", "27-34", "36-43", "45-52", "54-62", "63-71"}))
      << "the fake's default GPCs, found from cluster placements";
  EXPECT_EQ(map["unclustered_bits"], "75,78,81,83") << "TPCs that never ran a cluster block";
  const auto second = RunClient(Env("b", "8"));
  ASSERT_EQ(second.Int("init_rc"), 0) << second.err;
  EXPECT_EQ(second.Int("launches_at_start"), 0) << "the map came from the ledger";
  EXPECT_EQ(second.Int("first_sms"), 8);
}

TEST(SmPartition, CoTenantsGetDisjointSlices) {
  auto a = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("a", "64"));
  ASSERT_EQ(e2e::WaitForValue(a, "holding"), 1);
  auto b = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("b", "64"));
  ASSERT_EQ(e2e::WaitForValue(b, "holding"), 1);
  // Enabled = ~disabled; disjoint slices: no bit enabled in both.
  for (int i = 0; i < 4; ++i) {
    const auto da = static_cast<uint32_t>(e2e::WaitForValue(a, "disable" + std::to_string(i)));
    const auto db = static_cast<uint32_t>(e2e::WaitForValue(b, "disable" + std::to_string(i)));
    EXPECT_EQ(~da & ~db, 0u) << "word " << i;
  }
  EXPECT_EQ(e2e::WaitForValue(b, "first_sms"), 64);
  // A third tenant finds only 4 SMs free of 132: refused at start, saying why.
  const auto c = RunClient(Env("c", "16"));
  EXPECT_EQ(c.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(c.err.find("only 4 are free"), std::string::npos) << c.err;
  // Unless the operator allows overlap: it shares the least-used TPCs, and is told.
  const auto d = RunClient(Env("d", "16", {"GPUSHARE_SM_CONFLICT=overlap"}));
  EXPECT_EQ(d.Int("init_rc"), 0) << d.err;
  EXPECT_EQ(d.Int("first_sms"), 16);
  EXPECT_NE(d.err.find("sharing TPCs"), std::string::npos) << d.err;
  e2e::KillProgram(a);
  // A's slice went back with it.
  const auto e = RunClient(Env("e", "64"));
  EXPECT_EQ(e.Int("init_rc"), 0) << e.err;
  e2e::KillProgram(b);
}

std::set<unsigned> BitsOf(const std::string& ranges) {
  std::set<unsigned> bits;
  std::stringstream in(ranges);
  for (std::string part; std::getline(in, part, ',');) {
    if (part == "-") continue;
    const size_t dash = part.find('-');
    const unsigned lo = std::stoul(part.substr(0, dash));
    const unsigned hi = dash == std::string::npos ? lo : std::stoul(part.substr(dash + 1));
    for (unsigned b = lo; b <= hi; ++b) bits.insert(b);
  }
  return bits;
}

TEST(SmPartition, HalvesTakeWholeGpcsAndShareTheUnclusteredTpcs) {
  // The fake's default: GPCs of 8, 16 (five) and 18 (two) SMs, and 4 TPCs that run no clusters.
  auto a = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("a", "66"));
  ASSERT_EQ(e2e::WaitForValue(a, "holding"), 1);
  auto b = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("b", "66"));
  ASSERT_EQ(e2e::WaitForValue(b, "holding"), 1);
  auto tenants = Smi()["ledgers"][0]["tenants"];
  ASSERT_EQ(tenants.size(), 2u);
  int gpcs = 0;
  for (const auto& t : tenants) {
    EXPECT_EQ(t["sm_granted"], 66) << t.dump();
    gpcs += t["sm_gpcs"].get<int>();
    std::set<unsigned> unclustered;
    for (unsigned bit : BitsOf(t["sm_bits"])) if (bit == 75 || bit == 78 || bit == 81 || bit == 83) unclustered.insert(bit);
    EXPECT_EQ(unclustered.size(), 2u) << "half of the unclustered TPCs each: " << t.dump();
  }
  EXPECT_LE(gpcs, 9) << "8 GPCs, at most one of them split between the two";
  e2e::KillProgram(a);
  e2e::KillProgram(b);
  auto c = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("c", "66", {"GPUSHARE_SM_PLACEMENT=spread"}));
  ASSERT_EQ(e2e::WaitForValue(c, "holding"), 1);
  tenants = Smi()["ledgers"][0]["tenants"];
  ASSERT_EQ(tenants.size(), 1u);
  EXPECT_EQ(tenants[0]["sm_gpcs"], 8) << tenants[0].dump();
  e2e::KillProgram(c);
  const auto bad = RunClient(Env("d", "66", {"GPUSHARE_SM_PLACEMENT=packed"}));
  EXPECT_EQ(bad.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(bad.err.find("GPUSHARE_SM_PLACEMENT"), std::string::npos) << bad.err;
}

// What cuOccupancyMaxActiveClusters should report for the client's slice (its launch mask):
// blocks of 1024 threads (2 per SM), 2 SMs per bit, clusters of `size` blocks within each GPC.
long long SliceClusters(const e2e::ClientResult& r, const nlohmann::json& gpcs, unsigned size) {
  long long clusters = 0;
  for (const auto& gpc : gpcs) {
    long long sms = 0;
    for (unsigned bit : BitsOf(gpc.get<std::string>()))
      if (((r.Int("disable" + std::to_string(bit / 32)) >> (bit % 32)) & 1) == 0) sms += 2;
    clusters += sms * 2 / size;
  }
  return clusters;
}

TEST(SmPartition, MaxActiveClustersIsWhatTheSliceHolds) {
  const auto whole = RunClient(Env("w", ""), "clusters");
  ASSERT_EQ(whole.Int("init_rc"), 0) << whole.err;
  // The fake's whole GPU: 124 SMs that run clusters, in GPCs of 8, 16 (five) and 18 (two) SMs.
  EXPECT_EQ(whole.Int("clusters_2"), 124);
  EXPECT_EQ(whole.Int("clusters_8"), 30);
  EXPECT_EQ(whole.Int("clusters_required_4"), 62);
  for (const auto& [sm, placement] : {std::pair{"66", "gpc"}, std::pair{"50%", "spread"}}) {
    SCOPED_TRACE(std::string(sm) + " " + placement);
    const auto r = RunClient(Env("a", sm, {std::string("GPUSHARE_SM_PLACEMENT=") + placement}), "clusters");
    ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
    ASSERT_EQ(r.Int("sm_count"), 66);
    const auto gpcs = Smi()["ledgers"][0]["sm_map"]["gpcs"];
    ASSERT_EQ(gpcs.size(), 8u);
    EXPECT_EQ(r.Int("clusters_2_rc"), 0);
    EXPECT_EQ(r.Int("clusters_2"), SliceClusters(r, gpcs, 2));
    EXPECT_EQ(r.Int("clusters_8"), SliceClusters(r, gpcs, 8));
    EXPECT_EQ(r.Int("clusters_required_4"), SliceClusters(r, gpcs, 4));
    EXPECT_LT(r.Int("clusters_8"), 16) << "66 of 132 SMs hold at most half the GPU's clusters";
    EXPECT_GT(r.Int("clusters_8"), 0);
    for (const char* size : {"2", "8"}) {
      EXPECT_EQ(r.Int(std::string("cluster_launch_") + size + "_rc"), 0) << size << "\n" << r.err;
      EXPECT_EQ(r.Int(std::string("cluster_launch_") + size + "_sms"), 66) << size;
    }
    // Bad arguments get the driver's errors.
    EXPECT_EQ(r.Int("clusters_null_out_rc"), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(r.Int("clusters_null_config_rc"), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(r.Int("clusters_unset_rc"), CUDA_ERROR_INVALID_CLUSTER_SIZE);
  }
}

TEST(SmPartition, MaxActiveClustersWithoutGpcsIsTheSlicesShare) {
  // As below: GPCs of one TPC each, which the map cannot tell; the slice is 8 of 32 SMs.
  const auto r = RunClient(Env("a", "8", {"GPUSHARE_FAKE_TPC_BITS=0-15", "GPUSHARE_FAKE_UNCLUSTERED_BITS=",
                                          "GPUSHARE_FAKE_GPCS=0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15"}),
                           "clusters");
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("clusters_2"), 32 * 8 / 32) << "the GPU holds 32 clusters of 2";
  EXPECT_EQ(r.Int("clusters_required_4"), 16 * 8 / 32);
  EXPECT_EQ(r.Int("clusters_8"), 0) << "no GPC holds a cluster of 8";
  EXPECT_EQ(r.Int("cluster_launch_2_rc"), 0) << r.err;
}

TEST(SmPartition, GpcsThatCannotBeMeasuredLeaveSlicesInBitOrder) {
  // Every GPC is one TPC (2 SMs): no cluster (4 to 16 blocks) fits anywhere.
  const auto r = RunClient(Env("a", "8", {"GPUSHARE_FAKE_TPC_BITS=0-15", "GPUSHARE_FAKE_UNCLUSTERED_BITS=",
                                          "GPUSHARE_FAKE_GPCS=0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15",
                                          "GPUSHARE_LOG_LEVEL=info"}));
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("first_sms"), 8);
  EXPECT_NE(r.err.find("GPCs of device 0 are unknown (the cluster kernel (clusters of 16) failed"), std::string::npos) << r.err;
  const auto ledger = Smi()["ledgers"][0];
  EXPECT_EQ(ledger["sm_map"]["gpcs"], nlohmann::json::array());
  EXPECT_EQ(ledger["tenants"][0]["sm_bits"], "0-3");
}

// The compute gate's event tracker through the preloaded library: more streams than a thread's
// event slots, round after round (slots are taken over, their events reused once complete).
TEST(ComputeShareLaunches, ManyStreamsUnderAShareAllRun) {
  const auto r = RunClient(Env("a", "", {"GPUSHARE_COMPUTE=50%", "GPUSHARE_LOG_LEVEL=info"}), "streams");
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_NE(r.err.find("compute share 50.00%"), std::string::npos) << r.err;
  EXPECT_EQ(r.Int("streams_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("streams_sync_rc"), 0) << r.err;
}

// Contexts destroyed under a compute share (cuCtxDestroy, the primary context's last release,
// its reset): the tracker forgets their events before the driver destroys them, so nothing ever
// queries or records a dead event, launches in the next context are tracked, and the turn still
// goes to another tenant.
TEST(ComputeShareLaunches, ContextsDestroyedUnderAShareAreForgotten) {
  auto a = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "contexts"},
                             Env("a", "", {"GPUSHARE_COMPUTE=50%", "GPUSHARE_LOG_LEVEL=debug"}));
  ASSERT_EQ(e2e::WaitForValue(a, "holding", 60), 1);
  EXPECT_EQ(e2e::WaitForValue(a, "contexts_rc"), 0);
  EXPECT_EQ(e2e::WaitForValue(a, "bad_event_calls"), 0) << "a dead event was queried or recorded";
  const auto b = RunClient(Env("b", "", {"GPUSHARE_COMPUTE=50%"}), "streams");
  ASSERT_EQ(b.Int("init_rc"), 0) << b.err;
  EXPECT_EQ(b.Int("streams_rc"), 0) << b.err;
  EXPECT_EQ(b.Int("streams_sync_rc"), 0) << b.err;
  // Each of the four contexts had events, all forgotten when it went.
  std::ifstream err(a.err_path);
  std::string line;
  int forgotten = 0;
  while (std::getline(err, line)) forgotten += line.find("events forgotten") != std::string::npos;
  EXPECT_EQ(forgotten, 4);
  e2e::KillProgram(a);
}

TEST(SmPartition, ProcessesOfOneTenantShareItsSlice) {
  auto a = e2e::SpawnProgram({GS_SM_CLIENT_PATH, "hold"}, Env("t", "100"));
  ASSERT_EQ(e2e::WaitForValue(a, "holding"), 1);
  const auto b = RunClient(Env("t", "100"));
  ASSERT_EQ(b.Int("init_rc"), 0) << b.err;
  EXPECT_EQ(b.Int("first_sms"), 100);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(b.Int("disable" + std::to_string(i)), e2e::WaitForValue(a, "disable" + std::to_string(i)));
  const auto other = RunClient(Env("t", "50"));
  EXPECT_EQ(other.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(other.err.find("every process of a tenant must agree"), std::string::npos) << other.err;
  e2e::KillProgram(a);
}

TEST(SmPartition, AnUnknownDescriptorLayoutIsNeverWritten) {
  const auto refused = RunClient(Env("a", "32", {"GPUSHARE_FAKE_QMD_VERSION=0x50"}));
  EXPECT_EQ(refused.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(refused.err.find("version byte 0x50"), std::string::npos) << refused.err;
  const auto allowed = RunClient(Env("a", "32", {"GPUSHARE_FAKE_QMD_VERSION=0x50", "GPUSHARE_SM_FALLBACK=unconfined"}));
  ASSERT_EQ(allowed.Int("init_rc"), 0) << allowed.err;
  EXPECT_EQ(allowed.Int("sm_count"), 132) << "never report fewer SMs than kernels get";
  EXPECT_EQ(allowed.Int("first_sms"), 132);
  EXPECT_EQ(allowed.Int("masked_launches"), 0);
  EXPECT_NE(allowed.err.find("running on every SM"), std::string::npos) << allowed.err;
}

TEST(SmPartition, ATakenCallbackSlotIsReported) {
  const auto refused = RunClient(Env("a", "32", {"GPUSHARE_FAKE_PROFILER=1"}));
  EXPECT_EQ(refused.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(refused.err.find("launch-callback slot is taken"), std::string::npos) << refused.err;
  const auto allowed = RunClient(Env("a", "32", {"GPUSHARE_FAKE_PROFILER=1", "GPUSHARE_SM_FALLBACK=unconfined"}));
  EXPECT_EQ(allowed.Int("init_rc"), 0) << allowed.err;
  EXPECT_EQ(allowed.Int("sm_count"), 132);
  const auto t = Smi()["ledgers"][0]["tenants"][0];
  EXPECT_EQ(t["sm_unconfined"], true);
}

TEST(SmPartition, ProfilingLeavesTheSlotToProfilers) {
  const auto r = RunClient(Env("a", "32", {"GPUSHARE_SM_PROFILING=true"}));
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("callback_subscribed"), 0);
  EXPECT_EQ(r.Int("sm_count"), 132);
  EXPECT_NE(r.err.find("not enforced"), std::string::npos) << r.err;
}

TEST(SmPartition, WithoutGpushareSmNothingIsTouched) {
  const auto r = RunClient(Env("a", ""));
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("callback_subscribed"), 0);
  EXPECT_EQ(r.Int("launches_at_start"), 0);
  EXPECT_EQ(r.Int("sm_count"), 132);
  EXPECT_EQ(r.Int("first_sms"), 132);
}

TEST(SmPartition, EachDeviceOfAProcessIsConfined) {
  auto env = e2e::PreloadEnv({"GPUSHARE_TENANT=a", "GPUSHARE_SM=16", "GPUSHARE_FAKE_DEVICES=16Gi,8Gi"});
  const auto r = RunClient(env);
  ASSERT_EQ(r.Int("init_rc"), 0) << r.err;
  EXPECT_EQ(r.Int("sm_count"), 16);
  EXPECT_EQ(r.Int("default_stream_sms"), 16);
  EXPECT_EQ(r.Int("threads_sms"), 16);
  EXPECT_EQ(Smi()["ledgers"].size(), 2u);
}

TEST(SmPartition, AskingForMoreThanTheGpuIsRefused) {
  const auto r = RunClient(Env("a", "200"));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(r.err.find("200 SMs asked, the GPU has 132"), std::string::npos) << r.err;
}

TEST(SmPartition, AMalformedShareFailsClosed) {
  const auto r = RunClient(Env("a", "25 %"));
  EXPECT_EQ(r.Int("init_rc"), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_NE(r.err.find("GPUSHARE_SM=\"25 %\" is not valid"), std::string::npos) << r.err;
}

}  // namespace
