// SPDX-License-Identifier: Apache-2.0
#include "quota/ledger.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <functional>

#include "quota/tenant_identity.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::TempDir;

TEST(LedgerAbi, PinsEveryOffset) {
  EXPECT_EQ(sizeof(GsLedgerHeader), 4096u);
  EXPECT_EQ(offsetof(GsLedgerHeader, magic), 0u);
  EXPECT_EQ(offsetof(GsLedgerHeader, abi_version), 8u);
  EXPECT_EQ(offsetof(GsLedgerHeader, header_bytes), 12u);
  EXPECT_EQ(offsetof(GsLedgerHeader, tenant_slot_bytes), 16u);
  EXPECT_EQ(offsetof(GsLedgerHeader, tenant_slot_count), 20u);
  EXPECT_EQ(offsetof(GsLedgerHeader, process_slot_bytes), 24u);
  EXPECT_EQ(offsetof(GsLedgerHeader, process_slot_count), 28u);
  EXPECT_EQ(offsetof(GsLedgerHeader, tenant_slots_offset), 32u);
  EXPECT_EQ(offsetof(GsLedgerHeader, process_slots_offset), 40u);
  EXPECT_EQ(offsetof(GsLedgerHeader, file_bytes), 48u);
  EXPECT_EQ(offsetof(GsLedgerHeader, total_bytes), 56u);
  EXPECT_EQ(offsetof(GsLedgerHeader, usable_bytes), 64u);
  EXPECT_EQ(offsetof(GsLedgerHeader, uuid), 72u);
  EXPECT_EQ(offsetof(GsLedgerHeader, initialized), 88u);
  EXPECT_EQ(offsetof(GsLedgerHeader, lock_bytes), 92u);
  EXPECT_EQ(offsetof(GsLedgerHeader, created_unix_ns), 96u);
  EXPECT_EQ(offsetof(GsLedgerHeader, repairs), 104u);
  EXPECT_EQ(offsetof(GsLedgerHeader, reaped_processes), 112u);
  EXPECT_EQ(offsetof(GsLedgerHeader, reserved0), 120u);
  EXPECT_EQ(offsetof(GsLedgerHeader, lock), 128u);
  EXPECT_EQ(offsetof(GsLedgerHeader, wake_seq), 192u);
  EXPECT_EQ(offsetof(GsLedgerHeader, waiting), 196u);
  EXPECT_EQ(offsetof(GsLedgerHeader, next_ticket), 200u);
  EXPECT_EQ(offsetof(GsLedgerHeader, terminations), 208u);
  EXPECT_EQ(offsetof(GsLedgerHeader, terminations_offset), 216u);
  EXPECT_EQ(offsetof(GsLedgerHeader, termination_slot_bytes), 224u);
  EXPECT_EQ(offsetof(GsLedgerHeader, termination_slot_count), 228u);
  EXPECT_EQ(offsetof(GsLedgerHeader, waiter_slot_count), 232u);
  EXPECT_EQ(offsetof(GsLedgerHeader, hidden_bytes), 240u);
  EXPECT_EQ(offsetof(GsLedgerHeader, hidden_until_ns), 248u);
  EXPECT_EQ(offsetof(GsLedgerHeader, waiters), 256u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_map_state), 3328u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_count), 3332u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_qmd_version), 3336u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_driver_version), 3340u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_map_unix_ns), 3344u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_map_ns), 3352u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_live), 3360u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_per_bit), 3376u);
  EXPECT_EQ(offsetof(GsLedgerHeader, sm_gpc_of_bit), 3504u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_owner), 3632u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_seq), 3636u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_kick), 3640u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_waiting), 3644u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_owner_generation), 3648u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_grant_ns), 3656u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_epoch), 3664u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_vfloor), 3672u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_dead_handovers), 3680u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_preemptions), 3688u);
  EXPECT_EQ(offsetof(GsLedgerHeader, compute_reserved), 3696u);
  EXPECT_EQ(sizeof(GsLedgerHeader::compute_reserved), 128u);
  EXPECT_EQ(offsetof(GsLedgerHeader, swaps_out), 3824u);
  EXPECT_EQ(offsetof(GsLedgerHeader, swap_out_bytes), 3832u);
  EXPECT_EQ(offsetof(GsLedgerHeader, swaps_in), 3840u);
  EXPECT_EQ(offsetof(GsLedgerHeader, swap_in_bytes), 3848u);
  EXPECT_EQ(offsetof(GsLedgerHeader, swap_reserved), 3856u);
  EXPECT_EQ(sizeof(GsLedgerHeader::swap_reserved), 208u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_bytes), 4064u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_driver), 4072u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_state), 4076u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_unix_ns), 4080u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_flags), 4088u);
  EXPECT_EQ(offsetof(GsLedgerHeader, context_overhead_reserved), 4092u);

  EXPECT_EQ(sizeof(GsLedgerWaiter), 48u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, ticket), 0u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, bytes), 8u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, generation), 16u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, process_index), 24u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, tenant_index), 28u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, since_ns), 32u);
  EXPECT_EQ(offsetof(GsLedgerWaiter, deadline_ns), 40u);

  EXPECT_EQ(sizeof(GsLedgerTermination), 320u);
  EXPECT_EQ(offsetof(GsLedgerTermination, sequence), 0u);
  EXPECT_EQ(offsetof(GsLedgerTermination, unix_ns), 8u);
  EXPECT_EQ(offsetof(GsLedgerTermination, victim_used_bytes), 16u);
  EXPECT_EQ(offsetof(GsLedgerTermination, victim_burst_bytes), 24u);
  EXPECT_EQ(offsetof(GsLedgerTermination, reason), 32u);
  EXPECT_EQ(offsetof(GsLedgerTermination, victim_priority), 36u);
  EXPECT_EQ(offsetof(GsLedgerTermination, requester_priority), 40u);
  EXPECT_EQ(offsetof(GsLedgerTermination, victim_idle_ns), 48u);
  EXPECT_EQ(offsetof(GsLedgerTermination, requester_bytes), 56u);
  EXPECT_EQ(offsetof(GsLedgerTermination, victim), 64u);
  EXPECT_EQ(offsetof(GsLedgerTermination, requester), 192u);

  EXPECT_EQ(sizeof(GsLedgerTenant), 640u);
  EXPECT_EQ(offsetof(GsLedgerTenant, state), 0u);
  EXPECT_EQ(offsetof(GsLedgerTenant, flags), 4u);
  EXPECT_EQ(offsetof(GsLedgerTenant, request_bytes), 8u);
  EXPECT_EQ(offsetof(GsLedgerTenant, limit_bytes), 16u);
  EXPECT_EQ(offsetof(GsLedgerTenant, asked_request_bytes), 24u);
  EXPECT_EQ(offsetof(GsLedgerTenant, used_bytes), 32u);
  EXPECT_EQ(offsetof(GsLedgerTenant, oom_denials), 40u);
  EXPECT_EQ(offsetof(GsLedgerTenant, process_count), 48u);
  EXPECT_EQ(offsetof(GsLedgerTenant, reserved0), 52u);
  EXPECT_EQ(offsetof(GsLedgerTenant, joined_unix_ns), 56u);
  EXPECT_EQ(offsetof(GsLedgerTenant, name), 64u);
  EXPECT_EQ(offsetof(GsLedgerTenant, resolver), 192u);
  EXPECT_EQ(offsetof(GsLedgerTenant, priority), 196u);
  EXPECT_EQ(offsetof(GsLedgerTenant, idle_timeout_ns), 200u);
  EXPECT_EQ(offsetof(GsLedgerTenant, kill_grace_ns), 208u);
  EXPECT_EQ(offsetof(GsLedgerTenant, terminate), 216u);
  EXPECT_EQ(offsetof(GsLedgerTenant, terminate_unix_ns), 224u);
  EXPECT_EQ(offsetof(GsLedgerTenant, wait_ns_total), 232u);
  EXPECT_EQ(offsetof(GsLedgerTenant, waits), 240u);
  EXPECT_EQ(offsetof(GsLedgerTenant, terminations), 248u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_asked), 256u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_asked_kind), 260u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_mask), 264u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_granted), 280u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_flags), 284u);
  EXPECT_EQ(offsetof(GsLedgerTenant, sm_reserved), 288u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_share_bp), 384u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_flags), 388u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_vtime), 392u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_gpu_ns), 400u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_throttled_ns), 408u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_turns), 416u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_window_start_ns), 424u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_window_gpu_ns), 432u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_window_throttled_ns), 448u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_busy_ns), 464u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_recent_ns), 472u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_recent_at_ns), 480u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_express_ns), 488u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_first_charge_ns), 496u);
  EXPECT_EQ(offsetof(GsLedgerTenant, compute_reserved), 504u);
  EXPECT_EQ(sizeof(GsLedgerTenant::compute_reserved), 8u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_quantum_ns), 512u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_ask_bytes), 520u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_seq), 528u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_requester), 532u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_turn_ns), 536u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swaps_out), 544u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_out_bytes), 552u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_out_ns), 560u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swaps_in), 568u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_in_bytes), 576u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_in_ns), 584u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_wait_ns), 592u);
  EXPECT_EQ(offsetof(GsLedgerTenant, swap_reserved), 600u);
  EXPECT_EQ(sizeof(GsLedgerTenant), 640u);

  EXPECT_EQ(sizeof(GsLedgerProcess), 384u);
  EXPECT_EQ(offsetof(GsLedgerProcess, state), 0u);
  EXPECT_EQ(offsetof(GsLedgerProcess, tenant_index), 4u);
  EXPECT_EQ(offsetof(GsLedgerProcess, generation), 8u);
  EXPECT_EQ(offsetof(GsLedgerProcess, used_bytes), 16u);
  EXPECT_EQ(offsetof(GsLedgerProcess, inflight), 24u);
  EXPECT_EQ(offsetof(GsLedgerProcess, peak_bytes), 32u);
  EXPECT_EQ(offsetof(GsLedgerProcess, pid), 40u);
  EXPECT_EQ(offsetof(GsLedgerProcess, rejoined), 44u);
  EXPECT_EQ(offsetof(GsLedgerProcess, start_unix_ns), 48u);
  EXPECT_EQ(offsetof(GsLedgerProcess, container_id), 56u);
  EXPECT_EQ(offsetof(GsLedgerProcess, last_active_ns), 128u);
  EXPECT_EQ(offsetof(GsLedgerProcess, waiting), 136u);
  EXPECT_EQ(offsetof(GsLedgerProcess, reserved1), 140u);
  EXPECT_EQ(offsetof(GsLedgerProcess, sm_mode), 144u);
  EXPECT_EQ(offsetof(GsLedgerProcess, reserved2), 148u);
  EXPECT_EQ(offsetof(GsLedgerProcess, compute_wanting), 152u);
  EXPECT_EQ(offsetof(GsLedgerProcess, compute_want_since_ns), 160u);
  EXPECT_EQ(offsetof(GsLedgerProcess, compute_gpu_ns), 168u);
  EXPECT_EQ(offsetof(GsLedgerProcess, compute_throttled_ns), 176u);
  EXPECT_EQ(offsetof(GsLedgerProcess, compute_reserved), 184u);
  EXPECT_EQ(sizeof(GsLedgerProcess::compute_reserved), 72u);
  EXPECT_EQ(offsetof(GsLedgerProcess, swapped_out_bytes), 256u);
  EXPECT_EQ(offsetof(GsLedgerProcess, swap_state), 264u);
  EXPECT_EQ(offsetof(GsLedgerProcess, reserved3), 268u);
  EXPECT_EQ(offsetof(GsLedgerProcess, swap_state_since_ns), 272u);
  EXPECT_EQ(offsetof(GsLedgerProcess, staging_bytes), 280u);
  EXPECT_EQ(offsetof(GsLedgerProcess, swappable_bytes), 288u);
  EXPECT_EQ(offsetof(GsLedgerProcess, swap_reserved), 296u);
  EXPECT_EQ(sizeof(GsLedgerProcess::swap_reserved), 80u);
  EXPECT_EQ(offsetof(GsLedgerProcess, context_bytes), 376u);
  EXPECT_EQ(GS_LEDGER_TERMINATIONS_OFFSET, 4096u + 64u * 640u + 512u * 384u);
  EXPECT_EQ(GS_LEDGER_FILE_BYTES, 4096u + 64u * 640u + 512u * 384u + 32u * 320u);
}

