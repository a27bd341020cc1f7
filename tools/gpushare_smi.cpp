// SPDX-License-Identifier: Apache-2.0
// gpushare-smi: every GPU's ledger in a directory, as a table or JSON. Needs no GPU and no CUDA.
// Exit status: 0, 1 when any ledger file is refused (the others are still shown), 2 on usage.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quota/ledger.h"
#include "src/printable.h"

namespace {

using gpushare::quota::LedgerSnapshot;
using gpushare::quota::ResolverKind;
using gpushare::quota::ResolverName;
using gpushare::quota::DescribeTerminationReason;
// Every string read from a ledger (names, container ids) or the file system (paths) is printed
// through it: another process may have written any bytes there (src/printable.h).
using gpushare::Printable;

constexpr const char* kUsage =
    "usage: gpushare-smi [--ledger-dir DIR] [--json] [--help]\n"
    "Shows the gpushare ledger of every GPU in DIR (default: $GPUSHARE_LEDGER_DIR, else %s):\n"
    "capacity, sum of requests, free burst pool, and per tenant its request, limit, used bytes,\n"
    "burst, OOM denials, resolver (priority), time spent waiting and idle, with its processes\n"
    "(pid in their own namespace, used, alive/dead); then the allocations waiting for memory\n"
    "and the priority resolver's recent terminations (who, why, when, how much memory).\n"
    "With SM slices (GPUSHARE_SM): the GPU's SM count and slice granularity, and each tenant's\n"
    "SMs (granted, asked, TPC mask bits; overlapping or unconfined when so).\n"
    "Under the swap resolver: each tenant's quantum, current turn, bytes out now, and its swap\n"
    "records (swap-outs and swap-ins: count, bytes, time, bandwidth; time waited for memory),\n"
    "and each process's swap state (resident, swapping-out, out, swapping-in).\n"
    "  --ledger-dir DIR  where the ledgers are\n"
    "  --json            print JSON instead of a table\n"
    "Exit status 1 when a ledger file is refused (corrupt, truncated, foreign, another version, or\n"
    "not a regular file: a FIFO, a link); processes marked re-joined carried their memory there\n"
    "from a ledger file truncated, overwritten, removed or replaced under them.\n";

const char* SmMode(uint32_t mode) {
  switch (mode) {
    case GS_SM_MODE_MASK: return "mask";
    case GS_SM_MODE_UNCONFINED: return "unconfined";
    default: return "";
  }
}

// "32 of 132 (asked 25% of the SMs; TPC bits 0-15)", "-" without a slice.
std::string SmCell(const gpushare::quota::TenantSnapshot& t, const LedgerSnapshot& s) {
  if (!t.sm_ask.any()) return "-";
  if ((t.sm_flags & GS_SM_UNCONFINED) != 0 || t.sm_granted == 0)
    return "all (asked " + gpushare::sm::DescribeAsk(t.sm_ask) + "; unconfined)";
  std::string cell = std::to_string(t.sm_granted);
  if (s.sm_map_ready) cell += " of " + std::to_string(s.sm_map.sm_count);
  cell += " (asked " + gpushare::sm::DescribeAsk(t.sm_ask) + "; TPC bits " + gpushare::sm::DescribeBits(t.sm_mask);
  if (s.sm_map_ready && s.sm_map.HasGpcs()) cell += "; " + std::to_string(s.sm_map.GpcsOf(t.sm_mask)) + " GPCs";
  cell += ")";
  if ((t.sm_flags & GS_SM_OVERLAPS) != 0) cell += " overlapping";
  return cell;
}

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

std::string Seconds(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string WallClock(uint64_t unix_ns) {
  const time_t t = static_cast<time_t>(unix_ns / 1'000'000'000ull);
  tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  return buf;
}

const char* SwapState(uint32_t state) {
  switch (state) {
    case GS_SWAP_RESIDENT: return "resident";
    case GS_SWAP_SWAPPING_OUT: return "swapping-out";
    case GS_SWAP_OUT: return "out";
    case GS_SWAP_SWAPPING_IN: return "swapping-in";
    default: return "?";
  }
}

// "3 out 1.2 GiB in 25 ms (48.0 GB/s), 3 in ..." for a swap tenant.
std::string SwapRecord(const char* way, uint64_t count, uint64_t bytes, uint64_t ns) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llu %s, %s in %.1f ms (%.1f GB/s)", static_cast<unsigned long long>(count), way,
                Human(bytes).c_str(), ns / 1e6, ns > 0 ? bytes / (ns / 1e9) / 1e9 : 0.0);
  return buf;
}

nlohmann::json ToJson(const LedgerSnapshot& s) {
  nlohmann::json tenants = nlohmann::json::array();
  for (const auto& t : s.tenants) {
    nlohmann::json processes = nlohmann::json::array();
    for (const auto& p : t.processes)
      processes.push_back({{"slot", p.slot}, {"pid", p.pid}, {"used_bytes", p.used_bytes},
                           {"peak_bytes", p.peak_bytes}, {"alive", p.alive},
                           {"container_id", Printable(p.container_id)}, {"start_unix_ns", p.start_unix_ns},
                           {"generation", p.generation}, {"waiting", p.waiting}, {"sm_mode", SmMode(p.sm_mode)},
                           {"swap_state", SwapState(p.swap_state)}, {"swapped_out_bytes", p.swapped_out_bytes},
                           {"swappable_bytes", p.swappable_bytes}, {"staging_bytes", p.staging_bytes},
                           {"context_bytes", p.context_bytes},
                           {"rejoined", gpushare::quota::DescribeRejoin(p.rejoined)}});
    tenants.push_back({{"name", Printable(t.name)}, {"request_bytes", t.request_bytes},
                       {"asked_request_bytes", t.asked_request_bytes}, {"limit_bytes", t.limit_bytes},
                       {"used_bytes", t.used_bytes}, {"burst_bytes", t.burst_bytes},
                       {"oom_denials", t.oom_denials}, {"best_effort", t.best_effort},
                       {"resolver", ResolverName(t.resolver)}, {"priority", t.priority},
                       {"idle_timeout_ns", t.idle_timeout_ns}, {"kill_grace_ns", t.kill_grace_ns},
                       {"idle_ns", t.idle_ns}, {"wait_ns_total", t.wait_ns_total}, {"waits", t.waits},
                       {"terminations_total", t.terminations_total},
                       {"terminate_requested", t.terminate_requested},
                       {"terminate_reason", t.terminate_requested ? DescribeTerminationReason(t.terminate_reason) : ""},
                       {"terminate_unix_ns", t.terminate_unix_ns},
                       {"sm_asked", t.sm_ask.any() ? gpushare::sm::DescribeAsk(t.sm_ask) : ""},
                       {"sm_granted", t.sm_granted}, {"sm_bits", gpushare::sm::DescribeBits(t.sm_mask)},
                       {"sm_gpcs", s.sm_map_ready ? s.sm_map.GpcsOf(t.sm_mask) : 0},
                       {"sm_overlaps", (t.sm_flags & GS_SM_OVERLAPS) != 0},
                       {"sm_unconfined", (t.sm_flags & GS_SM_UNCONFINED) != 0},
                       {"compute", {{"share_percent", t.compute_share_bp / 100.0},
                                    {"strict", (t.compute_flags & GS_COMPUTE_STRICT) != 0},
                                    {"gpu_ns_total", t.compute_gpu_ns}, {"throttled_ns_total", t.compute_throttled_ns},
                                    {"turns", t.compute_turns}, {"express_ns_total", t.compute_express_ns},
                                    {"recent_window_ns", t.compute_recent_window_ns},
                                    {"recent_gpu_ns", t.compute_recent_gpu_ns},
                                    {"recent_throttled_ns", t.compute_recent_throttled_ns},
                                    {"recent_gpu_percent", t.compute_recent_window_ns == 0 ? 0.0
                                         : 100.0 * static_cast<double>(t.compute_recent_gpu_ns) / static_cast<double>(t.compute_recent_window_ns)},
                                    {"holds_turn", t.compute_holds_turn}, {"wanting", t.compute_wanting}}},
                       {"swap", {{"quantum_ns", t.swap_quantum_ns}, {"ask_bytes", t.swap_ask_bytes},
                                 {"turn_age_ns", t.swap_turn_age_ns}, {"swapped_out_bytes", t.swapped_out_bytes},
                                 {"swaps_out", t.swaps_out}, {"swap_out_bytes", t.swap_out_bytes},
                                 {"swap_out_ns", t.swap_out_ns}, {"swaps_in", t.swaps_in},
                                 {"swap_in_bytes", t.swap_in_bytes}, {"swap_in_ns", t.swap_in_ns},
                                 {"swap_wait_ns", t.swap_wait_ns}}},
                       {"processes", processes}});
  }
  nlohmann::json waiters = nlohmann::json::array();
  for (const auto& w : s.waiters)
    waiters.push_back({{"ticket", w.ticket}, {"bytes", w.bytes}, {"process_slot", w.process_slot},
                       {"tenant_slot", w.tenant_slot}, {"waited_ns", w.waited_ns}});
  nlohmann::json terminations = nlohmann::json::array();
  for (const auto& r : s.recent_terminations)
    terminations.push_back({{"sequence", r.sequence}, {"unix_ns", r.unix_ns}, {"victim", Printable(r.victim)},
                            {"requester", Printable(r.requester)}, {"reason", DescribeTerminationReason(r.reason)},
                            {"victim_priority", r.victim_priority}, {"requester_priority", r.requester_priority},
                            {"victim_used_bytes", r.victim_used_bytes}, {"victim_burst_bytes", r.victim_burst_bytes},
                            {"victim_idle_ns", r.victim_idle_ns}, {"requester_bytes", r.requester_bytes}});
  nlohmann::json sm_map = nullptr;
  nlohmann::json gpcs = nlohmann::json::array();
  for (const auto& g : s.sm_map.Gpcs()) gpcs.push_back(gpushare::sm::DescribeBits(g));
  if (s.sm_map_ready)
    sm_map = {{"sm_count", s.sm_map.sm_count}, {"live_bits", gpushare::sm::DescribeBits(s.sm_map.live)},
              {"live_bit_count", s.sm_map.live.Count()}, {"granularity_sms", s.sm_map.Granularity()},
              {"qmd_version", s.sm_map.qmd_version}, {"driver_version", s.sm_map.driver_version},
              {"map_ns", s.sm_map_ns}, {"gpcs", gpcs},
              {"unclustered_bits", gpushare::sm::DescribeBits(s.sm_map.Unclustered())}};
  nlohmann::json context_overhead = nullptr;
  if (s.context_overhead_bytes != 0)
    context_overhead = {{"bytes", s.context_overhead_bytes}, {"driver_version", s.context_overhead_driver},
                        {"mps", s.context_overhead_mps}, {"measured_unix_ns", s.context_overhead_unix_ns}};
  return {{"path", Printable(s.path)}, {"uuid", s.uuid}, {"abi_version", s.abi_version}, {"sm_map", sm_map},
          {"context_overhead", context_overhead},
          {"total_bytes", s.total_bytes}, {"usable_bytes", s.usable_bytes},
          {"sum_request_bytes", s.sum_request_bytes}, {"sum_used_bytes", s.sum_used_bytes},
          {"sum_burst_bytes", s.sum_burst_bytes}, {"burst_pool_free_bytes", s.burst_pool_free_bytes},
          {"repairs", s.repairs}, {"reaped_processes", s.reaped_processes}, {"waiting", s.waiting}, {"hidden_bytes", s.hidden_bytes},
          {"rejoined_processes", s.rejoined_processes},
          {"terminations", s.terminations}, {"swaps_out", s.swaps_out}, {"swap_out_bytes", s.swap_out_bytes},
          {"swaps_in", s.swaps_in}, {"swap_in_bytes", s.swap_in_bytes}, {"tenants", tenants}, {"waiters", waiters},
          {"compute_turns", s.compute_epoch}, {"compute_preemptions", s.compute_preemptions},
          {"compute_dead_handovers", s.compute_dead_handovers},
          {"recent_terminations", terminations}};
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
  std::cout << s.uuid << "  " << Printable(s.path) << "\n"
            << "  capacity " << Human(s.usable_bytes) << " usable of " << Human(s.total_bytes)
            << "; requested " << Human(s.sum_request_bytes) << "; used " << Human(s.sum_used_bytes)
            << "; burst pool free " << Human(s.burst_pool_free_bytes)
            << (s.hidden_bytes > 0 ? "; in use outside gpushare " + Human(s.hidden_bytes) : "") << "\n";
  if (s.rejoined_processes > 0)
    std::cout << "  " << s.rejoined_processes << " process(es) re-joined this ledger, carrying the memory they held "
              << "when the ledger file they had joined was truncated, overwritten, removed or replaced\n";
  if (s.context_overhead_bytes != 0)
    std::cout << "  a CUDA context's own memory " << Human(s.context_overhead_bytes) << " (measured alone, driver "
              << s.context_overhead_driver << (s.context_overhead_mps ? ", under MPS" : "") << ")\n";
  if (s.sm_map_ready)
    std::cout << "  SMs " << s.sm_map.sm_count << " on " << s.sm_map.live.Count()
              << " live TPC mask bits; slices round up to " << s.sm_map.Granularity()
              << " SMs (one TPC); " << (s.sm_map.HasGpcs() ? std::to_string(s.sm_map.Gpcs().size()) + " GPCs" +
                  (s.sm_map.Unclustered().Any() ? " (TPC bits " + gpushare::sm::DescribeBits(s.sm_map.Unclustered()) + " run no clusters)" : "")
                                     : "GPCs unknown")
              << "; mapped in " << s.sm_map_ns / 1000000 << " ms\n";
  if (s.tenants.empty()) {
    std::cout << "  no tenants\n\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TENANT", "REQUEST", "LIMIT", "USED", "BURST", "OOM", "RESOLVER", "WAITED", "IDLE", "PROCESSES", "SMS"}};
  std::vector<std::string> swap_lines;
  for (const auto& t : s.tenants) {
    std::string resolver = ResolverName(t.resolver);
    if (t.resolver == ResolverKind::kPriority) resolver += " " + std::to_string(t.priority);
    std::string name = Printable(t.name) + (t.best_effort ? " (best-effort)" : "");
    if (t.terminate_requested) name += " (terminating: " + std::string(DescribeTerminationReason(t.terminate_reason)) + ")";
    rows.push_back({name, Human(t.request_bytes), Human(t.limit_bytes), Human(t.used_bytes),
                    Human(t.burst_bytes), std::to_string(t.oom_denials), resolver,
                    Seconds(t.wait_ns_total) + " (" + std::to_string(t.waits) + ")", Seconds(t.idle_ns),
                    std::to_string(t.processes.size()), SmCell(t, s)});
    if (t.resolver == ResolverKind::kSwap) {
      std::string swap = Printable(t.name) + ": quantum " + Seconds(t.swap_quantum_ns) + ", turn " + Seconds(t.swap_turn_age_ns) +
                         ", out now " + Human(t.swapped_out_bytes) + "; " +
                         SwapRecord("out", t.swaps_out, t.swap_out_bytes, t.swap_out_ns) + "; " +
                         SwapRecord("in", t.swaps_in, t.swap_in_bytes, t.swap_in_ns) + ", waited " +
                         Seconds(t.swap_wait_ns);
      if (t.swap_ask_bytes > 0) swap += "; asked for " + Human(t.swap_ask_bytes);
      swap_lines.push_back(swap);
    }
    for (const auto& p : t.processes)
      rows.push_back({"  pid " + std::to_string(p.pid) +
                          (t.resolver == ResolverKind::kSwap ? std::string(" (") + SwapState(p.swap_state) + ")" : ""),
                      "", "", Human(p.used_bytes), "", "", "",
                      p.waiting > 0 ? std::to_string(p.waiting) + " waiting" : "", "",
                      std::string(p.alive ? "alive" : "dead") +
                          (p.rejoined != 0 ? std::string(" re-joined (") + gpushare::quota::DescribeRejoin(p.rejoined) + ")" : "") +
                          (p.container_id.empty() ? "" : "  " + Printable(p.container_id.substr(0, 12))),
                      SmMode(p.sm_mode)});
  }
  PrintTable(rows, "  ");
  if (std::any_of(s.tenants.begin(), s.tenants.end(), [](const auto& t) { return t.compute_share_bp != 0; })) {
    std::cout << "  compute shares (" << s.compute_epoch << " turns, " << s.compute_preemptions << " preempted, "
              << s.compute_dead_handovers << " taken from dead holders):\n";
    std::vector<std::vector<std::string>> c = {{"TENANT", "SHARE", "GPU TIME", "RECENT", "EXPRESS", "THROTTLED", "RECENT", "TURNS", "NOW"}};
    for (const auto& t : s.tenants) {
      if (t.compute_share_bp == 0) continue;
      auto pct = [&](uint64_t ns) {
        if (t.compute_recent_window_ns == 0) return std::string("-");
        char b[32];
        std::snprintf(b, sizeof b, "%.1f%% of %.0f s", 100.0 * static_cast<double>(ns) / static_cast<double>(t.compute_recent_window_ns),
                      static_cast<double>(t.compute_recent_window_ns) / 1e9);
        return std::string(b);
      };
      char share[32];
      std::snprintf(share, sizeof share, "%.2f%%%s", t.compute_share_bp / 100.0, (t.compute_flags & GS_COMPUTE_STRICT) != 0 ? " strict" : "");
      c.push_back({Printable(t.name), share, Seconds(t.compute_gpu_ns), pct(t.compute_recent_gpu_ns), Seconds(t.compute_express_ns),
                   Seconds(t.compute_throttled_ns),
                   pct(t.compute_recent_throttled_ns), std::to_string(t.compute_turns),
                   t.compute_holds_turn ? "holds the turn" : t.compute_wanting > 0 ? "waiting" : ""});
    }
    PrintTable(c, "    ");
  }
  if (!swap_lines.empty()) {
    std::cout << "  swap (" << s.swaps_out << " out, " << Human(s.swap_out_bytes) << "; " << s.swaps_in << " in, "
              << Human(s.swap_in_bytes) << " on this GPU):\n";
    for (const auto& line : swap_lines) std::cout << "    " << line << "\n";
  }
  auto tenant_name = [&](uint32_t slot) {
    for (const auto& t : s.tenants)
      if (t.slot == slot) return Printable(t.name);
    return std::string("?");
  };
  if (!s.waiters.empty()) {
    std::cout << "  waiting for memory (oldest first):\n";
    std::vector<std::vector<std::string>> w = {{"TICKET", "TENANT", "BYTES", "WAITED"}};
    for (const auto& x : s.waiters)
      w.push_back({std::to_string(x.ticket), tenant_name(x.tenant_slot), Human(x.bytes), Seconds(x.waited_ns)});
    PrintTable(w, "    ");
  }
  if (!s.recent_terminations.empty()) {
    std::cout << "  terminations by the priority resolver (" << s.terminations << " in all; latest "
              << s.recent_terminations.size() << "):\n";
    std::vector<std::vector<std::string>> r = {{"WHEN", "VICTIM", "FOR", "WHY", "VICTIM USED", "BURST", "ASKED"}};
    for (const auto& x : s.recent_terminations)
      r.push_back({WallClock(x.unix_ns), Printable(x.victim) + " (prio " + std::to_string(x.victim_priority) + ")",
                   Printable(x.requester) + " (prio " + std::to_string(x.requester_priority) + ")",
                   std::string(DescribeTerminationReason(x.reason)) +
                       (x.reason == GS_TERMINATE_IDLE ? " " + Seconds(x.victim_idle_ns) : ""),
                   Human(x.victim_used_bytes), Human(x.victim_burst_bytes), Human(x.requester_bytes)});
    PrintTable(r, "    ");
  }
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

  nlohmann::json out = {{"ledger_dir", Printable(dir)}, {"ledgers", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  const std::vector<std::string> paths = gpushare::quota::ListLedgers(dir);
  if (paths.empty() && !json) std::cout << "no gpushare ledgers in " << Printable(dir) << "\n";
  int status = 0;
  for (const std::string& path : paths) {
    LedgerSnapshot snapshot;
    std::string error;
    if (!gpushare::quota::ReadLedger(path, &snapshot, &error)) {
      std::cerr << Printable(error) << "\n";
      out["errors"].push_back({{"path", Printable(path)}, {"error", Printable(error)}});
      status = 1;
      continue;
    }
    if (json) out["ledgers"].push_back(ToJson(snapshot));
    else PrintText(snapshot);
  }
  // Every string above is printable ASCII; replace is a second guard: dump never throws.
  if (json) std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
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
