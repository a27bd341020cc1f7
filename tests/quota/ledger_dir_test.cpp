// SPDX-License-Identifier: Apache-2.0
// The ledger directory and the ledger file's name, against careless operators and other users:
// links another user made, modes the umask chose, relative paths, FIFOs and directories where the
// file should be. Cases that need another user make one (tests/scratch_user.h) or skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "quota/ledger.h"
#include "tests/quota/ledger_test_util.h"
#include "tests/scratch_user.h"

namespace gpushare::quota {
namespace {

using testing::kMiB;
using testing::kUuid;
using testing::Tenant;
using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

class UmaskScope {
 public:
  explicit UmaskScope(mode_t mask) : saved_(umask(mask)) {}
  ~UmaskScope() { umask(saved_); }

 private:
  mode_t saved_;
};

TEST(LedgerDir, MissingDirectoriesAreMadeForEveryUserWhateverTheUmask) {
  TempDir tmp;
  ASSERT_EQ(chmod(tmp.path().c_str(), 0755), 0);
  const std::string dir = tmp.path() + "/a/b/ledgers";
  {
    UmaskScope strict(077);
    std::string error;
    auto s = LedgerSession::Open(dir, kUuid, 64 * kMiB, Tenant("root", 1, 2), &error);
    ASSERT_NE(s, nullptr) << error;
  }
  // mkdir -p under umask 077 made 01700 parents, which other users cannot cross.
  EXPECT_EQ(ModeOf(tmp.path() + "/a"), 0755u);
  EXPECT_EQ(ModeOf(tmp.path() + "/a/b"), 0755u);
  EXPECT_EQ(ModeOf(dir), 01777u);
  EXPECT_EQ(ModeOf(LedgerPath(dir, kUuid)), 0666u);

  SKIP_WITHOUT_SCRATCH_USER(user);
  std::string error;
  auto mine = LedgerSession::Open(dir, kUuid, 64 * kMiB, Tenant("root", 1, 2), &error);
  ASSERT_NE(mine, nullptr) << error;
  const int rc = user->Run([&] {
    std::string e;
    auto theirs = LedgerSession::Open(dir, kUuid, 64 * kMiB, Tenant("other", 1, 2), &e);
    if (theirs == nullptr) std::fprintf(stderr, "%s\n", e.c_str());
    return theirs != nullptr && theirs->TryCharge(kMiB) ? 0 : 1;
  });
  EXPECT_EQ(rc, 0) << "another user joins the same ledger";
}

TEST(LedgerDir, AnotherUsersLinkInAWorldWritableDirectoryIsNotFollowed) {
  SKIP_WITHOUT_SCRATCH_USER(user);
  TempDir tmp;
  ASSERT_EQ(chmod(tmp.path().c_str(), 0755), 0);
  const std::string shared = tmp.path() + "/shared";  // like /tmp
  const std::string private_dir = tmp.path() + "/root-only";
  ASSERT_EQ(mkdir(shared.c_str(), 0755), 0);
  ASSERT_EQ(chmod(shared.c_str(), 01777), 0);
  ASSERT_EQ(mkdir(private_dir.c_str(), 0700), 0);
  // The other user points a name root will use at root's private directory.
  ASSERT_EQ(user->Run([&] { return symlink(private_dir.c_str(), (shared + "/ledgers").c_str()) == 0 ? 0 : 1; }), 0);
  std::string error;
  EXPECT_EQ(LedgerSession::Open(shared + "/ledgers", kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("symbolic link " + shared + "/ledgers"), std::string::npos) << error;
  EXPECT_NE(error.find("GPUSHARE_LEDGER_DIR"), std::string::npos) << error;
  EXPECT_TRUE(std::filesystem::is_empty(private_dir)) << "nothing was created through the link";

  // The same link made by root there, or by anyone in a directory only root writes, is fine.
  ASSERT_EQ(symlink(private_dir.c_str(), (shared + "/roots").c_str()), 0);
  auto s = LedgerSession::Open(shared + "/roots", kUuid, 64 * kMiB, Tenant("t", 1, 2), &error);
  EXPECT_NE(s, nullptr) << error;
  s.reset();

  // A link in place of the ledger file itself is never followed.
  const std::string sticky = shared + "/ledger-dir";
  ASSERT_EQ(mkdir(sticky.c_str(), 01777), 0);
  ASSERT_EQ(chmod(sticky.c_str(), 01777), 0);
  const std::string target = private_dir + "/victim";
  ASSERT_EQ(user->Run([&] { return symlink(target.c_str(), LedgerPath(sticky, kUuid).c_str()) == 0 ? 0 : 1; }), 0);
  error.clear();
  EXPECT_EQ(LedgerSession::Open(sticky, kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  EXPECT_FALSE(Exists(target)) << "no file was created through the link";
}

TEST(LedgerDir, AWorldWritableDirectoryMustBeSticky) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/open";
  ASSERT_EQ(mkdir(dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  std::string error;
  EXPECT_EQ(LedgerSession::Open(dir, kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("not sticky"), std::string::npos) << error;
  EXPECT_NE(error.find(dir), std::string::npos) << error;
  ASSERT_EQ(chmod(dir.c_str(), 01777), 0);
  EXPECT_NE(LedgerSession::Open(dir, kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr) << error;
}

TEST(LedgerDir, ARelativeDirectoryIsRefusedNamingTheVariable) {
  std::string error;
  EXPECT_EQ(LedgerSession::Open("relative/ledgers", kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr);
  EXPECT_NE(error.find("GPUSHARE_LEDGER_DIR"), std::string::npos) << error;
  EXPECT_NE(error.find("not an absolute path"), std::string::npos) << error;
  EXPECT_FALSE(Exists("relative")) << "nothing created under the working directory";
}

// What stands where the ledger file should be is refused at once, by the library and by readers.
TEST(LedgerDir, AFifoOrADirectoryNamedLikeTheLedgerIsRefusedWithoutHanging) {
  TempDir tmp;
  ASSERT_EQ(mkfifo(tmp.ledger().c_str(), 0666), 0);
  // A child, so that a reader blocking on the FIFO fails the test instead of hanging it.
  const pid_t child = fork();
  if (child == 0) {
    alarm(5);
    LedgerSnapshot snap;
    std::string e;
    const bool read = ReadLedger(tmp.ledger(), &snap, &e);
    const bool fifo_named = e.find("not a regular file (a FIFO)") != std::string::npos;
    auto s = LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("t", 1, 2), &e);
    _exit(!read && fifo_named && s == nullptr && e.find("a FIFO") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "hung on the FIFO (killed by the alarm)" : "wrong or missing error");
  ASSERT_EQ(unlink(tmp.ledger().c_str()), 0);
  ASSERT_EQ(mkdir(tmp.ledger().c_str(), 0755), 0);
  std::string error;
  EXPECT_EQ(LedgerSession::Open(tmp.path(), kUuid, 64 * kMiB, Tenant("t", 1, 2), &error), nullptr);
  EXPECT_NE(error.find(tmp.ledger()), std::string::npos) << error;
  EXPECT_NE(error.find("directory"), std::string::npos) << error;
}

}  // namespace
}  // namespace gpushare::quota
