// SPDX-License-Identifier: Apache-2.0
// Untrusted bytes (a name read from a ledger, a value from the environment) made safe to print
// anywhere: a terminal, a log line, a JSON string, a Prometheus label value. Another process can
// write any bytes into a ledger, so every tool passes what it read through this before printing.
#pragma once
#include <string>
#include <string_view>

namespace gpushare {

// Printable ASCII (0x20 to 0x7e) is kept, a backslash becomes "\\" and every other byte (control
// bytes, DEL, anything past ASCII, valid UTF-8 or not) "\xNN". The result is printable ASCII and
// says exactly which bytes were there; a name in the tenant alphabet (src/tenant_name.h) comes
// out unchanged.
std::string Printable(std::string_view bytes);

}  // namespace gpushare