TEST(LedgerPath, NamesTheGpuByUuid) {
  EXPECT_EQ(LedgerPath("/var/run/gpushare", kUuid),
            "/var/run/gpushare/gpushare-123456789abcdef00123456789abcdef.ledger");
  EXPECT_EQ(LedgerPath("/d/", kUuid), "/d/gpushare-123456789abcdef00123456789abcdef.ledger");
  EXPECT_STREQ(kDefaultLedgerDir, "/var/run/gpushare");
}

TEST(DecideCharge, RequestIsGuaranteedAndBurstComesFromThePool) {
  ChargeQuery q{.bytes = 4, .tenant_used_bytes = 0, .request_bytes = 4, .limit_bytes = 8,
                .usable_bytes = 10, .sum_request_bytes = 8, .others_burst_bytes = 0,
                .others_used_bytes = 4};
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kGrant);
  q.tenant_used_bytes = 4, q.bytes = 2;  // burst 2 of a pool of 10 - 8
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kGrant);
  q.bytes = 3;
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kNoBurstRoom);
  q.others_burst_bytes = 1, q.bytes = 2;  // another tenant took 1 of the pool
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kNoBurstRoom);
  q.bytes = 1;
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kGrant);
  q.tenant_used_bytes = 7, q.bytes = 2, q.others_burst_bytes = 0, q.usable_bytes = 100;
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kOverLimit);
  q.tenant_used_bytes = 0, q.bytes = UINT64_MAX;
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kOverLimit);
  // The physical total holds even when the pool math would allow it (forced charges).
  q = ChargeQuery{.bytes = 2, .tenant_used_bytes = 4, .request_bytes = 4, .limit_bytes = 8,
                  .usable_bytes = 10, .sum_request_bytes = 4, .others_burst_bytes = 0,
                  .others_used_bytes = 5};
  EXPECT_EQ(DecideCharge(q), ChargeVerdict::kNoPhysicalRoom);
  EXPECT_EQ(BurstOf(5, 3), 2u);
  EXPECT_EQ(BurstOf(2, 3), 0u);
}

