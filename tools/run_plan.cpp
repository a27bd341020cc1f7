// SPDX-License-Identifier: Apache-2.0
#include "tools/run_plan.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <optional>
#include <sstream>

#include "src/contracts.h"
#include "src/options.h"
#include "src/printable.h"

namespace gpushare::run {
namespace {

constexpr std::string_view kPrefix = "GPUSHARE_";

bool IsFlagKind(const OptionRow& row) { return row.accepted == option_kind::Flag::kAccepted; }

struct Match {
  const OptionRow* row = nullptr;
  std::string variable;
};

// "--mem-limit" -> GPUSHARE_MEM_LIMIT; "--mem-limit-1" -> GPUSHARE_MEM_LIMIT_1.
Match FindFlag(std::string_view flag) {
  for (const OptionRow& row : OptionRows()) {
    const std::string own = FlagOf(row.variable);
    if (flag == own) return {&row, std::string(row.variable)};
    if (!row.per_device || !flag.starts_with(own + "-")) continue;
    const std::string_view index = flag.substr(own.size() + 1);
    if (index.empty() || index.size() > 2) continue;
    bool digits = true;
    for (char c : index) digits = digits && c >= '0' && c <= '9';
    if (digits && std::stoi(std::string(index)) < kMaxDevices)
      return {&row, fmt::format("{}_{}", row.variable, index)};
  }
  return {};
}

}  // namespace

std::string FlagOf(std::string_view variable) {
  if (variable.starts_with(kPrefix)) variable.remove_prefix(kPrefix.size());
  std::string flag = "--";
  for (char c : variable) flag += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return flag;
}

Plan ParseArgs(const std::vector<std::string>& args) {
  Plan plan;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!arg.starts_with("-")) break;  // the command
    if (arg == "--help" || arg == "-h") {
      plan.help = true;
      continue;
    }
    if (arg == "--print-env") {
      plan.print_env = true;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    if (name == "--library") {
      if (!value && i + 1 < args.size()) value = args[++i];
      if (!value || value->empty()) plan.errors.push_back("--library needs the path of libgpushare.so");
      else plan.library = *value;
      continue;
    }
    const Match match = FindFlag(name);
    if (match.row == nullptr) {
      plan.errors.push_back(fmt::format("unknown option {} (see --help)", Printable(name)));
      continue;
    }
    if (!value) {
      const bool next_is_value = i + 1 < args.size() && !args[i + 1].starts_with("--");
      if (next_is_value) {
        value = args[++i];
      } else if (IsFlagKind(*match.row)) {
        value = "true";
      } else {
        plan.errors.push_back(fmt::format("{} needs a value ({})", name, match.row->accepted));
        continue;
      }
    }
    if (!match.row->valid(*value)) {
      plan.errors.push_back(fmt::format("{} \"{}\" is not valid ({})", name, Printable(*value), match.row->why(*value)));
      continue;
    }
    plan.env.emplace_back(match.variable, *value);
  }
  plan.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  if (plan.command.empty() && !plan.help) plan.errors.push_back("no command to run (gpushare-run [OPTIONS] -- COMMAND [ARGS...])");
  return plan;
}

std::string Usage() {
  std::ostringstream out;
  out << "usage: gpushare-run [OPTIONS] [--] COMMAND [ARGS...]\n"
         "Runs COMMAND under gpushare: sets the GPUSHARE_ variables the options give, puts\n"
         "libgpushare.so first in LD_PRELOAD, checks the whole configuration (the environment's too)\n"
         "and execs COMMAND. Nothing runs when a value is malformed (exit status 2).\n"
         "  e.g. gpushare-run --mem-request 4Gi --mem-limit 8Gi --sm 25% --priority 10 --resolver wait -- python3 serve.py\n\n"
         "Options (each sets the variable it names; unset ones keep the environment's value):\n";
  for (const OptionRow& row : OptionRows()) {
    std::string flag = FlagOf(row.variable) + (row.per_device ? "[-<i>]" : "");
    flag += IsFlagKind(row) ? " [true|false]" : " VALUE";
    out << fmt::format("  {:<32} {}: {}", flag, row.variable, row.help);
    out << fmt::format(" (default: {}; {})\n", row.default_value.empty() ? "unset" : row.default_value, row.accepted);
  }
  out << fmt::format("  {:<32} {}\n", "--library PATH",
                     "the libgpushare.so to preload (default: beside gpushare-run, or in ../lib)");
  out << fmt::format("  {:<32} {}\n", "--print-env", "print the variables it would set, and exit");
  out << fmt::format("  {:<32} {}\n", "-h, --help", "this text");
  out << "\nRead from the environment when the GPUSHARE_ variable is unset (schedulers' variables):\n";
  for (const ContractRow& row : ContractRows()) {
    const OptionRow* option = FindOptionRow(row.field);
    out << fmt::format("  {:<32} {}: {} (for {})\n", row.variables, row.scheduler, row.help,
                       option != nullptr ? option->variable : row.field);
  }
  out << "\nExit status: COMMAND's; 2 for a usage error or a malformed value; 126/127 when COMMAND\n"
         "cannot be run or found.\n";
  return out.str();
}

std::string FindLibrary(const std::string& exe_dir, const std::string& explicit_path, std::string* error) {
  const std::vector<std::string> candidates =
      explicit_path.empty() ? std::vector<std::string>{exe_dir + "/libgpushare.so", exe_dir + "/../lib/libgpushare.so"}
                            : std::vector<std::string>{explicit_path};
  for (const std::string& path : candidates) {
    if (access(path.c_str(), R_OK) != 0) continue;
    char resolved[4096];
    return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
  }
  std::string looked;
  for (const std::string& path : candidates) looked += (looked.empty() ? "" : ", ") + Printable(path);
  *error = fmt::format("cannot find libgpushare.so (looked at {}); pass --library PATH", looked);
  return {};
}

std::string PrependPreload(const char* current, const std::string& library) {
  std::string rest;
  if (current != nullptr) {
    std::string all = current;  // LD_PRELOAD separates with spaces or colons
    for (char& c : all)
      if (c == ':') c = ' ';
    std::istringstream words(all);
    for (std::string entry; words >> entry;)
      if (entry != library) rest += " " + entry;
  }
  return library + rest;
}

}  // namespace gpushare::run
