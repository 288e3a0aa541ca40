// Runs the real `tunnelguard` binary in a child process and captures what a user would see.
// Optional hooks run in the child before exec (drop privileges, unshare a mount namespace),
// so every bad-input path is exercised for real, not simulated.
#ifndef TUNNELGUARD_TESTS_CLI_RUNNER_H_
#define TUNNELGUARD_TESTS_CLI_RUNNER_H_

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace tg::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// `before_exec` runs in the child; returning false makes the child exit 127.
inline CliResult RunCli(const std::string& binary, const std::vector<std::string>& args,
                        const std::function<bool()>& before_exec = {}) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (before_exec && !before_exec()) ::_exit(127);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  CliResult r;
  r.out = ReadAll(out[0]);  // small outputs: reading one pipe then the other cannot block
  r.err = ReadAll(err[0]);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_CLI_RUNNER_H_
