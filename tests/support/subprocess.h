// Real processes for tests: start a program (the agent, nginx, Prometheus), talk to it, and be
// sure it is gone when the test ends, pass or fail.
#ifndef TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_H_
#define TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tg::testing {

// Every child a test starts carries TG_TEST_OWNER=<pid>:<start time> of its test binary (see
// tests/support/cleanup-leftovers.sh); TestOwnerMark() is this process's mark.
inline constexpr char kTestOwnerEnv[] = "TG_TEST_OWNER";
std::string TestOwnerMark();

class Subprocess {
 public:
  struct Options {
    std::vector<std::pair<std::string, std::string>> env;  // added to the environment
    std::string output_path;                               // stdout+stderr go here ("" = inherit)
    std::string cgroup_dir;  // move the child into this cgroup before exec ("" = stay)
  };
  // Starts argv[0] (searched in PATH) as the leader of its own process group; it is SIGKILLed
  // when the test binary dies, however it dies. Aborts the test binary on fork failure only.
  static Subprocess Start(const std::vector<std::string>& argv, const Options& options);
  static Subprocess Start(const std::vector<std::string>& argv) { return Start(argv, {}); }

  Subprocess(Subprocess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), exit_code_(other.exit_code_) {}
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  ~Subprocess();  // SIGKILLs (with its process group) and reaps a child still running

  pid_t pid() const { return pid_; }
  void Signal(int sig) const;
  // The exit code (128+signal when killed), or nullopt on timeout (or when never started).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // False once the child has exited (then reaped; Wait() still returns its exit code).
  bool Running();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;  // set when Running() reaped the child
};

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// /proc/PID/status as key -> value ("CapEff" -> "0000000000000000"); empty if PID is gone.
std::map<std::string, std::string> ProcStatus(pid_t pid);

// VmRSS of a process in KiB (-1 when it is gone).
long RssKib(pid_t pid);

// Runs a command to completion and returns (exit code, stdout+stderr).
std::pair<int, std::string> RunCommand(const std::string& shell_command);

// Whether process `pid` holds a TCP socket listening on `port` (its own fds against
// /proc/net/tcp{,6}): "our server is up", where a connect could reach any process.
bool ListensOn(pid_t pid, int port);

// For servers that cannot be told port 0 (nginx, Prometheus): starts `start(ports)` with
// `count` ports that were free a moment ago, and waits until that process listens on all of
// them. If it exits instead and its `log` says a port was taken in between ("Address already
// in use"), tries fresh ports (up to 5 times). nullopt otherwise (the log says why).
using ServerStarter = std::function<Subprocess(const std::vector<int>& ports)>;
std::optional<Subprocess> StartOnFreePorts(size_t count, const ServerStarter& start,
                                           const std::string& log, std::vector<int>* ports);

// GET http://127.0.0.1:port/path (HTTP/1.0). Returns the body, or nullopt on any failure.
std::optional<std::string> HttpGet(int port, const std::string& path);

// Polls `pred` every 50 ms until it is true or `timeout` passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout);

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A fresh child of the cgroup2 mount, removed on destruction (after killing what is in it).
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& name_prefix);
  ~TestCgroup();
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  const std::string& path() const { return path_; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

}  // namespace tg::testing

#include "subprocess_inl.h"

#endif  // TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_H_
