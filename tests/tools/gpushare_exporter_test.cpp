// SPDX-License-Identifier: Apache-2.0
// gpushare-exporter and its metrics: the text parses as Prometheus exposition format (checked
// strictly below), says what the ledgers hold, labels Kubernetes tenants with namespace, pod and
// container, and is served over loopback by the real binary, live and beside a corrupt ledger.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"
#include "tests/tools/exposition.h"
#include "tools/metrics.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::TempDir;

using exposition::Find;
using exposition::ParseExposition;
using exposition::Sample;

TEST(Metrics, RenderedTextParsesAndCarriesTheLedger) {
  LedgerSnapshot l;
  l.uuid = "GPU-12345678-9abc-def0-0123-456789abcdef";
  l.total_bytes = 100 * kMiB;
  l.usable_bytes = 90 * kMiB;
  l.sum_request_bytes = 60 * kMiB;
  l.repairs = 2;
  TenantSnapshot k8s;
  k8s.name = "team-a/serve-7f9c/vllm";
  k8s.request_bytes = 40 * kMiB;
  k8s.limit_bytes = 80 * kMiB;
  k8s.used_bytes = 50 * kMiB;
  k8s.oom_denials = 3;
  k8s.wait_ns_total = 2'500'000'000;
  k8s.waits = 4;
  k8s.terminations_total = 1;
  k8s.processes = {ProcessSnapshot{}, ProcessSnapshot{}};
  k8s.processes[0].alive = true;
  TenantSnapshot odd;
  odd.name = "we\"ird\\name\nx";
  l.tenants = {k8s, odd};
  std::map<std::string, std::string> types;
  const std::vector<Sample> samples = ParseExposition(metrics::Render({l}, 1), &types);
  EXPECT_EQ(types["gpushare_memory_used_bytes"], "gauge");
  EXPECT_EQ(types["gpushare_oom_denials_total"], "counter");
  EXPECT_EQ(types["gpushare_ledger_repairs_total"], "counter");
  const Sample* used = Find(samples, "gpushare_memory_used_bytes", k8s.name);
  ASSERT_NE(used, nullptr);
  EXPECT_EQ(used->value, 50.0 * kMiB);
  EXPECT_EQ(used->labels.at("device_uuid"), l.uuid);
  EXPECT_EQ(used->labels.at("namespace"), "team-a");
  EXPECT_EQ(used->labels.at("pod"), "serve-7f9c");
  EXPECT_EQ(used->labels.at("container"), "vllm");
  EXPECT_EQ(Find(samples, "gpushare_oom_denials_total", k8s.name)->value, 3);
  EXPECT_EQ(types["gpushare_wait_seconds_total"], "counter");
  EXPECT_EQ(Find(samples, "gpushare_wait_seconds_total", k8s.name)->value, 2.5);
  EXPECT_EQ(Find(samples, "gpushare_waits_total", k8s.name)->value, 4);
  EXPECT_EQ(Find(samples, "gpushare_terminations_total", k8s.name)->value, 1);
  EXPECT_EQ(Find(samples, "gpushare_processes", k8s.name)->value, 1) << "only live processes";
  const Sample* escaped = Find(samples, "gpushare_memory_limit_bytes", odd.name);
  ASSERT_NE(escaped, nullptr) << "escaped label values round-trip";
  EXPECT_EQ(escaped->labels.count("namespace"), 0u);
  EXPECT_EQ(Find(samples, "gpushare_device_memory_requested_bytes")->value, 60.0 * kMiB);
  EXPECT_EQ(Find(samples, "gpushare_ledger_repairs_total")->value, 2);
  EXPECT_EQ(Find(samples, "gpushare_ledger_errors")->value, 1);
  EXPECT_EQ(types["gpushare_swaps_total"], "counter");
  EXPECT_EQ(Find(samples, "gpushare_swaps_total", k8s.name)->value, 0) << "the ledger's count: none swapped";
}

// The real binary on 127.0.0.1:<free port>, its stdout read for the port.
class Exporter {
 public:
  explicit Exporter(const std::string& dir) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      alarm(60);
      execl(GS_EXPORTER_PATH, GS_EXPORTER_PATH, "--listen", "127.0.0.1:0", "--ledger-dir", dir.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512] = {};
    if (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
      const std::string text = line;
      const size_t colon = text.rfind(':');
      if (colon != std::string::npos) port_ = std::atoi(text.c_str() + colon + 1);
    }
    if (f != nullptr) std::fclose(f);
  }
  ~Exporter() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST(GpushareExporter, ServesTheLedgersOverLoopback) {
  TempDir tmp;
  std::string error;
  auto alpha = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("ns1/pod-a/main", 40, 80), &error);
  ASSERT_NE(alpha, nullptr) << error;
  ASSERT_TRUE(alpha->TryCharge(50 * kMiB));
  ASSERT_FALSE(alpha->TryCharge(60 * kMiB)) << "past the limit: one OOM denial";
  auto beta = LedgerSession::Open(tmp.path(), kUuid, 100 * kMiB, Tenant("beta", 20, 20), &error);
  ASSERT_NE(beta, nullptr) << error;
  ASSERT_TRUE(beta->TryCharge(5 * kMiB));
  std::ofstream(tmp.path() + "/gpushare-00000000000000000000000000000000.ledger") << "not a ledger";

  Exporter exporter(tmp.path());
  ASSERT_GT(exporter.port(), 0) << "the exporter printed no port";
  httplib::Client client("127.0.0.1", exporter.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Result res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, std::string> types;
  std::vector<Sample> samples = ParseExposition(res->body, &types);
  const Sample* used = Find(samples, "gpushare_memory_used_bytes", "ns1/pod-a/main");
  ASSERT_NE(used, nullptr) << res->body;
  EXPECT_EQ(used->value, 50.0 * kMiB);
  EXPECT_EQ(used->labels.at("device_uuid"), "GPU-12345678-9abc-def0-0123-456789abcdef");
  EXPECT_EQ(used->labels.at("namespace"), "ns1");
  EXPECT_EQ(used->labels.at("pod"), "pod-a");
  EXPECT_EQ(used->labels.at("container"), "main");
  EXPECT_EQ(Find(samples, "gpushare_memory_request_bytes", "ns1/pod-a/main")->value, 40.0 * kMiB);
  EXPECT_EQ(Find(samples, "gpushare_memory_limit_bytes", "ns1/pod-a/main")->value, 80.0 * kMiB);
  EXPECT_EQ(Find(samples, "gpushare_oom_denials_total", "ns1/pod-a/main")->value, 1);
  EXPECT_EQ(Find(samples, "gpushare_memory_used_bytes", "beta")->value, 5.0 * kMiB);
  EXPECT_EQ(Find(samples, "gpushare_ledger_errors")->value, 1) << "the corrupt file is counted, the good one served";

  ASSERT_TRUE(alpha->TryCharge(10 * kMiB));
  res = client.Get("/metrics");
  ASSERT_TRUE(res);
  types.clear();
  samples = ParseExposition(res->body, &types);
  EXPECT_EQ(Find(samples, "gpushare_memory_used_bytes", "ns1/pod-a/main")->value, 60.0 * kMiB) << "read at every scrape";
  res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "ok\n");
}

TEST(GpushareExporter, RefusesABadListenAddress) {
  const std::string cmd = std::string(GS_EXPORTER_PATH) + " --listen 9400 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[512] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, pipe);
  const int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(std::string(buf, n).find("--listen \"9400\" is not valid"), std::string::npos) << buf;
}

}  // namespace
}  // namespace gpushare::quota
