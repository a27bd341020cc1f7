// SPDX-License-Identifier: Apache-2.0
// Physical device memory accounting. Process-local by default; with GPUSHARE_FAKE_STATE_DIR
// every process using that directory shares one memory-mapped file per device holding
// per-process usage slots, updated under flock, so several processes see one "GPU".
#include "tests/fake_driver/state.h"
#include "tests/fake_driver/phys_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace fakecuda {
namespace {

using phys_file::kMagic;
using phys_file::kSlots;
using phys_file::SharedFile;
using phys_file::Slot;

struct DevicePhys {
  uint64_t total = 0;
  uint64_t mine = 0;
  int fd = -1;
  SharedFile* file = nullptr;
  int slot = -1;
};

std::vector<DevicePhys>& devs() {
  static auto* v = new std::vector<DevicePhys>;
  return *v;
}

bool pid_alive(int32_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// Holds the device file's lock for a scope; no-op when accounting is process-local.
class FileLock {
 public:
  explicit FileLock(const DevicePhys& d) : fd_(d.fd) {
    if (fd_ >= 0) while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {}
  }
  ~FileLock() {
    if (fd_ >= 0) flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// Sum over live processes; slots of dead ones are reclaimed. Caller holds the file lock.
uint64_t shared_sum(DevicePhys& d) {
  uint64_t sum = 0;
  for (Slot& s : d.file->slots) {
    if (s.pid == 0) continue;
    if (!pid_alive(s.pid)) {
      s.pid = 0;
      s.bytes = 0;
      continue;
    }
    sum += s.bytes;
  }
  return sum;
}

// This process's slot (re-found after fork, when the pid changed). Caller holds the lock.
Slot* own_slot(DevicePhys& d) {
  const int32_t pid = getpid();
  if (d.slot >= 0 && d.file->slots[d.slot].pid == pid) return &d.file->slots[d.slot];
  for (int i = 0; i < kSlots; ++i) {
    if (d.file->slots[i].pid == pid) return &d.file->slots[(d.slot = i)];
  }
  shared_sum(d);  // reclaim dead slots first
  for (int i = 0; i < kSlots; ++i) {
    if (d.file->slots[i].pid == 0) {
      d.file->slots[i] = Slot{pid, 0, 0};
      return &d.file->slots[(d.slot = i)];
    }
  }
  return nullptr;
}

bool open_shared(DevicePhys& d, const std::string& path) {
  d.fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (d.fd < 0) return false;
  FileLock lock(d);
  struct stat st {};
  if (fstat(d.fd, &st) != 0) return false;
  if (static_cast<size_t>(st.st_size) < sizeof(SharedFile) &&
      ftruncate(d.fd, sizeof(SharedFile)) != 0) {
    return false;
  }
  void* p = mmap(nullptr, sizeof(SharedFile), PROT_READ | PROT_WRITE, MAP_SHARED, d.fd, 0);
  if (p == MAP_FAILED) return false;
  d.file = static_cast<SharedFile*>(p);
  if (d.file->magic != kMagic) d.file->magic = kMagic;  // fresh file: all slots zero already
  // A slot holding our pid belongs to an earlier process that had the same pid.
  for (Slot& s : d.file->slots) {
    if (s.pid == getpid()) s = Slot{0, 0, 0};
  }
  return true;
}

}  // namespace

CUresult phys_init(const std::vector<uint64_t>& totals, const char* state_dir) {
  phys_shutdown();
  for (size_t i = 0; i < totals.size(); ++i) {
    DevicePhys d;
    d.total = totals[i];
    if (state_dir != nullptr && *state_dir != '\0') {
      const std::string path = phys_file::PathOf(state_dir, static_cast<int>(i));
      if (!open_shared(d, path)) {
        std::fprintf(stderr, "fake libcuda: cannot use state file %s\n", path.c_str());
        devs().push_back(d);
        phys_shutdown();
        return CUDA_ERROR_OPERATING_SYSTEM;
      }
    }
    devs().push_back(d);
  }
  return CUDA_SUCCESS;
}

void phys_shutdown() {
  for (DevicePhys& d : devs()) {
    if (d.file != nullptr) {
      {
        FileLock lock(d);
        if (Slot* s = own_slot(d)) *s = Slot{0, 0, 0};
      }
      munmap(d.file, sizeof(SharedFile));
    }
    if (d.fd >= 0) close(d.fd);
  }
  devs().clear();
}

bool phys_charge(int device, uint64_t bytes) {
  DevicePhys& d = devs().at(device);
  if (d.file == nullptr) {
    if (bytes > d.total - d.mine) return false;
    d.mine += bytes;
    return true;
  }
  FileLock lock(d);
  uint64_t used = shared_sum(d);
  Slot* s = own_slot(d);
  if (s == nullptr || used > d.total || bytes > d.total - used) return false;
  s->bytes += bytes;
  d.mine += bytes;
  return true;
}

void phys_release(int device, uint64_t bytes) {
  DevicePhys& d = devs().at(device);
  if (bytes > d.mine) bytes = d.mine;
  d.mine -= bytes;
  if (d.file == nullptr) return;
  FileLock lock(d);
  if (Slot* s = own_slot(d)) s->bytes = s->bytes > bytes ? s->bytes - bytes : 0;
}

void phys_note_context(int device, bool created) {
  DevicePhys& d = devs().at(device);
  if (d.file == nullptr) return;
  FileLock lock(d);
  if (Slot* s = own_slot(d)) {
    if (created) ++s->contexts;
    else if (s->contexts > 0) --s->contexts;
  }
}

uint64_t phys_used_all(int device) {
  DevicePhys& d = devs().at(device);
  if (d.file == nullptr) return d.mine;
  FileLock lock(d);
  return shared_sum(d);
}

uint64_t phys_used_process(int device) { return devs().at(device).mine; }

}  // namespace fakecuda