TEST(LedgerSession, CreatesDirectoryAndFileForEveryUser) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/a/b";
  std::string error;
  auto s = LedgerSession::Open(dir, kUuid, 1024 * kMiB, Tenant("t", 1, 2), &error);
  ASSERT_NE(s, nullptr) << error;
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  ASSERT_EQ(stat(tmp.ledger().c_str(), &st), -1);  // not in the parent
  ASSERT_EQ(stat(s->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), GS_LEDGER_FILE_BYTES);
  EXPECT_EQ(ListLedgers(dir), std::vector<std::string>{s->path()});
}

TEST(LedgerSession, UnusableDirectoryIsAClearError) {
  TempDir tmp;
  const std::string file = tmp.path() + "/plain-file";
  std::ofstream(file) << "x";
  std::string error;
  EXPECT_EQ(LedgerSession::Open(file, kUuid, kMiB, Tenant("t", 0, 1), &error), nullptr);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("not a directory"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(LedgerSession::Open(file + "/sub", kUuid, kMiB, Tenant("t", 0, 1), &error), nullptr);
  EXPECT_NE(error.find(file + "/sub"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(LedgerSession::Open("/proc/gpushare-nope", kUuid, kMiB, Tenant("t", 0, 1), &error), nullptr);
  EXPECT_NE(error.find("/proc/gpushare-nope"), std::string::npos) << error;
}

TEST(LedgerSession, AdmissionKeepsRequestsWithinUsable) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("a", 4, 8), &error);
  ASSERT_NE(a, nullptr) << error;
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("b", 5, 8), &error), nullptr);
  EXPECT_NE(error.find("'b'"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(4 * kMiB)), std::string::npos) << error;  // what is left
  auto b = LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("b", 5, 8, /*best_effort=*/true), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_TRUE(b->best_effort());
  EXPECT_EQ(b->request_bytes(), 0u);
  auto c = LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("c", 4, 4), &error);
  ASSERT_NE(c, nullptr) << error;
  EXPECT_EQ(c->request_bytes(), 4 * kMiB);
  // A request also may not be taken by others' bursts at admission time.
  c.reset();
  ASSERT_TRUE(b->TryCharge(3 * kMiB));  // burst: the pool is 8 - 4
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("d", 2, 4), &error), nullptr);
  EXPECT_NE(error.find("burst by others " + std::to_string(3 * kMiB)), std::string::npos) << error;
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 8 * kMiB, Tenant("e", 5, 4), &error), nullptr);
  EXPECT_NE(error.find("above its limit"), std::string::npos) << error;
}

