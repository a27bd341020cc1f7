// SPDX-License-Identifier: Apache-2.0
#include "src/tenant_name.h"

#include <fmt/format.h>

#include "gpushare/ledger_abi.h"

namespace gpushare {

namespace {
constexpr size_t kMaxBytes = GS_LEDGER_NAME_BYTES - 1;
}  // namespace

bool IsTenantNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '/' || c == '@';
}

std::string TenantNameProblem(std::string_view name) {
  if (name.empty()) return "empty";
  for (size_t i = 0; i < name.size(); ++i)
    if (!IsTenantNameByte(name[i]))
      return fmt::format("byte {} is 0x{:02x}", i + 1, static_cast<unsigned char>(name[i]));
  if (name.size() > kMaxBytes) return fmt::format("{} bytes", name.size());
  return {};
}

std::string SanitizeTenantName(std::string_view text) {
  std::string out(text.substr(0, kMaxBytes));
  for (char& c : out)
    if (!IsTenantNameByte(c)) c = '_';
  return out.empty() ? "unknown" : out;
}

}  // namespace gpushare
