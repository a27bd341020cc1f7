// SPDX-License-Identifier: Apache-2.0
// When the growth of a GPU's used memory across a context's creation is that context's alone,
// and what is charged when it is not.
#include "quota/overhead_judge.h"

#include <gtest/gtest.h>

namespace gpushare::quota {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kCtx = 526 * kMiB;  // a bare context on the H100
constexpr uint64_t kBase = 3 * kMiB;   // the device's used memory with no process

DeviceReading Reading(uint64_t used, std::vector<NvmlProcessUse> processes) {
  DeviceReading r;
  r.used_ok = true;
  r.used_bytes = used;
  r.processes_ok = true;
  r.processes = std::move(processes);
  return r;
}

TEST(OverheadJudge, ALoneStartIsTheDeviceWideGrowth) {
  const auto j = JudgeOverhead(Reading(kBase, {}), Reading(kBase + kCtx + 4 * kMiB, {{100, kCtx}}), 100u);
  EXPECT_TRUE(j.lone) << j.why;
  EXPECT_TRUE(j.checked);
  EXPECT_EQ(j.bytes, kCtx + 4 * kMiB) << "what the GPU lost, not only what NVML charges the process";
  EXPECT_TRUE(j.own_known);
  EXPECT_EQ(j.own_bytes, kCtx);
}

TEST(OverheadJudge, InAPidNamespaceTheOnlyNewProcessIsThisOne) {
  // NVML names host pids; this process's own pid (none given) is not among them.
  const auto j = JudgeOverhead(Reading(kBase + kCtx, {{7, kCtx}}),
                               Reading(kBase + 2 * kCtx, {{7, kCtx}, {4242, kCtx}}), std::nullopt);
  EXPECT_TRUE(j.lone) << j.why;
  EXPECT_TRUE(j.own_known);
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, ContextsCreatedMeanwhileMakeARaceChargedTheOwnFigure) {
  // 48 processes starting at once: three others' contexts appeared in the same window.
  const auto j = JudgeOverhead(Reading(kBase, {}),
                               Reading(kBase + 4 * kCtx, {{100, kCtx}, {101, kCtx}, {102, kCtx}, {103, kCtx}}), 100u);
  EXPECT_FALSE(j.lone);
  EXPECT_EQ(j.other_new, 3u);
  EXPECT_NE(j.why.find("3 other processes created a context meanwhile"), std::string::npos) << j.why;
  EXPECT_EQ(j.bytes, kCtx) << "never the 2 GiB the device grew by";
}

TEST(OverheadJudge, UnattributableRaceChargesTheMedianNewcomer) {
  // In a PID namespace with several newcomers, this process is one of them.
  const auto j = JudgeOverhead(Reading(kBase, {}),
                               Reading(kBase + 3 * kCtx + 64 * kMiB,
                                       {{200, kCtx}, {201, kCtx + 64 * kMiB}, {202, kCtx}}),
                               std::nullopt);
  EXPECT_FALSE(j.lone);
  EXPECT_FALSE(j.own_known);
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, GrowthThisProcessDoesNotShowIsARace) {
  // Another process's context is being created: its memory is in use, its pid not listed yet.
  const auto j = JudgeOverhead(Reading(kBase, {}), Reading(kBase + 2 * kCtx, {{100, kCtx}}), 100u);
  EXPECT_FALSE(j.lone);
  EXPECT_NE(j.why.find("this process's own NVML figure"), std::string::npos) << j.why;
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, AnotherProcessAllocatingIsARace) {
  const auto j = JudgeOverhead(Reading(kBase + 8 * kMiB * 1024, {{7, 8 * kMiB * 1024}}),
                               Reading(kBase + 9 * kMiB * 1024 + kCtx, {{7, 9 * kMiB * 1024}, {4242, kCtx}}),
                               std::nullopt);
  EXPECT_FALSE(j.lone);
  EXPECT_NE(j.why.find("other processes' memory moved"), std::string::npos) << j.why;
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, SmallMovesOfOthersAreTolerated) {
  const auto j = JudgeOverhead(Reading(kBase + kMiB * 100, {{7, kMiB * 100}}),
                               Reading(kBase + kMiB * 102 + kCtx, {{7, kMiB * 102}, {4242, kCtx}}), std::nullopt);
  EXPECT_TRUE(j.lone) << j.why;
  EXPECT_EQ(j.bytes, kCtx + 2 * kMiB);
}

TEST(OverheadJudge, AProcessLeavingIsARace) {
  const auto j = JudgeOverhead(Reading(kBase + kCtx, {{7, kCtx}}), Reading(kBase + kCtx, {{4242, kCtx}}),
                               std::nullopt);
  EXPECT_FALSE(j.lone);
  EXPECT_NE(j.why.find("left the GPU"), std::string::npos) << j.why;
}

TEST(OverheadJudge, GrowthPastTheCeilingIsARaceAndBounded) {
  // Nothing in NVML's list explains it, and no context holds this much.
  DeviceReading before = Reading(kBase, {}), after = Reading(kBase + 3 * kMiB * 1024, {});
  before.processes_ok = after.processes_ok = false;
  const auto j = JudgeOverhead(before, after, 100u);
  EXPECT_FALSE(j.lone);
  EXPECT_FALSE(j.checked);
  EXPECT_LE(j.bytes, kMaxContextOverhead);
}

TEST(OverheadJudge, WithoutAProcessListOnlyTheCeilingIsChecked) {
  DeviceReading before = Reading(kBase, {}), after = Reading(kBase + kCtx, {});
  before.processes_ok = after.processes_ok = false;
  const auto j = JudgeOverhead(before, after, 100u);
  EXPECT_TRUE(j.lone);
  EXPECT_FALSE(j.checked) << "the caller publishes it only from the measuring turn";
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, UnreportedProcessMemoryIsNotAFigure) {
  // NVML_VALUE_NOT_AVAILABLE per process: only the list's membership can be compared.
  const auto lone = JudgeOverhead(Reading(kBase, {}), Reading(kBase + kCtx, {{100, kNvmlUsedUnknown}}), 100u);
  EXPECT_TRUE(lone.lone) << lone.why;
  EXPECT_FALSE(lone.own_known);
  EXPECT_EQ(lone.bytes, kCtx);
  const auto raced = JudgeOverhead(Reading(kBase, {}),
                                   Reading(kBase + 2 * kCtx, {{100, kNvmlUsedUnknown}, {101, kNvmlUsedUnknown}}), 100u);
  EXPECT_FALSE(raced.lone);
  EXPECT_EQ(raced.bytes, kCtx) << "the growth divided among the newcomers";
}

TEST(OverheadJudge, AZeroFigureForANewContextIsNotAFigure) {
  // NVML may list a process before it accounts its memory: no own figure to compare with.
  const auto j = JudgeOverhead(Reading(kBase, {}), Reading(kBase + kCtx, {{100, 0}}), 100u);
  EXPECT_TRUE(j.lone) << j.why;
  EXPECT_FALSE(j.own_known);
  EXPECT_EQ(j.bytes, kCtx);
}

TEST(OverheadJudge, ShrinkingMemoryIsARace) {
  const auto j = JudgeOverhead(Reading(kBase + kCtx, {{7, kCtx}}), Reading(kBase + 10 * kMiB, {{7, kCtx}}),
                               std::nullopt);
  EXPECT_FALSE(j.lone);
  EXPECT_NE(j.why.find("shrank"), std::string::npos) << j.why;
}

TEST(OverheadJudge, ALaterContextOfThisProcessIsItsOwnGrowth) {
  const auto j = JudgeOverhead(Reading(kBase + kCtx, {{100, kCtx}}), Reading(kBase + kCtx + 200 * kMiB, {{100, kCtx + 200 * kMiB}}),
                               100u);
  EXPECT_TRUE(j.lone) << j.why;
  EXPECT_EQ(j.own_bytes, 200 * kMiB);
  EXPECT_EQ(j.bytes, 200 * kMiB);
}

TEST(OverheadJudge, NoDeviceFigureIsNoMeasurement) {
  DeviceReading before = Reading(kBase, {}), after = Reading(kBase + kCtx, {});
  after.used_ok = false;
  const auto j = JudgeOverhead(before, after, 100u);
  EXPECT_FALSE(j.measured);
  EXPECT_FALSE(j.lone);
  EXPECT_EQ(j.bytes, 0u);
}

}  // namespace
}  // namespace gpushare::quota
