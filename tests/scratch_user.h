// SPDX-License-Identifier: Apache-2.0
// Another user, for tests of what co-tenants of other users can do to each other: made with
// useradd when the test runs as root (CI does, on Debian) and removed at the end. Elsewhere the
// test skips, saying why (SKIP_WITHOUT_SCRATCH_USER).
#pragma once
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

namespace gpushare::testing {

class ScratchUser {
 public:
  // nullptr with *why when no user can be made here.
  static std::unique_ptr<ScratchUser> Create(std::string* why) {
    if (geteuid() != 0) {
      *why = "needs root to create a scratch user with useradd (CI runs as root)";
      return nullptr;
    }
    static int made = 0;
    const std::string name = "gs-test-" + std::to_string(getpid()) + "-" + std::to_string(made++);
    const std::string quiet = " >/dev/null 2>&1";
    std::system(("userdel " + name + quiet).c_str());  // a leftover of a killed run
    if (std::system(("useradd --system --no-create-home --user-group --shell /usr/sbin/nologin " + name + quiet).c_str()) != 0) {
      *why = "useradd " + name + " failed (is useradd installed?)";
      return nullptr;
    }
    const passwd* pw = getpwnam(name.c_str());
    if (pw == nullptr) {
      *why = "useradd made no user " + name;
      std::system(("userdel " + name + quiet).c_str());
      return nullptr;
    }
    return std::unique_ptr<ScratchUser>(new ScratchUser(name, pw->pw_uid, pw->pw_gid));
  }
  ~ScratchUser() { std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str()); }
  ScratchUser(const ScratchUser&) = delete;
  ScratchUser& operator=(const ScratchUser&) = delete;

  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  const std::string& name() const { return name_; }

  // Runs fn in a child process as this user (umask 022); its exit status (fn's result), or -1.
  int Run(const std::function<int()>& fn) const {
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(30);
      if (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0) _exit(126);
      umask(022);
      _exit(fn());
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  ScratchUser(std::string name, uid_t uid, gid_t gid) : name_(std::move(name)), uid_(uid), gid_(gid) {}
  std::string name_;
  uid_t uid_;
  gid_t gid_;
};

}  // namespace gpushare::testing

#define SKIP_WITHOUT_SCRATCH_USER(user)                                           \
  std::string scratch_user_why;                                                   \
  const auto user = ::gpushare::testing::ScratchUser::Create(&scratch_user_why);  \
  if (user == nullptr) GTEST_SKIP() << "skipped: " << scratch_user_why
