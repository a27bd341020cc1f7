// SPDX-License-Identifier: Apache-2.0
// gpushare-run: runs a command under gpushare, configured from flags (tools/run_plan.h).
//   gpushare-run --mem-request 4Gi --mem-limit 8Gi --sm 25% --priority 10 --resolver wait -- python3 serve.py
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/options.h"
#include "src/printable.h"
#include "tools/run_plan.h"

namespace {

std::string ExecutableDir() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return ".";
  std::string exe(path, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

int Run(int argc, char** argv) {
  namespace run = gpushare::run;
  const run::Plan plan = run::ParseArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (plan.help) {
    std::fputs(run::Usage().c_str(), stdout);
    return 0;
  }
  for (const std::string& error : plan.errors) std::fprintf(stderr, "gpushare-run: %s\n", error.c_str());
  if (!plan.errors.empty()) return 2;

  std::string error;
  const std::string library = run::FindLibrary(ExecutableDir(), plan.library, &error);
  if (library.empty()) {
    std::fprintf(stderr, "gpushare-run: %s\n", error.c_str());
    return 2;
  }
  for (const auto& [name, value] : plan.env) setenv(name.c_str(), value.c_str(), 1);
  const std::string preload = run::PrependPreload(std::getenv("LD_PRELOAD"), library);
  setenv("LD_PRELOAD", preload.c_str(), 1);

  // The whole configuration as the library will read it: flags and inherited variables alike.
  const gpushare::Options options = gpushare::ParseOptions([](const char* name) { return std::getenv(name); });
  for (const std::string& e : options.errors) std::fprintf(stderr, "gpushare-run: %s\n", e.c_str());
  if (!options.errors.empty()) return 2;
  for (const std::string& note : options.notes) std::fprintf(stderr, "gpushare-run: note: %s\n", note.c_str());

  if (plan.print_env) {
    for (const auto& [name, value] : plan.env) std::printf("%s=%s\n", name.c_str(), value.c_str());
    std::printf("LD_PRELOAD=%s\n", preload.c_str());
    return 0;
  }
  std::vector<char*> args;
  for (const std::string& a : plan.command) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  const int err = errno;
  std::fprintf(stderr, "gpushare-run: cannot run '%s': %s\n", gpushare::Printable(args[0]).c_str(), std::strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpushare-run: %s\n", e.what());
    return 2;
  }
}
