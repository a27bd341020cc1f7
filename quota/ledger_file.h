// SPDX-License-Identifier: Apache-2.0
// The ledger file itself: its directory (quota/ledger_dir.cpp), race-free creation and
// replacement, mapping and validation. Internal to quota/ledger*.cpp; everything here refuses
// rather than trusts.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>

#include "gpushare/ledger_abi.h"

namespace gpushare::quota::ledger_file {

// Opens the ledger directory (quota/ledger_dir.cpp has the rules), creating what is missing:
// an O_PATH descriptor, or -1 with an error naming dir and GPUSHARE_LEDGER_DIR.
int OpenDir(const std::string& dir, std::string* error);
// "<dir>/<name>", for messages.
inline std::string PathIn(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Opens dirfd/name (never following a link, never blocking on a FIFO): a regular file's
// descriptor (O_CLOEXEC), else -1 with *error, or with errno ENOENT and no error when absent.
int OpenRegular(int dirfd, const char* name, int flags, const std::string& path, std::string* error);
const char* FileKind(mode_t mode);  // "a FIFO", "a directory", ...

// Opens dirfd/name read-write, creating it when absent: the file is initialised under a
// temporary name and link()ed into place, so concurrent starters agree on one file and nobody
// ever maps a half-written one. Returns the descriptor (O_CLOEXEC) or -1 with *error.
int OpenOrCreate(int dirfd, const std::string& dir, const std::string& name, const unsigned char uuid[16],
                 uint64_t total_bytes, uint64_t usable_bytes, std::string* error);

// How a ledger file was damaged in a way only a ledger can be ("truncated to 0 bytes",
// "zeroed"): empty when it is intact or not recognisably one of ours (foreign content is
// refused, never replaced).
std::string DescribeDamage(int fd);
// Whether some process (other than through fd's own open file) holds a process slot of it.
bool AnyLiveSlot(int fd);
// Replaces the damaged file dirfd/name, still the one open as damaged_fd, by a fresh ledger
// (one replacer at a time). kGone: it was replaced or removed meanwhile.
enum class ReplaceResult { kReplaced, kGone, kFailed };
ReplaceResult ReplaceDamaged(int dirfd, const std::string& dir, const std::string& name, int damaged_fd,
                             const unsigned char uuid[16], uint64_t total_bytes, uint64_t usable_bytes,
                             std::string* error);

// Why a header (read from a file of file_bytes bytes) is refused; empty when it is acceptable.
std::string CheckHeader(const GsLedgerHeader& header, uint64_t file_bytes);
// Why the slots are refused; empty when acceptable. `base` is a whole file (GS_LEDGER_FILE_BYTES)
// whose header passed CheckHeader.
std::string CheckSlots(const void* base);

// Reads and checks the header of fd, then maps the whole file. nullptr with *error (naming path).
void* MapChecked(int fd, const std::string& path, bool writable, std::string* error);
void Unmap(void* base);

inline GsLedgerHeader* Header(void* base) { return static_cast<GsLedgerHeader*>(base); }
inline GsLedgerTenant* Tenants(void* base) {
  return reinterpret_cast<GsLedgerTenant*>(static_cast<char*>(base) + GS_LEDGER_HEADER_BYTES);
}
inline constexpr off_t kProcessSlotsOffset =
    GS_LEDGER_HEADER_BYTES + GS_LEDGER_TENANT_SLOTS * GS_LEDGER_TENANT_SLOT_BYTES;
inline GsLedgerProcess* Processes(void* base) {
  return reinterpret_cast<GsLedgerProcess*>(static_cast<char*>(base) + kProcessSlotsOffset);
}
inline off_t ProcessSlotOffset(uint32_t index) {
  return kProcessSlotsOffset + static_cast<off_t>(index) * GS_LEDGER_PROCESS_SLOT_BYTES;
}

inline GsLedgerTermination* Terminations(void* base) {
  return reinterpret_cast<GsLedgerTermination*>(static_cast<char*>(base) + GS_LEDGER_TERMINATIONS_OFFSET);
}

void FormatUuid(const uint8_t uuid[16], char (&out)[41]);

// Waiting for the ledger lock longer than this means a holder is stopped, not dead.
inline constexpr int kLockTimeoutMs = 10000;
// How long a recount waits for a live process to leave its lock-free pair update.
inline constexpr int kQuiesceTimeoutMs = 1000;

// Slow paths make syscalls; the intercepted caller's errno survives them.
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;

 private:
  int saved_;
};

// The mapping's counters are plain uint64_t in the C ABI, updated through atomic_ref.
constexpr uint64_t kUsedMask = ~GS_TENANT_USED_FROZEN;

static_assert(std::atomic_ref<uint64_t>::is_always_lock_free, "shared counters need 64-bit atomics");

inline std::atomic_ref<uint64_t> A(uint64_t& field) { return std::atomic_ref<uint64_t>(field); }
inline uint64_t Load(const uint64_t& field) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(field)).load(std::memory_order_acquire);
}
inline uint32_t LoadState(const uint32_t& state) {
  return __atomic_load_n(&state, __ATOMIC_ACQUIRE);
}
inline void StoreState(uint32_t& state, uint32_t value) {
  __atomic_store_n(&state, value, __ATOMIC_RELEASE);
}
// Display only: threads of one process may race here, and the highest need not win.
inline void NotePeak(GsLedgerProcess* p, uint64_t now) {
  auto peak = A(p->peak_bytes);
  if (now > peak.load(std::memory_order_relaxed)) peak.store(now, std::memory_order_relaxed);
}

uint64_t NowUnixNs();
// CLOCK_MONOTONIC: waits, idleness (GsLedgerProcess.last_active_ns); one clock for the node.
uint64_t NowMonotonicNs();

}  // namespace gpushare::quota::ledger_file
