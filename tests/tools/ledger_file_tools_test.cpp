// SPDX-License-Identifier: Apache-2.0
// gpushare-smi and gpushare-exporter against what any user can leave in the ledger directory: a
// FIFO named like a ledger (which hung them), a link, a truncated ledger. They report it by name
// and go on with the other ledgers, within a second.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::TempDir;

constexpr unsigned char kOtherUuid[16] = {0xfe, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
constexpr unsigned char kThirdUuid[16] = {0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};

struct ToolRun {
  int status = -1;  // exit status; -2 when it had to be killed
  std::string out, err;
  double seconds = 0;
};

// Runs argv with a deadline: a tool that hangs is killed and reported as such.
ToolRun RunTool(const std::vector<std::string>& argv, int deadline_s) {
  char out_tmpl[] = "/tmp/gs_tool_outXXXXXX";
  char err_tmpl[] = "/tmp/gs_tool_errXXXXXX";
  const int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  ToolRun run;
  bool ended = false;
  for (int i = 0; i < deadline_s * 100 && !ended; ++i) {
    int status = 0;
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (ended) run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    else usleep(10'000);
  }
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    run.status = -2;
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto slurp = [](const char* path) {
    std::string text;
    if (FILE* f = std::fopen(path, "r")) {
      char buf[4096];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
      std::fclose(f);
    }
    unlink(path);
    return text;
  };
  close(out_fd);
  close(err_fd);
  run.out = slurp(out_tmpl);
  run.err = slurp(err_tmpl);
  return run;
}

// A good ledger, a FIFO, a link to the good one and a truncated ledger, side by side.
struct Hostile {
  TempDir tmp;
  std::unique_ptr<LedgerSession> good;
  std::string fifo, link, truncated;
  Hostile() {
    std::string error;
    good = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("alpha", 40, 80), &error);
    EXPECT_NE(good, nullptr) << error;
    EXPECT_TRUE(good->TryCharge(50 * kMiB));
    fifo = tmp.path() + "/gpushare-00000000000000000000000000000000.ledger";
    EXPECT_EQ(mkfifo(fifo.c_str(), 0666), 0);
    link = LedgerPath(tmp.path(), kOtherUuid);
    EXPECT_EQ(symlink(good->path().c_str(), link.c_str()), 0);
    { auto t = LedgerSession::Open(tmp.path(), kThirdUuid, 100 * kMiB, Tenant("gone", 1, 2), &error); }
    truncated = LedgerPath(tmp.path(), kThirdUuid);
    EXPECT_EQ(truncate(truncated.c_str(), 4096), 0);
  }
};

TEST(LedgerFileTools, SmiReportsWhatIsNotALedgerAndHangsOnNothing) {
  Hostile dir;
  const ToolRun run = RunTool({GS_SMI_PATH, "--json", "--ledger-dir", dir.tmp.path()}, 10);
  ASSERT_NE(run.status, -2) << "gpushare-smi hung (on the FIFO)";
  EXPECT_LT(run.seconds, 2.0);
  EXPECT_EQ(run.status, 1) << "a refused file";
  const nlohmann::json out = nlohmann::json::parse(run.out);
  ASSERT_EQ(out["ledgers"].size(), 1u) << run.out;
  EXPECT_EQ(out["ledgers"][0]["tenants"][0]["used_bytes"], 50 * kMiB);
  std::map<std::string, std::string> errors;
  for (const auto& e : out["errors"]) errors[e["path"]] = e["error"];
  ASSERT_EQ(errors.size(), 3u) << run.out;
  EXPECT_NE(errors[dir.fifo].find("not a regular file (a FIFO)"), std::string::npos) << errors[dir.fifo];
  EXPECT_NE(errors[dir.link].find("symbolic link"), std::string::npos) << errors[dir.link];
  EXPECT_NE(errors[dir.truncated].find("truncated"), std::string::npos) << errors[dir.truncated];
  EXPECT_NE(run.err.find(dir.fifo), std::string::npos) << run.err;
}

TEST(LedgerFileTools, TheExporterKeepsAnsweringBesideAFifo) {
  Hostile dir;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    alarm(60);
    execl(GS_EXPORTER_PATH, GS_EXPORTER_PATH, "--listen", "127.0.0.1:0", "--ledger-dir", dir.tmp.path().c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[512] = {};
  int port = 0;
  if (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
    const std::string text = line;
    port = std::atoi(text.c_str() + text.rfind(':') + 1);
  }
  if (f != nullptr) std::fclose(f);
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  client.set_read_timeout(1);
  // Every scrape used to block one worker on the FIFO for good; a few of them, all of them.
  for (int i = 0; i < 12; ++i) {
    httplib::Result res = client.Get("/metrics");
    ASSERT_TRUE(res) << "scrape " << i << ": " << httplib::to_string(res.error());
    EXPECT_NE(res->body.find("gpushare_ledger_errors 3"), std::string::npos) << res->body;
    EXPECT_NE(res->body.find("gpushare_memory_used_bytes{device_uuid=\"GPU-12345678"), std::string::npos);
  }
  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->body, "ok\n");
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace gpushare::quota
