// SPDX-License-Identifier: Apache-2.0
// The environment of a client run under the library against the fake driver, shared by the
// end-to-end tests: a fresh ledger directory per test process, so tests never see each other.
#pragma once
#include <stdlib.h>

#include <string>
#include <vector>

namespace e2e {

inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/gpushare-e2e-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  return dir;
}

// A clean slate first; the test's own variables, after it, win.
inline std::vector<std::string> PreloadEnv(std::vector<std::string> env) {
  env.insert(env.begin(), {"LD_PRELOAD=" GS_PRELOAD_PATH, "LD_LIBRARY_PATH=" GS_FAKE_DIR,
                           "GPUSHARE_FAKE_DEVICES=16Gi,8Gi", "GPUSHARE_LEDGER_DIR=" + ScratchDir() + "/ledger",
                           "GPUSHARE_FAKE_STATE_DIR=" + ScratchDir(), "unset:GPUSHARE_MEM_LIMIT",
                           "unset:GPUSHARE_MEM_REQUEST", "unset:GPUSHARE_TENANT"});
  return env;
}

}  // namespace e2e
