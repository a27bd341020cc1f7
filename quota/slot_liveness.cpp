// SPDX-License-Identifier: Apache-2.0
#include "quota/slot_liveness.h"

#include <fcntl.h>

#include <cerrno>

namespace gpushare::quota {

namespace {

struct flock Range(short type, off_t offset, off_t length) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = offset;
  fl.l_len = length;
  fl.l_pid = 0;  // required by F_OFD_*
  return fl;
}

}  // namespace

bool HoldSlotLock(int fd, off_t offset, off_t length) {
  struct flock fl = Range(F_WRLCK, offset, length);
  const int saved_errno = errno;
  const bool ok = fcntl(fd, F_OFD_SETLK, &fl) == 0;
  errno = saved_errno;
  return ok;
}

void ReleaseSlotLock(int fd, off_t offset, off_t length) {
  struct flock fl = Range(F_UNLCK, offset, length);
  const int saved_errno = errno;
  fcntl(fd, F_OFD_SETLK, &fl);
  errno = saved_errno;
}

Liveness ProbeSlot(int fd, off_t offset, off_t length) {
  struct flock fl = Range(F_WRLCK, offset, length);
  const int saved_errno = errno;
  const int rc = fcntl(fd, F_OFD_GETLK, &fl);
  errno = saved_errno;
  if (rc != 0) return Liveness::kUnknown;
  return fl.l_type == F_UNLCK ? Liveness::kDead : Liveness::kAlive;
}

}  // namespace gpushare::quota
