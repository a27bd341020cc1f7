// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/client_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace e2e {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

long long ClientResult::Int(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? -1 : std::stoll(it->second);
}

namespace {

void ExecChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               int out_fd, int err_fd, int timeout_s) {
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  for (const std::string& e : env) {
    if (e.rfind("unset:", 0) == 0) {
      unsetenv(e.substr(6).c_str());
    } else {
      const size_t eq = e.find('=');
      setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
    }
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  alarm(static_cast<unsigned>(timeout_s));  // a hung child dies of SIGALRM
  execve(args[0], args.data(), environ);
  _exit(127);
}

}  // namespace

Spawned SpawnProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  char out_tmpl[] = "/tmp/gs_e2e_outXXXXXX";
  char err_tmpl[] = "/tmp/gs_e2e_errXXXXXX";
  const int out_fd = mkstemp(out_tmpl);
  const int err_fd = mkstemp(err_tmpl);
  Spawned s;
  s.pid = fork();
  if (s.pid == 0) ExecChild(argv, env, out_fd, err_fd, 120);
  close(out_fd);
  close(err_fd);
  s.out_path = out_tmpl;
  s.err_path = err_tmpl;
  return s;
}

long long WaitForValue(const Spawned& s, const std::string& key, int timeout_s) {
  for (int i = 0; i < timeout_s * 100; ++i) {
    std::istringstream lines(ReadAll(s.out_path));
    std::string k, v;
    while (lines >> k && std::getline(lines, v))
      if (k == key) return std::stoll(v);
    usleep(10000);
  }
  return -1;
}

int WaitForExit(Spawned& s, int timeout_s) {
  for (int i = 0; i < timeout_s * 100; ++i) {
    int status = 0;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
      s.pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(10000);
  }
  return -1;
}

void KillProgram(Spawned& s) {
  if (s.pid > 0) {
    kill(s.pid, SIGKILL);
    waitpid(s.pid, nullptr, 0);
    s.pid = -1;
  }
  unlink(s.out_path.c_str());
  unlink(s.err_path.c_str());
}

ClientResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        int timeout_s) {
  char out_tmpl[] = "/tmp/gs_e2e_outXXXXXX";
  char err_tmpl[] = "/tmp/gs_e2e_errXXXXXX";
  const int out_fd = mkstemp(out_tmpl);
  const int err_fd = mkstemp(err_tmpl);
  const pid_t pid = fork();
  if (pid == 0) ExecChild(argv, env, out_fd, err_fd, timeout_s);
  int status = 0;
  waitpid(pid, &status, 0);
  close(out_fd);
  close(err_fd);
  ClientResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadAll(out_tmpl);
  r.err = ReadAll(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  std::istringstream lines(r.out);
  std::string key, value;
  while (lines >> key && std::getline(lines, value)) {
    r.values[key] = value.empty() ? value : value.substr(1);
  }
  return r;
}

}  // namespace e2e
