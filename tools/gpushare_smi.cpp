// gpushare-smi: every GPU's ledger in a directory, as a table or JSON. Needs no GPU and no CUDA.
// Exit status: 0, 1 when any ledger file is refused (the others are still shown), 2 on usage.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quota/ledger.h"

namespace {

using gpushare::quota::LedgerSnapshot;

constexpr const char* kUsage =
    "usage: gpushare-smi [--ledger-dir DIR] [--json] [--help]\n"
    "Shows the gpushare ledger of every GPU in DIR (default: $GPUSHARE_LEDGER_DIR, else %s):\n"
    "capacity, sum of requests, free burst pool, and per tenant its request, limit, used bytes,\n"
    "burst and OOM denials, with its processes (pid in their own namespace, used, alive/dead).\n"
    "  --ledger-dir DIR  where the ledgers are\n"
    "  --json            print JSON instead of a table\n"
    "Exit status 1 when a ledger file is refused (corrupt, foreign, another version).\n";

std::string Human(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024.0 && unit < 4) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  if (unit == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  return buf;
}

nlohmann::json ToJson(const LedgerSnapshot& s) {
  nlohmann::json tenants = nlohmann::json::array();
  for (const auto& t : s.tenants) {
    nlohmann::json processes = nlohmann::json::array();
    for (const auto& p : t.processes)
      processes.push_back({{"slot", p.slot}, {"pid", p.pid}, {"used_bytes", p.used_bytes},
                           {"peak_bytes", p.peak_bytes}, {"alive", p.alive},
                           {"container_id", p.container_id}, {"start_unix_ns", p.start_unix_ns},
                           {"generation", p.generation}});
    tenants.push_back({{"name", t.name}, {"request_bytes", t.request_bytes},
                       {"asked_request_bytes", t.asked_request_bytes}, {"limit_bytes", t.limit_bytes},
                       {"used_bytes", t.used_bytes}, {"burst_bytes", t.burst_bytes},
                       {"oom_denials", t.oom_denials}, {"best_effort", t.best_effort},
                       {"processes", processes}});
  }
  return {{"path", s.path}, {"uuid", s.uuid}, {"abi_version", s.abi_version},
          {"total_bytes", s.total_bytes}, {"usable_bytes", s.usable_bytes},
          {"sum_request_bytes", s.sum_request_bytes}, {"sum_used_bytes", s.sum_used_bytes},
          {"sum_burst_bytes", s.sum_burst_bytes}, {"burst_pool_free_bytes", s.burst_pool_free_bytes},
          {"repairs", s.repairs}, {"reaped_processes", s.reaped_processes}, {"tenants", tenants}};
}

// Prints rows with every column padded to its widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      if (c + 1 < row.size()) cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void PrintText(const LedgerSnapshot& s) {
  std::cout << s.uuid << "  " << s.path << "\n"
            << "  capacity " << Human(s.usable_bytes) << " usable of " << Human(s.total_bytes)
            << "; requested " << Human(s.sum_request_bytes) << "; used " << Human(s.sum_used_bytes)
            << "; burst pool free " << Human(s.burst_pool_free_bytes) << "\n";
  if (s.tenants.empty()) {
    std::cout << "  no tenants\n\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TENANT", "REQUEST", "LIMIT", "USED", "BURST", "OOM", "PROCESSES"}};
  for (const auto& t : s.tenants) {
    rows.push_back({t.name + (t.best_effort ? " (best-effort)" : ""), Human(t.request_bytes),
                    Human(t.limit_bytes), Human(t.used_bytes), Human(t.burst_bytes),
                    std::to_string(t.oom_denials), std::to_string(t.processes.size())});
    for (const auto& p : t.processes)
      rows.push_back({"  pid " + std::to_string(p.pid), "", "", Human(p.used_bytes), "", "",
                      std::string(p.alive ? "alive" : "dead") +
                          (p.container_id.empty() ? "" : "  " + p.container_id.substr(0, 12))});
  }
  PrintTable(rows, "  ");
  std::cout << "\n";
}

int Run(int argc, char** argv) {
  std::string dir;
  if (const char* env = std::getenv("GPUSHARE_LEDGER_DIR"); env != nullptr && *env != '\0') dir = env;
  else dir = gpushare::quota::kDefaultLedgerDir;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, gpushare::quota::kDefaultLedgerDir);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--ledger-dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg.rfind("--ledger-dir=", 0) == 0) {
      dir = arg.substr(std::string("--ledger-dir=").size());
    } else {
      std::fprintf(stderr, "gpushare-smi: unknown argument '%s'\n", arg.c_str());
      std::fprintf(stderr, kUsage, gpushare::quota::kDefaultLedgerDir);
      return 2;
    }
  }

  nlohmann::json out = {{"ledger_dir", dir}, {"ledgers", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  const std::vector<std::string> paths = gpushare::quota::ListLedgers(dir);
  if (paths.empty() && !json) std::cout << "no gpushare ledgers in " << dir << "\n";
  int status = 0;
  for (const std::string& path : paths) {
    LedgerSnapshot snapshot;
    std::string error;
    if (!gpushare::quota::ReadLedger(path, &snapshot, &error)) {
      std::cerr << error << "\n";
      out["errors"].push_back({{"path", path}, {"error", error}});
      status = 1;
      continue;
    }
    if (json) out["ledgers"].push_back(ToJson(snapshot));
    else PrintText(snapshot);
  }
  if (json) std::cout << out.dump(2) << "\n";
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpushare-smi: %s\n", e.what());
    return 1;
  }
}
