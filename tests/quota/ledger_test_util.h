// SPDX-License-Identifier: Apache-2.0
// Shared by the ledger tests: a scratch directory, a GPU UUID, and a window into a session's
// mapping (LedgerSessionTest is the friend quota/ledger.h names for this).
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "quota/ledger.h"

namespace gpushare::quota {

class LedgerSessionTest {
 public:
  static GsLedgerHeader* Header(LedgerSession& s) { return s.header_; }
  static GsLedgerTenant* Tenant(LedgerSession& s) { return s.tenant_; }
  static GsLedgerProcess* Process(LedgerSession& s) { return s.process_; }
};

}  // namespace gpushare::quota

namespace gpushare::quota::testing {

inline constexpr unsigned char kUuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
inline constexpr uint64_t kMiB = 1ull << 20;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gpushare-ledger-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string ledger() const { return LedgerPath(path_, kUuid); }

 private:
  std::string path_;
};

inline TenantConfig Tenant(const std::string& name, uint64_t request_mib, uint64_t limit_mib,
                           bool best_effort = false) {
  return TenantConfig{name, request_mib * kMiB, limit_mib * kMiB, best_effort};
}

// A snapshot that must be readable; the tenant of that name in it, or nullptr.
inline LedgerSnapshot Snapshot(const std::string& path) {
  LedgerSnapshot snap;
  std::string error;
  EXPECT_TRUE(ReadLedger(path, &snap, &error)) << error;
  return snap;
}
inline const TenantSnapshot* Find(const LedgerSnapshot& snap, const std::string& name) {
  for (const auto& t : snap.tenants)
    if (t.name == name) return &t;
  return nullptr;
}

// What another process may write into a ledger's name fields (our library never does): escape
// sequences (clear screen, set the terminal's title), a newline, invalid UTF-8, a quote and a
// backslash. Each string is split where a hex escape would swallow the next letter.
inline constexpr char kHostileName[] = "\x1b[2J\x1b]0;owned\x07" "evil\n\xff\xfe\"\\name";
inline constexpr char kHostileContainerId[] = "\x1b[31m\xc3" "abc\r";

// Overwrites the session's tenant name and its process's container id in the mapping.
inline void WriteHostileNames(LedgerSession& session) {
  GsLedgerTenant* t = LedgerSessionTest::Tenant(session);
  std::memset(t->name, 0, sizeof t->name);
  std::memcpy(t->name, kHostileName, sizeof kHostileName - 1);
  GsLedgerProcess* p = LedgerSessionTest::Process(session);
  std::memset(p->container_id, 0, sizeof p->container_id);
  std::memcpy(p->container_id, kHostileContainerId, sizeof kHostileContainerId - 1);
}

// Only printable ASCII and line ends: nothing a terminal would interpret, valid UTF-8.
inline bool PrintableLines(const std::string& text) {
  for (const char c : text)
    if (c != '\n' && (c < 0x20 || c >= 0x7f)) return false;
  return true;
}

}  // namespace gpushare::quota::testing
