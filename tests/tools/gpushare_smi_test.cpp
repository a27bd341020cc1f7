// SPDX-License-Identifier: Apache-2.0
// gpushare-smi against prepared ledgers: JSON that parses and says what the ledger holds, a dead
// process shown as dead, a corrupt file reported by name (exit 1) without hiding the others.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"
#include "tests/tools/command_output.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::TempDir;

using SmiRun = ::gpushare::testing::CommandOutput;

SmiRun Smi(const std::string& args) {
  return ::gpushare::testing::RunCommand(std::string(GS_SMI_PATH) + " " + args + " 2>/dev/null");
}

TEST(GpushareSmi, PrintsLedgersAsJsonAndTable) {
  TempDir tmp;
  std::string error;
  auto alpha = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("alpha", 40, 80), &error);
  ASSERT_NE(alpha, nullptr) << error;
  ASSERT_TRUE(alpha->TryCharge(50 * kMiB));  // 10 MiB of burst
  const pid_t child = fork();
  if (child == 0) {
    auto beta = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("beta", 20, 20), nullptr);
    if (beta && beta->TryCharge(5 * kMiB)) raise(SIGKILL);  // left unreaped: shows as dead
    _exit(2);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  SmiRun run = Smi("--json --ledger-dir " + tmp.path());
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["ledgers"].size(), 1u);
  EXPECT_TRUE(j["errors"].empty());
  const auto& ledger = j["ledgers"][0];
  EXPECT_EQ(ledger["uuid"], "GPU-12345678-9abc-def0-0123-456789abcdef");
  EXPECT_EQ(ledger["usable_bytes"], 100 * kMiB);
  EXPECT_EQ(ledger["sum_request_bytes"], 60 * kMiB);
  EXPECT_EQ(ledger["burst_pool_free_bytes"], 30 * kMiB);
  ASSERT_EQ(ledger["tenants"].size(), 2u);
  const auto& a = ledger["tenants"][0];
  EXPECT_EQ(a["name"], "alpha");
  EXPECT_EQ(a["used_bytes"], 50 * kMiB);
  EXPECT_EQ(a["burst_bytes"], 10 * kMiB);
  EXPECT_EQ(a["processes"][0]["pid"], getpid());
  EXPECT_EQ(a["processes"][0]["alive"], true);
  const auto& b = ledger["tenants"][1];
  EXPECT_EQ(b["name"], "beta");
  EXPECT_EQ(b["processes"][0]["pid"], child);
  EXPECT_EQ(b["processes"][0]["alive"], false);
  EXPECT_EQ(b["processes"][0]["used_bytes"], 5 * kMiB);

  run = Smi("--ledger-dir=" + tmp.path());
  EXPECT_EQ(run.status, 0);
  EXPECT_NE(run.out.find("alpha"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("dead"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("burst pool free 30.0 MiB"), std::string::npos) << run.out;

  // A foreign file beside it is named in the errors; the good ledger is still shown.
  const std::string bad = tmp.path() + "/gpushare-00000000000000000000000000000000.ledger";
  std::ofstream(bad) << "this is not a ledger";
  run = Smi("--json --ledger-dir " + tmp.path());
  EXPECT_EQ(run.status, 1);
  const nlohmann::json k = nlohmann::json::parse(run.out);
  EXPECT_EQ(k["ledgers"].size(), 1u);
  ASSERT_EQ(k["errors"].size(), 1u);
  EXPECT_EQ(k["errors"][0]["path"], bad);
  EXPECT_NE(k["errors"][0]["error"].get<std::string>().find(bad), std::string::npos);
}

// A name field holding escapes, a newline and invalid UTF-8 once made --json fail for the whole
// node (nlohmann type_error.316) and the table write raw escapes to the operator's terminal.
TEST(GpushareSmi, HostileNamesInALedgerArePrintedEscaped) {
  TempDir tmp;
  std::string error;
  auto session = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("victim", 10, 20), &error);
  ASSERT_NE(session, nullptr) << error;
  testing::WriteHostileNames(*session);

  SmiRun run = Smi("--json --ledger-dir " + tmp.path());
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_TRUE(testing::PrintableLines(run.out)) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["ledgers"].size(), 1u);
  const auto& t = j["ledgers"][0]["tenants"][0];
  EXPECT_EQ(t["name"], "\\x1b[2J\\x1b]0;owned\\x07evil\\x0a\\xff\\xfe\"\\\\name");
  EXPECT_EQ(t["processes"][0]["container_id"], "\\x1b[31m\\xc3abc\\x0d");

  run = Smi("--ledger-dir " + tmp.path());
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_TRUE(testing::PrintableLines(run.out)) << run.out;
  EXPECT_NE(run.out.find("\\x1b[2J\\x1b]0;owned\\x07evil\\x0a\\xff\\xfe\"\\\\name"), std::string::npos) << run.out;
}

TEST(GpushareSmi, ShowsTheSharedContextOverheadAndEachProcesssContexts) {
  TempDir tmp;
  std::string error;
  auto alpha = LedgerSession::Open(tmp.path(), kUuid, 4096 * kMiB, Tenant("alpha", 0, 1024), &error);
  ASSERT_NE(alpha, nullptr) << error;
  SmiRun run = Smi("--json --ledger-dir " + tmp.path());
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_TRUE(nlohmann::json::parse(run.out)["ledgers"][0]["context_overhead"].is_null()) << "none measured yet";
  ASSERT_TRUE(alpha->PublishContextOverhead({13000, true}, 526 * kMiB));
  ASSERT_TRUE(alpha->TryCharge(526 * kMiB));
  alpha->AddProcessContextBytes(526 * kMiB);
  run = Smi("--json --ledger-dir " + tmp.path());
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out)["ledgers"][0];
  EXPECT_EQ(j["context_overhead"]["bytes"], 526 * kMiB);
  EXPECT_EQ(j["context_overhead"]["driver_version"], 13000);
  EXPECT_EQ(j["context_overhead"]["mps"], true);
  EXPECT_EQ(j["tenants"][0]["processes"][0]["context_bytes"], 526 * kMiB);
  run = Smi("--ledger-dir " + tmp.path());
  EXPECT_NE(run.out.find("a CUDA context's own memory 526.0 MiB (measured alone, driver 13000, under MPS)"),
            std::string::npos)
      << run.out;
}

TEST(GpushareSmi, HelpEmptyDirAndBadArguments) {
  TempDir tmp;
  EXPECT_EQ(Smi("--help").status, 0);
  EXPECT_NE(Smi("--help").out.find("--ledger-dir"), std::string::npos);
  const SmiRun empty = Smi("--json --ledger-dir " + tmp.path() + "/none");
  EXPECT_EQ(empty.status, 0);
  EXPECT_TRUE(nlohmann::json::parse(empty.out)["ledgers"].empty());
  EXPECT_EQ(Smi("--bogus").status, 2);
}

}  // namespace
}  // namespace gpushare::quota
