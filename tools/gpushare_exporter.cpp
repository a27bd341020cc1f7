// SPDX-License-Identifier: Apache-2.0
// gpushare-exporter: a Prometheus endpoint over the node's ledgers (tools/metrics.h), served by
// cpp-httplib behind tools/guarded_server.h (slow or hostile clients cannot stall it). Reads the
// ledger files at every scrape; needs neither a GPU nor CUDA.
//   gpushare-exporter [--listen [HOST]:PORT] [--ledger-dir DIR] [--names gpushare|hami|both]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "quota/ledger.h"
#include "tools/guarded_server.h"
#include "tools/metrics.h"

namespace {

constexpr const char* kUsage =
    "usage: gpushare-exporter [--listen [HOST]:PORT] [--ledger-dir DIR] [--names gpushare|hami|both]\n"
    "Serves Prometheus metrics of every gpushare ledger in DIR at http://HOST:PORT/metrics.\n"
    "  --listen [HOST]:PORT  default :9400 (every address); port 0 picks a free port, printed at start\n"
    "  --ledger-dir DIR      default $GPUSHARE_LEDGER_DIR, else /var/run/gpushare\n"
    "  --names SET           gpushare (default), hami (HAMi vGPUmonitor's names and labels, for its\n"
    "                        dashboards and alerts; $NODE_NAME gives its node label) or both\n";

struct Listen {
  std::string host;
  int port = -1;
};

// ":9400", "127.0.0.1:9400", "[::1]:0".
bool ParseListen(const std::string& text, Listen* out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  out->host = host.empty() ? "0.0.0.0" : host;
  out->port = std::stoi(port);
  return out->port <= 65535;
}

std::string Scrape(const std::string& dir, const gpushare::metrics::RenderOptions& options) {
  std::vector<gpushare::quota::LedgerSnapshot> ledgers;
  size_t unreadable = 0;
  for (const std::string& path : gpushare::quota::ListLedgers(dir)) {
    gpushare::quota::LedgerSnapshot snapshot;
    std::string error;
    if (gpushare::quota::ReadLedger(path, &snapshot, &error)) {
      ledgers.push_back(std::move(snapshot));
    } else {
      ++unreadable;
      std::fprintf(stderr, "gpushare-exporter: %s\n", error.c_str());
    }
  }
  return gpushare::metrics::Render(ledgers, unreadable, options);
}

int Run(int argc, char** argv) {
  std::string dir = gpushare::quota::kDefaultLedgerDir;
  if (const char* env = std::getenv("GPUSHARE_LEDGER_DIR"); env != nullptr && *env != '\0') dir = env;
  Listen listen;
  ParseListen(":9400", &listen);
  gpushare::metrics::RenderOptions options;
  if (const char* node = std::getenv("NODE_NAME"); node != nullptr) options.node = node;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--listen" && i + 1 < argc) {
      if (!ParseListen(argv[++i], &listen)) {
        std::fprintf(stderr, "gpushare-exporter: --listen \"%s\" is not valid ([HOST]:PORT, e.g. :9400)\n", argv[i]);
        return 2;
      }
    } else if (arg == "--ledger-dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--names" && i + 1 < argc) {
      if (!gpushare::metrics::ParseNameSet(argv[++i], &options.names)) {
        std::fprintf(stderr, "gpushare-exporter: --names \"%s\" is not valid (gpushare, hami or both)\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "gpushare-exporter: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  // Bounds on each request's head, time and body, and on connections (tools/guarded_server.h).
  gpushare::tools::GuardedServer server;
  server.Get("/metrics", [&dir, &options](const httplib::Request&, httplib::Response& res) {
    res.set_content(Scrape(dir, options), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("gpushare-exporter: metrics at /metrics\n", "text/plain");
  });
  const int port = server.Bind(listen.host, listen.port);
  if (port < 0) {
    std::fprintf(stderr, "gpushare-exporter: cannot listen on %s:%d\n", listen.host.c_str(), listen.port);
    return 1;
  }
  std::printf("gpushare-exporter: serving %s at http://%s:%d/metrics\n", dir.c_str(), listen.host.c_str(), port);
  std::fflush(stdout);
  return server.listen_after_bind() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpushare-exporter: %s\n", e.what());
    return 1;
  }
}
