// SPDX-License-Identifier: Apache-2.0
#include "src/nvml_processes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gpushare {
namespace {

namespace fs = std::filesystem;
const std::string kContainer(64, 'a');

// A /proc of our own: self/ns/pid and a few processes with their NSpid and cgroup.
class FakeProc {
 public:
  explicit FakeProc(const char* ns) {
    char tmpl[] = "/tmp/gpushare-proc-XXXXXX";
    root_ = mkdtemp(tmpl);
    fs::create_directories(root_ + "/self/ns");
    fs::create_symlink(ns, root_ + "/self/ns/pid");
  }
  ~FakeProc() { fs::remove_all(root_); }
  void Add(unsigned pid, const std::string& nspid, const std::string& container) {
    const std::string dir = root_ + "/" + std::to_string(pid);
    fs::create_directories(dir);
    std::ofstream(dir + "/status") << "Name:\tpython3\nNSpid:\t" << nspid << "\nThreads:\t4\n";
    std::ofstream(dir + "/cgroup") << "0::/kubepods/burstable/pod0f8a3c2e-1111-2222-3333-444455556666/"
                                   << container << "\n";
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

TEST(NvmlProcesses, APidIsTheTenantsWhenItsNamespacePidAndContainerMatch) {
  FakeProc proc("pid:[4026531836]");
  proc.Add(5000, "5000\t7", kContainer);  // pid 7 in its container
  proc.Add(5001, "5001\t7", std::string(64, 'b'));  // another container's pid 7
  proc.Add(5002, "5002", "");
  const ProcessAttribution attribution(proc.root());
  ASSERT_TRUE(attribution.InInitialPidNamespace());
  const std::vector<TenantProcess> tenant = {{7, kContainer}};
  EXPECT_TRUE(attribution.Belongs(5000, tenant));
  EXPECT_FALSE(attribution.Belongs(5001, tenant)) << "same inner pid, other container";
  EXPECT_FALSE(attribution.Belongs(5002, tenant));
  EXPECT_FALSE(attribution.Belongs(7, tenant)) << "NVML's pids are the initial namespace's";
  EXPECT_FALSE(attribution.Belongs(6000, tenant)) << "no such process";
  EXPECT_TRUE(attribution.Belongs(5002, {{5002, ""}}));
  EXPECT_FALSE(attribution.Belongs(5000, {})) << "a tenant without processes";
}

TEST(NvmlProcesses, FromANestedPidNamespaceNothingIsAttributed) {
  FakeProc proc("pid:[4026532999]");
  proc.Add(5000, "5000\t7", kContainer);
  const ProcessAttribution attribution(proc.root());
  EXPECT_FALSE(attribution.InInitialPidNamespace());
  EXPECT_FALSE(attribution.Belongs(5000, {{7, kContainer}}));
}

}  // namespace
}  // namespace gpushare