TEST(LedgerSession, SecondProcessJoinsItsTenant) {
  TempDir tmp;
  std::string error;
  auto p1 = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("t", 10, 20), &error);
  auto p2 = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("t", 10, 20), &error);
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr) << error;
  EXPECT_EQ(p1->tenant_index(), p2->tenant_index());
  ASSERT_TRUE(p1->TryCharge(15 * kMiB));
  EXPECT_TRUE(p2->TryCharge(5 * kMiB));
  EXPECT_FALSE(p2->TryCharge(1));  // the tenant's limit is shared
  EXPECT_EQ(p1->tenant_used_bytes(), 20 * kMiB);
  EXPECT_EQ(p2->process_used_bytes(), 5 * kMiB);
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("t", 10, 30), &error), nullptr);
  EXPECT_NE(error.find(std::to_string(20 * kMiB)), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(30 * kMiB)), std::string::npos) << error;
  p2.reset();  // leaving releases its usage
  EXPECT_EQ(p1->tenant_used_bytes(), 15 * kMiB);
}

TEST(LedgerSession, BurstDrawsFromTheSharedPool) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 4, 8), &error);
  auto b = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("b", 4, 8), &error);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_EQ(a->available_bytes(), 6 * kMiB);  // request 4 + pool 2
  ASSERT_TRUE(a->TryCharge(4 * kMiB));
  ASSERT_TRUE(a->TryCharge(2 * kMiB));
  EXPECT_FALSE(a->TryCharge(1 * kMiB));  // the pool is exhausted
  EXPECT_EQ(b->available_bytes(), 4 * kMiB);
  EXPECT_TRUE(b->TryCharge(4 * kMiB));  // held back for b
  EXPECT_FALSE(b->TryCharge(1 * kMiB));
  a->Uncharge(2 * kMiB);
  EXPECT_TRUE(b->TryCharge(1 * kMiB));
  EXPECT_FALSE(a->TryCharge(2 * kMiB));
  EXPECT_EQ(a->available_bytes(), 1 * kMiB);
  LedgerSnapshot snap;
  ASSERT_TRUE(ReadLedger(a->path(), &snap, &error)) << error;
  ASSERT_EQ(snap.tenants.size(), 2u);
  EXPECT_EQ(snap.sum_request_bytes, 8 * kMiB);
  EXPECT_EQ(snap.sum_used_bytes, 9 * kMiB);
  EXPECT_EQ(snap.tenants[1].burst_bytes, 1 * kMiB);
  EXPECT_EQ(snap.burst_pool_free_bytes, 1 * kMiB);
  EXPECT_EQ(snap.tenants[0].oom_denials, 2u);
  EXPECT_EQ(snap.tenants[1].oom_denials, 1u);
  ASSERT_EQ(snap.tenants[0].processes.size(), 1u);
  EXPECT_TRUE(snap.tenants[0].processes[0].alive);
  EXPECT_EQ(snap.tenants[0].processes[0].pid, static_cast<uint32_t>(getpid()));
}

