// SPDX-License-Identifier: Apache-2.0
#include "src/nvml_processes.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <utility>

#include "quota/tenant_identity.h"

namespace gpushare {
namespace {

constexpr const char* kInitialPidNamespace = "pid:[4026531836]";  // PROC_PID_INIT_INO

// The last pid of the "NSpid:" line: the process's pid in its own namespace. 0 when unreadable.
uint32_t InnermostPid(const std::string& status_path) {
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    uint32_t pid = 0;
    for (std::string field; fields >> field;) {
      uint32_t value = 0;
      const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
      if (ec != std::errc() || ptr != field.data() + field.size()) return 0;
      pid = value;
    }
    return pid;
  }
  return 0;
}

}  // namespace

ProcessAttribution::ProcessAttribution(std::string proc_root) : root_(std::move(proc_root)) {
  char target[64] = {};
  const std::string link = root_ + "/self/ns/pid";
  const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
  initial_ = n > 0 && std::string(target, static_cast<size_t>(n)) == kInitialPidNamespace;
}

bool ProcessAttribution::InInitialPidNamespace() const { return initial_; }

bool ProcessAttribution::Belongs(unsigned int nvml_pid, const std::vector<TenantProcess>& tenant) const {
  if (!initial_ || nvml_pid == 0 || tenant.empty()) return false;
  const std::string dir = root_ + "/" + std::to_string(nvml_pid);
  const uint32_t inner = InnermostPid(dir + "/status");
  if (inner == 0) return false;
  const std::string container_id = quota::ReadCgroupIdentity(dir + "/cgroup").container_id;
  for (const TenantProcess& p : tenant)
    if (p.pid == inner && p.container_id == container_id) return true;
  return false;
}

}  // namespace gpushare
