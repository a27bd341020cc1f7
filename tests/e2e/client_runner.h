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
ClientResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        int timeout_s = 60);

}  // namespace e2e