TEST(LedgerSession, ForceChargeAndUnchargeNeverWrap) {
  TempDir tmp;
  std::string error;
  auto a = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 2, 4), &error);
  ASSERT_NE(a, nullptr) << error;
  a->ForceCharge(6 * kMiB);  // past the limit: the driver already handed it out
  EXPECT_EQ(a->tenant_used_bytes(), 6 * kMiB);
  EXPECT_FALSE(a->TryCharge(1));
  EXPECT_EQ(a->available_bytes(), 0u);
  a->Uncharge(10 * kMiB);  // more than it holds
  EXPECT_EQ(a->tenant_used_bytes(), 0u);
  EXPECT_EQ(a->process_used_bytes(), 0u);
}

TEST(LedgerSession, LastProcessRemovesItsTenant) {
  TempDir tmp;
  std::string error;
  {
    auto a = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 6, 8), &error);
    ASSERT_NE(a, nullptr) << error;
    ASSERT_TRUE(a->TryCharge(kMiB));
  }
  auto b = LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("b", 10, 10), &error);
  ASSERT_NE(b, nullptr) << error;  // a's request was released
  LedgerSnapshot snap;
  ASSERT_TRUE(ReadLedger(b->path(), &snap, &error)) << error;
  ASSERT_EQ(snap.tenants.size(), 1u);
  EXPECT_EQ(snap.tenants[0].name, "b");
  EXPECT_EQ(snap.usable_bytes, 10 * kMiB);
}

