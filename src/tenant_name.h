// SPDX-License-Identifier: Apache-2.0
// The tenant name's alphabet: 1 to 127 bytes (GS_LEDGER_NAME_BYTES - 1) of
//   A-Z a-z 0-9 - . _ / @
// Kubernetes names are DNS labels and subdomains (lowercase letters, digits, '-', '.'); the
// derived names add '/' between their parts (<namespace>/<pod>/<container>,
// pod<uid>/<container id>), '@' before the host (pid-<pid>@<host>), and hand-set names commonly
// use capitals and '_'. Nothing else: a name is printed by gpushare-smi, labelled by the
// exporter and logged, so no byte in it may need escaping (a ledger written by another process
// may still hold anything: tools print names through Printable, src/printable.h).
#pragma once
#include <string>
#include <string_view>

namespace gpushare {

inline constexpr std::string_view kTenantNameAlphabet =
    "a tenant name is 1 to 127 bytes of letters, digits and - . _ / @";

bool IsTenantNameByte(char c);

// "" for a valid name; else why not, naming the first offending byte by its position (1-based):
// "byte 4 is 0x1b", "130 bytes", "empty".
std::string TenantNameProblem(std::string_view name);

// A derived name (from a hostname, a cgroup path) made valid, never refused: each byte outside
// the alphabet becomes '_', the result is cut to 127 bytes, and an empty one is "unknown".
std::string SanitizeTenantName(std::string_view text);

}  // namespace gpushare
