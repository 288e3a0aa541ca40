// `tunnelguard run` as the e2e tests start it — written once here instead of in every test:
// the API socket in the test's temp dir, /metrics on a port the agent picks itself
// (127.0.0.1:0; the port it got is read from its own "serving metrics on" line, so no other
// process can take it in between), its output in DIR/agent.log; optionally pins of its own
// (Options::pins), detached when the TestAgent goes, however the test ended.
#ifndef TUNNELGUARD_TESTS_SUPPORT_TEST_AGENT_H_
#define TUNNELGUARD_TESTS_SUPPORT_TEST_AGENT_H_

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"

namespace tg::testing {

class TestAgent {
 public:
  struct Options {
    std::string dir{};                // agent.log and tg.sock go here (the test's TempDir)
    std::vector<std::string> args{};  // after "run": --cgroup, --upstream, policy flags ...
    std::vector<std::pair<std::string, std::string>> env{};
    bool metrics = true;   // add --metrics-listen 127.0.0.1:0 (false: args say where)
    bool api = true;       // false: --grpc-socket "" (no API socket)
    std::string socket{};  // the API socket ("" = DIR/tg.sock)
    // "tg-NAME": pins of its own in /sys/fs/bpf/tg-NAME-<pid> (--bpffs-dir, --detach-on-exit),
    // not the default directory every agent and test on the host shares (another's
    // `detach --all` there once took a test's policies). "" = the agent's default.
    std::string pins{};
  };
  explicit TestAgent(Options options);
  // With Options::pins: stops the agent (SIGTERM: --detach-on-exit removes its pins), then
  // detaches whatever is left there and removes the directory.
  ~TestAgent();
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  // Waits for the agent's own "serving metrics on http://ADDR:PORT/metrics" line and returns
  // the port (also kept for metrics_port(); at once when known); 0 if the agent exited or
  // never said it.
  int WaitForMetrics(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  int metrics_port() const { return metrics_port_; }
  // "127.0.0.1:PORT", Prometheus's target and instance label.
  std::string metrics_address() const { return "127.0.0.1:" + std::to_string(metrics_port_); }

  const std::string& socket() const { return socket_; }
  // The --bpffs-dir of Options::pins ("" without).
  const std::string& bpffs_dir() const { return bpffs_dir_; }
  std::string log() const { return ReadFile(log_); }
  Subprocess& process() { return process_; }
  pid_t pid() const { return process_.pid(); }

 private:
  std::string socket_, log_, bpffs_dir_;
  int metrics_port_ = 0;
  Subprocess process_;
};

// Starts `argv`, a reader of the agent's event stream (`tunnelctl events --follow …`), with its
// output in `out`, then makes marker AF_UNIX attempts (comm "tg-sub-marker", one python3 each)
// in `cgroup` until one shows up in `out`: the stream is open then, with no sleep that a busy
// machine could outlast. *markers gets how many attempts that took (the agent counts each).
// nullopt when no marker arrived within 20 s.
std::optional<Subprocess> StartEventReader(const std::vector<std::string>& argv,
                                           const std::string& out, const std::string& cgroup,
                                           int* markers);

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_SUPPORT_TEST_AGENT_H_