// Writes a valid ledger, damages a copy with `damage`, and expects both the library and the
// reader to refuse it with an error naming the file and mentioning `why`.
template <typename T>
void Poke(int fd, off_t offset, T value);

void ExpectRefused(const std::function<void(int fd)>& damage, const std::string& why) {
  TempDir tmp;
  std::string error;
  { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 1, 2), &error), nullptr); }
  const int fd = open(tmp.ledger().c_str(), O_RDWR);
  damage(fd);
  close(fd);
  LedgerSnapshot snap;
  EXPECT_FALSE(ReadLedger(tmp.ledger(), &snap, &error)) << why;
  EXPECT_NE(error.find(tmp.ledger()), std::string::npos) << error;
  EXPECT_NE(error.find(why), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("b", 1, 2), &error), nullptr);
  EXPECT_NE(error.find(tmp.ledger()), std::string::npos) << error;
  EXPECT_NE(error.find(why), std::string::npos) << error;
}

template <typename T>
void Poke(int fd, off_t offset, T value) {
  ASSERT_EQ(pwrite(fd, &value, sizeof value, offset), static_cast<ssize_t>(sizeof value));
}

TEST(LedgerValidation, RefusesWrongMagic) {
  ExpectRefused([](int fd) { ASSERT_EQ(pwrite(fd, "NOTMINE!", 8, 0), 8); }, "bad magic");
}
TEST(LedgerValidation, RefusesForeignVersion) {
  ExpectRefused([](int fd) { Poke<uint32_t>(fd, offsetof(GsLedgerHeader, abi_version), 1); }, "ABI version 1");
}
// Readers refuse a truncated ledger; the library replaces one nobody uses (LedgerLoss tests).
TEST(LedgerValidation, ReadersRefuseTruncated) {
  for (const auto& [size, why] : {std::pair<off_t, const char*>{5000, "truncated"}, {100, "truncated"},
                                  {GS_LEDGER_FILE_BYTES + 4096, "size mismatch"}}) {
    TempDir tmp;
    std::string error;
    { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 1, 2), &error), nullptr); }
    ASSERT_EQ(truncate(tmp.ledger().c_str(), size), 0);
    LedgerSnapshot snap;
    EXPECT_FALSE(ReadLedger(tmp.ledger(), &snap, &error));
    EXPECT_NE(error.find(tmp.ledger()), std::string::npos) << error;
    EXPECT_NE(error.find(why), std::string::npos) << error;
  }
}
TEST(LedgerValidation, RefusesSlotMismatch) {
  ExpectRefused([](int fd) { Poke<uint32_t>(fd, offsetof(GsLedgerHeader, process_slot_count), 1024); },
                "slot counts mismatch");
  ExpectRefused([](int fd) { Poke<uint32_t>(fd, offsetof(GsLedgerHeader, tenant_slot_bytes), 128); },
                "slot sizes mismatch");
}
TEST(LedgerValidation, RefusesInconsistentTotals) {
  ExpectRefused([](int fd) { Poke<uint64_t>(fd, offsetof(GsLedgerHeader, total_bytes), 1); },
                "totals inconsistent");
  ExpectRefused([](int fd) {  // a tenant requesting more than the GPU has
    Poke<uint32_t>(fd, GS_LEDGER_HEADER_BYTES + offsetof(GsLedgerTenant, state), GS_SLOT_ACTIVE);
    Poke<uint64_t>(fd, GS_LEDGER_HEADER_BYTES + offsetof(GsLedgerTenant, request_bytes), 1ull << 40);
    Poke<uint64_t>(fd, GS_LEDGER_HEADER_BYTES + offsetof(GsLedgerTenant, limit_bytes), 1ull << 41);
  }, "totals inconsistent");
}
TEST(LedgerValidation, RefusesBadSlots) {
  const off_t procs = GS_LEDGER_HEADER_BYTES + GS_LEDGER_TENANT_SLOTS * GS_LEDGER_TENANT_SLOT_BYTES;
  ExpectRefused([&](int fd) {
    Poke<uint32_t>(fd, procs + offsetof(GsLedgerProcess, state), GS_SLOT_ACTIVE);
    Poke<uint32_t>(fd, procs + offsetof(GsLedgerProcess, tenant_index), 999);
  },
                "tenant index 999 out of range");
  ExpectRefused([](int fd) {
    Poke<uint32_t>(fd, GS_LEDGER_HEADER_BYTES + offsetof(GsLedgerTenant, state), GS_SLOT_ACTIVE);
    char name[GS_LEDGER_NAME_BYTES];
    std::memset(name, 'x', sizeof name);
    ASSERT_EQ(pwrite(fd, name, sizeof name, GS_LEDGER_HEADER_BYTES + offsetof(GsLedgerTenant, name)),
              static_cast<ssize_t>(sizeof name));
  }, "not NUL-terminated");
  ExpectRefused([](int fd) { Poke<uint32_t>(fd, GS_LEDGER_HEADER_BYTES, 7); }, "bad state 7");
}

