// SPDX-License-Identifier: Apache-2.0
// SM slices in the ledger: the cached TPC map and disjoint slices across tenants and processes.
#include <gtest/gtest.h>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::TempDir;

sm::TpcMap SmallMap() {  // 8 live bits (0-3, 8-11) of 2 SMs: 16 SMs
  sm::TpcMap m;
  for (unsigned b : {0u, 1u, 2u, 3u, 8u, 9u, 10u, 11u}) m.live.Set(b), m.sms_per_bit[b] = 2;
  m.sm_count = 16;
  m.qmd_version = 0x40;
  m.driver_version = 13000;
  return m;
}

TenantConfig WithSm(const std::string& name, uint32_t sms) {
  TenantConfig t{name, 0, 64 * kMiB, false};
  t.sm = {GS_SM_ASK_COUNT, sms};
  return t;
}

std::unique_ptr<LedgerSession> Open(const TempDir& dir, const TenantConfig& t, std::string* error) {
  return LedgerSession::Open(dir.path(), kUuid, 1024 * kMiB, t, error);
}

TEST(LedgerSm, TheMapIsCachedPerDriverVersion) {
  TempDir dir;
  std::string error;
  auto a = Open(dir, WithSm("a", 4), &error);
  ASSERT_NE(a, nullptr) << error;
  sm::TpcMap read;
  EXPECT_FALSE(a->CachedTpcMap(13000, &read));
  sm::TpcMap map = SmallMap();
  a->PublishTpcMap(&map, 5'000'000);
  auto b = Open(dir, WithSm("b", 4), &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_TRUE(b->CachedTpcMap(13000, &read));
  EXPECT_EQ(read.live, map.live);
  EXPECT_EQ(read.sm_count, 16u);
  EXPECT_FALSE(b->CachedTpcMap(13010, &read)) << "another driver measures again";
  // A concurrent first process's map, published second, yields to the one already there.
  sm::TpcMap late = SmallMap();
  late.live = sm::TpcMask{};
  late.live.Set(5);
  b->PublishTpcMap(&late, 1);
  EXPECT_EQ(late.live, map.live);
  LedgerSnapshot snap;
  ASSERT_TRUE(ReadLedger(dir.ledger(), &snap, &error)) << error;
  EXPECT_TRUE(snap.sm_map_ready);
  EXPECT_EQ(snap.sm_map.sm_count, 16u);
  EXPECT_EQ(snap.sm_map_ns, 5'000'000u);
}

TEST(LedgerSm, TenantsGetDisjointSlicesAndProcessesOfOneShareIt) {
  TempDir dir;
  std::string error;
  const sm::TpcMap map = SmallMap();
  auto a1 = Open(dir, WithSm("a", 7), &error);  // 7 SMs: 4 TPCs
  ASSERT_NE(a1, nullptr) << error;
  sm::SliceChoice ca1, ca2, cb, cc;
  ASSERT_TRUE(a1->AssignSmSlice(map, false, &ca1, &error)) << error;
  EXPECT_EQ(ca1.sms, 8u);
  auto a2 = Open(dir, WithSm("a", 7), &error);
  ASSERT_NE(a2, nullptr) << error;
  ASSERT_TRUE(a2->AssignSmSlice(map, false, &ca2, &error)) << error;
  EXPECT_EQ(ca2.mask, ca1.mask) << "a second process adopts its tenant's slice";
  auto b = Open(dir, WithSm("b", 8), &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_TRUE(b->AssignSmSlice(map, false, &cb, &error)) << error;
  EXPECT_FALSE((cb.mask & ca1.mask).Any());
  auto c = Open(dir, WithSm("c", 2), &error);
  ASSERT_NE(c, nullptr) << error;
  EXPECT_FALSE(c->AssignSmSlice(map, false, &cc, &error));
  EXPECT_NE(error.find("only 0 are free"), std::string::npos) << error;
  EXPECT_NE(error.find("tenant 'c'"), std::string::npos) << error;
  // When tenant a leaves (both processes), its TPCs are free again.
  a1.reset();
  a2.reset();
  ASSERT_TRUE(c->AssignSmSlice(map, false, &cc, &error)) << error;
  EXPECT_EQ(cc.sms, 2u);
  EXPECT_FALSE((cc.mask & cb.mask).Any());
  LedgerSnapshot snap;
  ASSERT_TRUE(ReadLedger(dir.ledger(), &snap, &error)) << error;
  ASSERT_EQ(snap.tenants.size(), 2u);
  EXPECT_EQ(snap.tenants[0].sm_granted + snap.tenants[1].sm_granted, 10u);
}

TEST(LedgerSm, ProcessesOfATenantMustAgreeOnTheSlice) {
  TempDir dir;
  std::string error;
  auto a = Open(dir, WithSm("a", 4), &error);
  ASSERT_NE(a, nullptr) << error;
  EXPECT_EQ(Open(dir, WithSm("a", 6), &error), nullptr);
  EXPECT_NE(error.find("GPUSHARE_SM 4 SMs; this process asks for 6 SMs"), std::string::npos) << error;
}

TEST(LedgerSm, UnconfinedTenantsAreMarked) {
  TempDir dir;
  std::string error;
  auto a = Open(dir, WithSm("a", 4), &error);
  ASSERT_NE(a, nullptr) << error;
  a->MarkSmUnconfined();
  a->SetProcessSmMode(GS_SM_MODE_UNCONFINED);
  LedgerSnapshot snap;
  ASSERT_TRUE(ReadLedger(dir.ledger(), &snap, &error)) << error;
  EXPECT_EQ(snap.tenants[0].sm_flags, GS_SM_UNCONFINED);
  EXPECT_EQ(snap.tenants[0].processes[0].sm_mode, GS_SM_MODE_UNCONFINED);
  EXPECT_EQ(snap.tenants[0].sm_ask.value, 4u);
}

}  // namespace
}  // namespace gpushare::quota
