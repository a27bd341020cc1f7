// SPDX-License-Identifier: Apache-2.0
// Runs a shell command line (a tool of ours, with its arguments and redirections) and keeps what
// it printed and its exit status, for the tools' tests.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace gpushare::testing {

struct CommandOutput {
  int status = -1;  // the exit status; -1 when it could not run or did not exit
  std::string out;
};

inline CommandOutput RunCommand(const std::string& command) {
  CommandOutput run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) run.out.append(buf, n);
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace gpushare::testing