TEST(LedgerValidation, RefusesAnotherGpusFile) {
  TempDir tmp;
  std::string error;
  { ASSERT_NE(LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 1, 2), &error), nullptr); }
  const int fd = open(tmp.ledger().c_str(), O_RDWR);
  Poke<uint8_t>(fd, offsetof(GsLedgerHeader, uuid), 0xff);
  close(fd);
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 10 * kMiB, Tenant("a", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("UUID mismatch"), std::string::npos) << error;
}

TEST(LedgerList, IgnoresOtherFiles) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/gpushare-xyz.ledger") << "x";
  std::ofstream(tmp.path() + "/notes.txt") << "x";
  std::ofstream(tmp.ledger() + ".tmp.1.2") << "x";
  std::ofstream(tmp.ledger()) << "x";
  EXPECT_EQ(ListLedgers(tmp.path()), std::vector<std::string>{tmp.ledger()});
  EXPECT_TRUE(ListLedgers(tmp.path() + "/missing").empty());
}

TEST(TenantIdentity, ParsesCgroups) {
  const std::string cid(64, 'a');
  auto id = ParseCgroupIdentity("12:memory:/kubepods/burstable/pod0b1c2d3e-1111-2222-3333-444455556666/" + cid + "\n");
  EXPECT_EQ(id.pod_uid, "0b1c2d3e-1111-2222-3333-444455556666");
  EXPECT_EQ(id.container_id, cid);
  id = ParseCgroupIdentity(
      "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b1c2d3e_1111_2222_3333_444455556666"
      ".slice/cri-containerd-" + cid + ".scope\n");
  EXPECT_EQ(id.pod_uid, "0b1c2d3e-1111-2222-3333-444455556666");
  EXPECT_EQ(id.container_id, cid);
  id = ParseCgroupIdentity("0::/system.slice/docker-" + std::string(64, 'B') + ".scope\n");
  EXPECT_EQ(id.pod_uid, "");
  EXPECT_EQ(id.container_id, std::string(64, 'b'));
  id = ParseCgroupIdentity("0::/user.slice/user-1000.slice/session-2.scope\n");
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.pod_uid, "");
}

