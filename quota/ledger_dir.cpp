// SPDX-License-Identifier: Apache-2.0
// The ledger directory: walked one component at a time from "/", through descriptors, so what
// was checked is what is used (no path is looked up twice). The rules, in the README's
// configuration table:
//  - an absolute path without "..";
//  - a symbolic link is followed only where no other user can write the directory that holds
//    it, or can own the link (a sticky directory protects only entries owned by root or by us):
//    /var/run -> /run is fine, another user's /tmp/gpushare -> /root/private is not;
//  - a missing component is created, 0755, and the directory itself 01777 (co-tenants run as
//    other users), past the umask;
//  - the directory itself, when others may write it, must be sticky (01777), or anyone could
//    remove or replace the ledgers in it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "quota/ledger_file.h"

namespace gpushare::quota::ledger_file {

namespace {

bool OthersMayWrite(const struct stat& dir) { return (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0; }
bool Trusted(uid_t owner) { return owner == 0 || owner == geteuid(); }

std::vector<std::string> Components(const std::string& dir) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < dir.size()) {
    size_t end = dir.find('/', at);
    if (end == std::string::npos) end = dir.size();
    if (end > at && dir.compare(at, end - at, ".") != 0) out.push_back(dir.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

int OpenDir(const std::string& dir, std::string* error) {
  const std::string bad = "gpushare: ledger directory " + dir + " (GPUSHARE_LEDGER_DIR) ";
  if (dir.empty() || dir[0] != '/') {
    *error = bad + "is not an absolute path: every tenant of the node must name the same directory";
    return -1;
  }
  const std::vector<std::string> names = Components(dir);
  for (const std::string& n : names)
    if (n == "..") {
      *error = bad + "contains '..'";
      return -1;
    }
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat parent {};
  if (fd < 0 || fstat(fd, &parent) != 0) {
    *error = bad + "is unusable: " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return -1;
  }
  std::string walked;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const bool leaf = i + 1 == names.size();
    const std::string where = walked.empty() ? "/" : walked;
    walked += "/" + name;
    auto fail = [&](const std::string& why) {
      *error = bad + why;
      close(fd);
      return -1;
    };
    struct stat st {};
    bool created = false;
    if (fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return fail("is unusable: " + walked + ": " + std::strerror(errno));
      if (mkdirat(fd, name.c_str(), leaf ? 01777 : 0755) == 0) created = true;
      else if (errno != EEXIST) return fail("cannot be created: " + walked + ": " + std::strerror(errno));
      if (fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail("cannot be created: " + walked + ": " + std::strerror(errno));
    }
    int next = -1;
    if (S_ISLNK(st.st_mode)) {
      if (OthersMayWrite(parent) && (!(parent.st_mode & S_ISVTX) || !Trusted(st.st_uid)))
        return fail("goes through the symbolic link " + walked + " in " + where +
                    ", which other users can write: they could point it anywhere (name the directory itself)");
      next = openat(fd, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    } else if (S_ISDIR(st.st_mode)) {
      // A directory we just made is opened readable, to set its mode past the umask.
      next = openat(fd, name.c_str(), (created ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next >= 0 && created) fchmod(next, leaf ? 01777 : 0755);
    } else {
      return fail(walked == dir ? std::string("is not a directory") : "is unusable: " + walked + " is not a directory");
    }
    if (next < 0) return fail("is unusable: " + walked + ": " + std::strerror(errno));
    close(fd);
    fd = next;
    if (fstat(fd, &parent) != 0) return fail("is unusable: " + walked + ": " + std::strerror(errno));
  }
  if (OthersMayWrite(parent) && !(parent.st_mode & S_ISVTX)) {
    *error = bad + "can be written by other users but is not sticky (chmod 1777): any of them could remove or "
             "replace the ledgers in it";
    close(fd);
    return -1;
  }
  if (faccessat(fd, ".", W_OK | X_OK, 0) != 0) {
    *error = bad + "is not writable: " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace gpushare::quota::ledger_file
