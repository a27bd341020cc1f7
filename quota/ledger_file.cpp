// SPDX-License-Identifier: Apache-2.0
#include "quota/ledger_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "quota/robust_lock.h"

namespace gpushare::quota::ledger_file {

namespace {

std::string Errno(int err) { return std::strerror(err); }

bool NulTerminated(const char* text, size_t size) { return std::memchr(text, '\0', size) != nullptr; }

std::string U64(uint64_t v) { return std::to_string(v); }

void Initialise(void* base, const unsigned char uuid[16], uint64_t total_bytes, uint64_t usable_bytes) {
  std::memset(base, 0, GS_LEDGER_FILE_BYTES);
  GsLedgerHeader* h = Header(base);
  std::memcpy(h->magic, GS_LEDGER_MAGIC, sizeof h->magic);
  h->abi_version = GS_LEDGER_ABI_VERSION;
  h->header_bytes = sizeof(GsLedgerHeader);
  h->tenant_slot_bytes = sizeof(GsLedgerTenant);
  h->tenant_slot_count = GS_LEDGER_TENANT_SLOTS;
  h->process_slot_bytes = sizeof(GsLedgerProcess);
  h->process_slot_count = GS_LEDGER_PROCESS_SLOTS;
  h->tenant_slots_offset = GS_LEDGER_HEADER_BYTES;
  h->process_slots_offset = kProcessSlotsOffset;
  h->terminations_offset = GS_LEDGER_TERMINATIONS_OFFSET;
  h->termination_slot_bytes = sizeof(GsLedgerTermination);
  h->termination_slot_count = GS_LEDGER_TERMINATION_SLOTS;
  h->waiter_slot_count = GS_LEDGER_WAITER_SLOTS;
  h->file_bytes = GS_LEDGER_FILE_BYTES;
  h->total_bytes = total_bytes;
  h->usable_bytes = usable_bytes;
  std::memcpy(h->uuid, uuid, sizeof h->uuid);
  h->lock_bytes = GS_LEDGER_LOCK_BYTES;
  h->created_unix_ns = NowUnixNs();
}

}  // namespace

uint64_t NowUnixNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t NowMonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void FormatUuid(const uint8_t uuid[16], char (&out)[41]) {
  const uint8_t* b = uuid;
  std::snprintf(out, sizeof out,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
}

int OpenRegular(int dirfd, const char* name, int flags, const std::string& path, std::string* error) {
  // O_NONBLOCK: a FIFO named like a ledger must not hang the opener; O_NOFOLLOW: nor may a link
  // lead it elsewhere (the directory may be world-writable).
  const int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return -1;
    *error = "gpushare: cannot open the ledger " + path + ": " +
             (err == ELOOP ? std::string("it is a symbolic link (refused: it could lead anywhere)") : Errno(err));
    errno = err;
    return -1;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    *error = "gpushare: refusing the ledger " + path + ": " +
             (S_ISREG(st.st_mode) ? Errno(err) : "not a regular file (" + std::string(FileKind(st.st_mode)) + ")");
    close(fd);
    errno = EINVAL;
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a plain file";
}

namespace {

// A fresh, initialised ledger under a temporary name in dirfd: its descriptor, and its name in
// *tmp; -1 with *error.
int CreateInitialised(int dirfd, const std::string& dir, const std::string& name, const unsigned char uuid[16],
                      uint64_t total_bytes, uint64_t usable_bytes, std::string* tmp, std::string* error) {
  // getrandom(2), not std::random_device: libstdc++'s uses arc4random (glibc 2.36), and the
  // library must load in images with an older glibc.
  uint32_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof nonce))
    nonce = static_cast<uint32_t>(NowMonotonicNs());
  *tmp = name + ".tmp." + std::to_string(getpid()) + "." + std::to_string(nonce);
  const int tfd = openat(dirfd, tmp->c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (tfd < 0) {
    *error = "gpushare: cannot create a ledger in " + dir + ": " + Errno(errno);
    return -1;
  }
  fchmod(tfd, 0666);  // past the umask: co-tenants run as other users
  std::string init_error;
  bool ok = ftruncate(tfd, GS_LEDGER_FILE_BYTES) == 0;
  if (ok) {
    void* base = mmap(nullptr, GS_LEDGER_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
    ok = base != MAP_FAILED;
    if (ok) {
      Initialise(base, uuid, total_bytes, usable_bytes);
      ok = InitRobustLock(Header(base)->lock, &init_error);
      __atomic_store_n(&Header(base)->initialized, GS_LEDGER_INITIALIZED, __ATOMIC_RELEASE);
      munmap(base, GS_LEDGER_FILE_BYTES);
    }
  }
  if (!ok) {
    const int err = errno;
    unlinkat(dirfd, tmp->c_str(), 0);
    close(tfd);
    *error = "gpushare: cannot initialise a ledger in " + dir + ": " + (init_error.empty() ? Errno(err) : init_error);
    return -1;
  }
  return tfd;
}

}  // namespace

int OpenOrCreate(int dirfd, const std::string& dir, const std::string& name, const unsigned char uuid[16],
                 uint64_t total_bytes, uint64_t usable_bytes, std::string* error) {
  const std::string path = PathIn(dir, name);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = OpenRegular(dirfd, name.c_str(), O_RDWR, path, error);
    if (fd >= 0) return fd;
    if (errno != ENOENT) return -1;
    std::string tmp;
    const int tfd = CreateInitialised(dirfd, dir, name, uuid, total_bytes, usable_bytes, &tmp, error);
    if (tfd < 0) return -1;
    // Publish: link() fails with EEXIST when a concurrent starter won; then use theirs.
    int rc = linkat(dirfd, tmp.c_str(), dirfd, name.c_str(), 0);
    int err = errno;
    if (rc != 0 && (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)) {
      rc = renameat2(dirfd, tmp.c_str(), dirfd, name.c_str(), RENAME_NOREPLACE);
      err = errno;
    }
    unlinkat(dirfd, tmp.c_str(), 0);
    if (rc == 0) return tfd;
    close(tfd);
    if (err != EEXIST) {
      *error = "gpushare: cannot create the ledger " + path + ": " + Errno(err);
      return -1;
    }
  }
  *error = "gpushare: the ledger " + path + " keeps disappearing while being opened";
  return -1;
}

std::string DescribeDamage(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return {};
  const auto size = static_cast<uint64_t>(st.st_size);
  unsigned char head[GS_LEDGER_HEADER_BYTES] = {};
  const ssize_t n = pread(fd, head, sizeof head, 0);
  if (n < 0) return {};
  const size_t got = static_cast<size_t>(n);
  const size_t compared = got < sizeof GS_LEDGER_MAGIC - 1 ? got : sizeof GS_LEDGER_MAGIC - 1;
  const bool ours = std::memcmp(head, GS_LEDGER_MAGIC, compared) == 0;  // what is left says so
  if (size != GS_LEDGER_FILE_BYTES) {
    if (size == 0) return "truncated to 0 bytes";
    if (ours) return (size < GS_LEDGER_FILE_BYTES ? "truncated to " : "resized to ") + U64(size) + " bytes";
    return {};
  }
  for (size_t i = 0; i < got; ++i)
    if (head[i] != 0) return {};
  return "zeroed";
}

bool AnyLiveSlot(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = kProcessSlotsOffset;
  fl.l_len = static_cast<off_t>(GS_LEDGER_PROCESS_SLOTS) * GS_LEDGER_PROCESS_SLOT_BYTES;
  // Fails safe: when the kernel cannot say, assume someone is there.
  return fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK;
}

ReplaceResult ReplaceDamaged(int dirfd, const std::string& dir, const std::string& name, int damaged_fd,
                             const unsigned char uuid[16], uint64_t total_bytes, uint64_t usable_bytes,
                             std::string* error) {
  const std::string path = PathIn(dir, name);
  // One replacer at a time, among everyone who opened the damaged file: a byte past every slot.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = GS_LEDGER_FILE_BYTES;
  fl.l_len = 1;
  bool locked = false;
  for (int i = 0; i < 200 && !locked; ++i) {
    locked = fcntl(damaged_fd, F_OFD_SETLK, &fl) == 0;
    if (!locked) usleep(10'000);
  }
  if (!locked) {
    *error = "gpushare: the damaged ledger " + path + " is being replaced by another process for more than 2 s";
    return ReplaceResult::kFailed;
  }
  ReplaceResult result = ReplaceResult::kFailed;
  struct stat mine {}, named {};
  if (fstat(damaged_fd, &mine) != 0 || fstatat(dirfd, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
      mine.st_dev != named.st_dev || mine.st_ino != named.st_ino) {
    result = ReplaceResult::kGone;  // someone replaced or removed it already
  } else {
    std::string tmp;
    const int tfd = CreateInitialised(dirfd, dir, name, uuid, total_bytes, usable_bytes, &tmp, error);
    if (tfd >= 0) {
      if (renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) == 0) {
        result = ReplaceResult::kReplaced;
      } else {
        *error = "gpushare: cannot replace the damaged ledger " + path + " (owned by uid " +
                 std::to_string(named.st_uid) + "): " + Errno(errno) + "; remove it once no process uses it";
        unlinkat(dirfd, tmp.c_str(), 0);
      }
      close(tfd);
    }
  }
  fl.l_type = F_UNLCK;
  fcntl(damaged_fd, F_OFD_SETLK, &fl);
  return result;
}

std::string CheckHeader(const GsLedgerHeader& h, uint64_t file_bytes) {
  if (file_bytes < sizeof(GsLedgerHeader))
    return "truncated: " + U64(file_bytes) + " bytes, a ledger has " + U64(GS_LEDGER_FILE_BYTES);
  if (std::memcmp(h.magic, GS_LEDGER_MAGIC, sizeof h.magic) != 0)
    return "not a gpushare ledger (bad magic)";
  if (h.abi_version != GS_LEDGER_ABI_VERSION)
    return "ABI version " + U64(h.abi_version) + ", this gpushare reads version " +
           U64(GS_LEDGER_ABI_VERSION) + " (stop every process using it, then remove it)";
  if (h.header_bytes != sizeof(GsLedgerHeader) || h.tenant_slot_bytes != sizeof(GsLedgerTenant) ||
      h.process_slot_bytes != sizeof(GsLedgerProcess) || h.lock_bytes != GS_LEDGER_LOCK_BYTES)
    return "slot sizes mismatch (header " + U64(h.header_bytes) + ", tenant " +
           U64(h.tenant_slot_bytes) + ", process " + U64(h.process_slot_bytes) + ")";
  if (h.tenant_slot_count != GS_LEDGER_TENANT_SLOTS || h.process_slot_count != GS_LEDGER_PROCESS_SLOTS)
    return "slot counts mismatch (" + U64(h.tenant_slot_count) + " tenants, " +
           U64(h.process_slot_count) + " processes)";
  if (h.tenant_slots_offset != GS_LEDGER_HEADER_BYTES || h.process_slots_offset != kProcessSlotsOffset)
    return "slot offsets mismatch";
  if (h.terminations_offset != GS_LEDGER_TERMINATIONS_OFFSET ||
      h.termination_slot_bytes != sizeof(GsLedgerTermination) ||
      h.termination_slot_count != GS_LEDGER_TERMINATION_SLOTS || h.waiter_slot_count != GS_LEDGER_WAITER_SLOTS)
    return "waiter table or termination ring mismatch";
  if (h.file_bytes != GS_LEDGER_FILE_BYTES || file_bytes != GS_LEDGER_FILE_BYTES)
    return "size mismatch or truncated: the file has " + U64(file_bytes) + " bytes, its header says " +
           U64(h.file_bytes) + ", a ledger has " + U64(GS_LEDGER_FILE_BYTES);
  if (h.initialized != GS_LEDGER_INITIALIZED) return "never finished initialising";
  if (h.usable_bytes == 0 || h.usable_bytes > h.total_bytes)
    return "totals inconsistent (usable " + U64(h.usable_bytes) + " of total " + U64(h.total_bytes) + ")";
  return {};
}

std::string CheckSlots(const void* base) {
  void* b = const_cast<void*>(base);
  const GsLedgerHeader& h = *Header(b);
  const GsLedgerTenant* tenants = Tenants(b);
  const GsLedgerProcess* processes = Processes(b);
  if (h.sm_map_state > GS_SM_MAP_READY) return "unknown SM map state " + U64(h.sm_map_state);
  uint64_t sum_requests = 0;
  for (uint32_t i = 0; i < GS_LEDGER_TENANT_SLOTS; ++i) {
    const GsLedgerTenant& t = tenants[i];
    const std::string where = "tenant slot " + U64(i) + ": ";
    if (t.state > GS_SLOT_ACTIVE) return where + "bad state " + U64(t.state);
    if (t.state != GS_SLOT_ACTIVE) continue;
    if (!NulTerminated(t.name, sizeof t.name)) return where + "name is not NUL-terminated";
    if (t.name[0] == '\0') return where + "empty name";
    if (t.request_bytes > t.limit_bytes || t.asked_request_bytes > t.limit_bytes)
      return where + "request " + U64(t.request_bytes) + " above limit " + U64(t.limit_bytes);
    if ((t.flags & ~GS_TENANT_BEST_EFFORT) != 0) return where + "unknown flags " + U64(t.flags);
    if (t.resolver > GS_RESOLVER_SWAP) return where + "unknown resolver " + U64(t.resolver);
    if (t.sm_asked_kind > GS_SM_ASK_PERCENT || (t.sm_asked_kind == GS_SM_ASK_PERCENT && t.sm_asked > 100))
      return where + "unknown SM slice " + U64(t.sm_asked_kind) + "/" + U64(t.sm_asked);
    if ((t.sm_flags & ~(GS_SM_OVERLAPS | GS_SM_UNCONFINED)) != 0) return where + "unknown SM flags " + U64(t.sm_flags);
    if ((t.terminate & GS_TERMINATE_REQUESTED) != 0 &&
        (t.terminate & 0xffffffffu) >= GS_LEDGER_TENANT_SLOTS)
      return where + "termination requester out of range";
    sum_requests += t.request_bytes;
    if (sum_requests > h.usable_bytes)
      return "totals inconsistent: the requests add up past usable " + U64(h.usable_bytes);
  }
  for (uint32_t i = 0; i < GS_LEDGER_PROCESS_SLOTS; ++i) {
    const GsLedgerProcess& p = processes[i];
    const std::string where = "process slot " + U64(i) + ": ";
    if (p.state > GS_SLOT_ACTIVE) return where + "bad state " + U64(p.state);
    if (p.state != GS_SLOT_ACTIVE) continue;
    if (p.tenant_index >= GS_LEDGER_TENANT_SLOTS)
      return where + "tenant index " + U64(p.tenant_index) + " out of range";
    if (!NulTerminated(p.container_id, sizeof p.container_id))
      return where + "container id is not NUL-terminated";
    if (p.swap_state > GS_SWAP_SWAPPING_IN) return where + "unknown swap state " + U64(p.swap_state);
  }
  for (uint32_t i = 0; i < GS_LEDGER_WAITER_SLOTS; ++i) {
    const GsLedgerWaiter& w = h.waiters[i];
    if (w.ticket == 0) continue;
    if (w.process_index >= GS_LEDGER_PROCESS_SLOTS || w.tenant_index >= GS_LEDGER_TENANT_SLOTS)
      return "waiter " + U64(i) + ": slot index out of range";
  }
  const GsLedgerTermination* ring = Terminations(b);
  for (uint32_t i = 0; i < GS_LEDGER_TERMINATION_SLOTS; ++i) {
    if (ring[i].sequence == 0) continue;
    if (!NulTerminated(ring[i].victim, sizeof ring[i].victim) ||
        !NulTerminated(ring[i].requester, sizeof ring[i].requester))
      return "termination record " + U64(i) + ": names are not NUL-terminated";
  }
  return {};
}

void* MapChecked(int fd, const std::string& path, bool writable, std::string* error) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *error = "gpushare: cannot stat the ledger " + path + ": " + Errno(errno);
    return nullptr;
  }
  GsLedgerHeader header{};
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size >= sizeof header && pread(fd, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
    *error = "gpushare: cannot read the ledger " + path + ": " + Errno(errno);
    return nullptr;
  }
  if (std::string why = CheckHeader(header, size); !why.empty()) {
    *error = "gpushare: refusing the ledger " + path + ": " + why;
    return nullptr;
  }
  void* base = mmap(nullptr, GS_LEDGER_FILE_BYTES, PROT_READ | (writable ? PROT_WRITE : 0),
                    MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    *error = "gpushare: cannot map the ledger " + path + ": " + Errno(errno);
    return nullptr;
  }
  return base;
}

void Unmap(void* base) {
  if (base != nullptr) munmap(base, GS_LEDGER_FILE_BYTES);
}

}  // namespace gpushare::quota::ledger_file