TEST(TenantIdentity, DefaultNames) {
  TempDir tmp;
  const std::string file = tmp.path() + "/cgroup";
  std::ofstream(file) << "0::/kubepods/pod0b1c2d3e-1111-2222-3333-444455556666/" << std::string(64, 'c') << "\n";
  EXPECT_EQ(DefaultTenantName(file), "pod0b1c2d3e-1111-2222-3333-444455556666/cccccccccccc");
  std::ofstream(file) << "0::/docker/" << std::string(64, 'd') << "\n";
  EXPECT_EQ(DefaultTenantName(file), "ctr-dddddddddddd");
  std::ofstream(file) << "0::/\n";
  const std::string name = DefaultTenantName(file);
  EXPECT_EQ(name.rfind("pid-" + std::to_string(getpid()) + "@", 0), 0u) << name;
  EXPECT_LT(name.size(), GS_LEDGER_NAME_BYTES);
}

// A private cgroup namespace (cgroup v2, containerd's default) shows "0::/": the container is
// then told by the mounts kubelet and the runtime made for it, so that every process of one
// container is one tenant, not a tenant each.
TEST(TenantIdentity, APrivateCgroupNamespaceIsToldByTheContainersMounts) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/cgroup") << "0::/\n";
  const std::string uid = "0b1c2d3e-1111-2222-3333-444455556666";
  std::ofstream(tmp.path() + "/mountinfo")
      << "1000 900 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/x\n"
      << "1001 1000 253:1 /var/lib/kubelet/pods/" << uid << "/etc-hosts /etc/hosts rw - ext4 /dev/vda1 rw\n"
      << "1002 1000 253:1 /var/lib/kubelet/pods/" << uid << "/containers/vllm/6a3c1f2e /dev/termination-log rw - ext4 /dev/vda1 rw\n"
      << "1003 1000 253:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/" << std::string(64, 'e')
      << "/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n";
  EXPECT_EQ(DefaultTenantName(tmp.path() + "/cgroup"), "pod" + uid + "/vllm");
  std::ofstream(tmp.path() + "/mountinfo")
      << "1001 1000 253:1 /var/lib/docker/containers/" << std::string(64, 'D')
      << "/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n";
  EXPECT_EQ(DefaultTenantName(tmp.path() + "/cgroup"), "ctr-dddddddddddd");
  std::ofstream(tmp.path() + "/mountinfo") << "1001 1000 253:1 /home /home rw - ext4 /dev/vda1 rw\n";
  EXPECT_EQ(DefaultTenantName(tmp.path() + "/cgroup").rfind("pid-", 0), 0u);
}

}  // namespace
}  // namespace gpushare::quota
