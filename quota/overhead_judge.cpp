// SPDX-License-Identifier: Apache-2.0
#include "quota/overhead_judge.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace gpushare::quota {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / kMiB; }

std::map<unsigned, uint64_t> ByPid(const DeviceReading& r) {
  std::map<unsigned, uint64_t> m;
  for (const NvmlProcessUse& p : r.processes) m[p.pid] = p.used_bytes;
  return m;
}

// A figure NVML does not report, or reports as 0 for a process that has a context (not
// accounted yet), says nothing.
bool Known(uint64_t used) { return used != kNvmlUsedUnknown && used != 0; }

void AddReason(std::string& why, const std::string& reason) {
  if (!why.empty()) why += "; ";
  why += reason;
}

}  // namespace

uint64_t OwnSlackBytes(uint64_t own_bytes) { return std::max<uint64_t>(128ull << 20, own_bytes / 4); }

OverheadJudgement JudgeOverhead(const DeviceReading& before, const DeviceReading& after,
                                std::optional<unsigned> own_pid) {
  OverheadJudgement j;
  if (!before.used_ok || !after.used_ok) {
    j.why = "NVML did not report the device's used memory";
    return j;
  }
  j.measured = true;
  const bool shrank = after.used_bytes < before.used_bytes;
  const uint64_t delta = shrank ? 0 : after.used_bytes - before.used_bytes;
  j.device_delta_bytes = delta;
  if (shrank) AddReason(j.why, fmt::format("the device's used memory shrank by {:.1f} MiB (another process freed memory)",
                                           MiB(before.used_bytes - after.used_bytes)));
  if (delta > kMaxContextOverhead)
    AddReason(j.why, fmt::format("the device's used memory grew by {:.1f} MiB, more than any context holds ({:.0f} MiB)",
                                 MiB(delta), MiB(kMaxContextOverhead)));

  std::vector<uint64_t> new_figures;  // NVML figures of the processes that appeared, this one included
  unsigned new_count = 0;
  uint64_t others_grew = 0;  // growth of the other processes listed both times
  if (before.processes_ok && after.processes_ok) {
    j.checked = true;
    const std::map<unsigned, uint64_t> was = ByPid(before), now = ByPid(after);
    // Which listed process is this one: its own pid, or the only one that appeared.
    std::optional<unsigned> mine;
    if (own_pid && now.count(*own_pid) != 0) mine = own_pid;
    std::vector<unsigned> appeared;
    for (const auto& [pid, used] : now)
      if (was.count(pid) == 0) appeared.push_back(pid);
    new_count = static_cast<unsigned>(appeared.size());
    if (!mine && appeared.size() == 1) mine = appeared.front();
    for (unsigned pid : appeared) {
      if (Known(now.at(pid))) new_figures.push_back(now.at(pid));
      if (pid != mine) ++j.other_new;
    }
    if (mine && Known(now.at(*mine))) {
      const auto w = was.find(*mine);
      const uint64_t had = w == was.end() || w->second == kNvmlUsedUnknown ? 0 : w->second;
      j.own_known = w == was.end() || w->second != kNvmlUsedUnknown;
      j.own_bytes = now.at(*mine) > had ? now.at(*mine) - had : 0;
    }
    if (j.other_new > 0)
      AddReason(j.why, fmt::format("{} other process{} created a context meanwhile", j.other_new,
                                   j.other_new == 1 ? "" : "es"));
    unsigned gone = 0;
    uint64_t others_moved = 0;
    for (const auto& [pid, used] : was) {
      const auto n = now.find(pid);
      if (n == now.end()) {
        ++gone;
      } else if (pid != mine && used != kNvmlUsedUnknown && n->second != kNvmlUsedUnknown) {
        others_moved += n->second > used ? n->second - used : used - n->second;
        if (n->second > used) others_grew += n->second - used;
      }
    }
    if (gone > 0) AddReason(j.why, fmt::format("{} process{} left the GPU meanwhile", gone, gone == 1 ? "" : "es"));
    if (others_moved > kOthersSlackBytes)
      AddReason(j.why, fmt::format("other processes' memory moved by {:.1f} MiB meanwhile", MiB(others_moved)));
    if (j.own_known) {
      const uint64_t slack = OwnSlackBytes(j.own_bytes);
      if (delta > j.own_bytes + slack || delta + slack < j.own_bytes)
        AddReason(j.why, fmt::format("the device grew by {:.1f} MiB but this process's own NVML figure by {:.1f} MiB",
                                     MiB(delta), MiB(j.own_bytes)));
    }
  }

  j.lone = j.why.empty();
  if (j.lone) {
    j.bytes = delta;
  } else if (j.own_known) {
    j.bytes = j.own_bytes;
  } else if (!new_figures.empty()) {
    std::sort(new_figures.begin(), new_figures.end());
    j.bytes = new_figures[new_figures.size() / 2];
  } else {
    j.bytes = (delta - std::min(delta, others_grew)) / std::max(1u, new_count);
  }
  j.bytes = std::min(j.bytes, kMaxContextOverhead);
  return j;
}

}  // namespace gpushare::quota
