// SPDX-License-Identifier: Apache-2.0
// Which processes NVML lists belong to a tenant. NVML names processes by their pid in the
// initial PID namespace; the ledger records each process's pid in its own namespace and its
// container id. A listed pid is the tenant's when /proc/<pid> shows that process with the
// namespace pid (last NSpid entry) and the container id of one of the tenant's live ledger
// slots. That needs /proc to be the initial namespace's: inside a container's own PID namespace
// NVML's pids cannot be attributed, and none is shown.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gpushare {

struct TenantProcess {
  uint32_t pid = 0;          // in its own PID namespace
  std::string container_id;  // from its cgroup; empty outside containers
};

class ProcessAttribution {
 public:
  explicit ProcessAttribution(std::string proc_root = "/proc");
  // /proc/self/ns/pid is the initial PID namespace (the kernel's fixed inode 0xEFFFFFFC).
  bool InInitialPidNamespace() const;
  bool Belongs(unsigned int nvml_pid, const std::vector<TenantProcess>& tenant) const;

 private:
  std::string root_;
  bool initial_;
};

}  // namespace gpushare
