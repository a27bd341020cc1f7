// SPDX-License-Identifier: Apache-2.0
// Runs a program in a child process with extra environment, and parses the "key value" lines
// it prints.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace e2e {

struct ClientResult {
  int exit_code = -1;
  std::map<std::string, std::string> values;
  std::string out;
  std::string err;
  long long Int(const std::string& key) const;  // -1 when absent
};

// env entries "NAME=value" are added to (and override) the test's environment; "NAME=" with
// `unset:` prefix ("unset:NAME") removes one.
// A program left running: its stdout goes to a file read by WaitForValue.
struct Spawned {
  int pid = -1;
  std::string out_path;
  std::string err_path;
};
Spawned SpawnProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env);
// Waits (up to timeout_s) until the program printed `key`; returns its value or -1.
long long WaitForValue(const Spawned& s, const std::string& key, int timeout_s = 20);
// Waits up to timeout_s for it to end; its exit code, 128 + signal, or -1 if still running.
int WaitForExit(Spawned& s, int timeout_s);
// SIGKILLs it and reaps it.
void KillProgram(Spawned& s);

ClientResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        int timeout_s = 60);

}  // namespace e2e
