#include "test_agent.h"

#include <unistd.h>

#include <csignal>
#include <string_view>

namespace tg::testing {
namespace {

std::vector<std::string> AgentArgv(const TestAgent::Options& o, const std::string& socket,
                                   const std::string& bpffs_dir) {
  std::vector<std::string> argv = {TG_BINARY, "run", "--grpc-socket", o.api ? socket : ""};
  if (o.metrics) argv.insert(argv.end(), {"--metrics-listen", "127.0.0.1:0"});
  argv.insert(argv.end(), o.args.begin(), o.args.end());
  if (!bpffs_dir.empty()) argv.insert(argv.end(), {"--bpffs-dir", bpffs_dir, "--detach-on-exit"});
  return argv;
}

// The port of the last "serving metrics on http://ADDR:PORT/metrics" line, or 0.
int MetricsPortIn(const std::string& log) {
  constexpr std::string_view kLine = "serving metrics on http://";
  const auto at = log.rfind(kLine);
  if (at == std::string::npos) return 0;
  const auto end = log.find("/metrics", at + kLine.size());
  const auto colon = log.rfind(':', end);
  if (end == std::string::npos || colon == std::string::npos || colon < at) return 0;
  return std::atoi(log.substr(colon + 1, end - colon - 1).c_str());
}

}  // namespace

TestAgent::TestAgent(Options options)
    : socket_(options.socket.empty() ? options.dir + "/tg.sock" : options.socket),
      log_(options.dir + "/agent.log"),
      bpffs_dir_(options.pins.empty()
                     ? ""
                     : "/sys/fs/bpf/" + options.pins + "-" + std::to_string(::getpid())),
      process_(
          Subprocess::Start(AgentArgv(options, socket_, bpffs_dir_), {options.env, log_, ""})) {}

TestAgent::~TestAgent() {
  if (bpffs_dir_.empty()) return;
  process_.Signal(SIGTERM);  // --detach-on-exit removes its pins
  process_.Wait(std::chrono::milliseconds(10000));
  RunCommand(std::string(TG_BINARY) + " detach --all --bpffs-dir " + bpffs_dir_);
  ::rmdir(bpffs_dir_.c_str());
}

int TestAgent::WaitForMetrics(std::chrono::milliseconds timeout) {
  if (metrics_port_ > 0) return metrics_port_;
  WaitFor([&] { return (metrics_port_ = MetricsPortIn(log())) > 0 || !process_.Running(); },
          timeout);
  return metrics_port_;
}

std::optional<Subprocess> StartEventReader(const std::vector<std::string>& argv,
                                           const std::string& out, const std::string& cgroup,
                                           int* markers) {
  static constexpr char kMarkerAttempt[] =
      "open('/proc/self/comm', 'w').write('tg-sub-marker')\n"
      "import socket\nsocket.socket(socket.AF_UNIX).close()";
  auto reader = Subprocess::Start(argv, {{}, out, ""});
  *markers = 0;
  const bool open = WaitFor(
      [&] {
        ++*markers;
        auto m = Subprocess::Start({"/usr/bin/python3", "-c", kMarkerAttempt},
                                   {{}, out + ".marker.log", cgroup});
        return m.Wait(std::chrono::milliseconds(10000)) == 0 &&
               WaitFor([&] { return ReadFile(out).find("tg-sub-marker") != std::string::npos; },
                       std::chrono::milliseconds(500));
      },
      std::chrono::milliseconds(20000));
  if (!open) return std::nullopt;
  return reader;
}

}  // namespace tg::testing
