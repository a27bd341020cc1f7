// SPDX-License-Identifier: Apache-2.0
// gpushare-run's command line, turned into the environment it sets and the command it runs.
// Every GPUSHARE_ option of src/options.inc is a flag (GPUSHARE_MEM_LIMIT -> --mem-limit, and
// --mem-limit-<i> for GPUSHARE_MEM_LIMIT_<i>), validated by the option's own parser.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace gpushare::run {

struct Plan {
  std::vector<std::pair<std::string, std::string>> env;  // variable, value: set before exec
  std::vector<std::string> command;
  std::string library;  // --library
  bool help = false;
  bool print_env = false;
  std::vector<std::string> errors;  // non-empty: exit 2 without running anything
};

Plan ParseArgs(const std::vector<std::string>& args);

// The flag of an option variable: GPUSHARE_MEM_LIMIT -> --mem-limit.
std::string FlagOf(std::string_view variable);

std::string Usage();

// libgpushare.so: `explicit_path` when given, else beside the executable (<dir>/libgpushare.so)
// or in <dir>/../lib. Empty with *error when none exists.
std::string FindLibrary(const std::string& exe_dir, const std::string& explicit_path, std::string* error);

// LD_PRELOAD with `library` first, once.
std::string PrependPreload(const char* current, const std::string& library);

}  // namespace gpushare::run
