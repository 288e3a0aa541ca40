// Enforcement as Prometheus and tunnelctl see it, natively on a host without usable BPF-LSM:
// `tunnelguard run --mode audit` falls back to the observe mechanism (syscall exit
// tracepoints), counts would_deny exactly, streams the events, and says it cannot deny.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "prometheus.h"
#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using testing::HttpGet;
using testing::ReadFile;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestCgroup;
using testing::WaitFor;

constexpr int kAttempts = 1000;

// Waits up to 5 s for /metrics to count exactly `n` would_deny AF_UNIX sockets; the last body
// read is left in *body.
bool MetricsShowUnixWouldDeny(int metrics_port, int n, std::string* body) {
  const std::string series =
      "tunnelguard_policy_decisions_total{policy=\"address_families\",action=\"would_deny\","
      "detail=\"unix\"} " +
      std::to_string(n);
  return WaitFor(
      [&] {
        *body = HttpGet(metrics_port, "/metrics").value_or("");
        return body->find(series) != std::string::npos;
      },
      milliseconds(5000));
}

TEST(AuditOnThisHost, DenialsCountedExactlyThroughPrometheusAndStreamedAsEvents) {
  TG_REQUIRE_ROOT();
  TG_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "needs Debian's python3 (install-deps)");
  TempDir dir;
  TestCgroup cg("tg-audit-test");
  ASSERT_TRUE(cg.ok());
  testing::TestAgent agent({.dir = dir.path(),
                            .args = {"--cgroup", cg.path(), "--mode", "audit", "--wx-memory", "off",
                                     "--upstream", "web=127.0.0.1:1"}});
  const int metrics_port = agent.WaitForMetrics();
  ASSERT_GT(metrics_port, 0) << agent.log();
  const std::string socket = agent.socket();
  const std::string ctl = std::string(TUNNELCTL_BINARY) + " --socket " + socket + " ";
  auto log = [&] { return agent.log(); };
  std::string status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = RunCommand(ctl + "status --json").second;
        return status.find("\"active\": true") != std::string::npos;
      },
      milliseconds(20000)))
      << status << log();
  const auto st = nlohmann::json::parse(status);
  EXPECT_EQ(st["policies"][0]["mechanism"], "observe") << status;
  EXPECT_EQ(st["policies"][0]["enforced"], false) << "observe cannot deny";

  // A reader of the event stream, open before the attempts.
  int markers = 0;
  auto events = testing::StartEventReader(
      {TUNNELCTL_BINARY, "--socket", socket, "events", "--follow", "--policy", "address_families"},
      dir.path() + "/events.txt", cg.path(), &markers);
  ASSERT_TRUE(events.has_value()) << "no event reached tunnelctl events --follow\n" << log();

  // kAttempts AF_UNIX sockets from a process in the cgroup: allowed (audit), each counted.
  auto py = Subprocess::Start({"/usr/bin/python3", "-c",
                               "import socket\nfor _ in range(" + std::to_string(kAttempts) +
                                   "): socket.socket(socket.AF_UNIX).close()"},
                              {{}, dir.path() + "/py.log", cg.path()});
  ASSERT_EQ(py.Wait(milliseconds(30000)), 0);

  std::string body;
  EXPECT_TRUE(MetricsShowUnixWouldDeny(metrics_port, kAttempts + markers, &body)) << body;
  EXPECT_NE(body.find("tunnelguard_policy_enforced{policy=\"address_families\"} 0"),
            std::string::npos);
  EXPECT_NE(body.find("tunnelguard_policy_info{policy=\"address_families\",mode=\"audit\","
                      "mechanism=\"observe\"} 1"),
            std::string::npos)
      << body;

  // The same count through a real Prometheus.
  testing::TestPrometheus prom(dir.path(), metrics_port);
  ASSERT_TRUE(prom.ok()) << ReadFile(dir.path() + "/prometheus.log");
  const std::string promql =
      "sum(tunnelguard_policy_decisions_total{policy=\"address_families\","
      "action=\"would_deny\"})";
  std::string answer;
  EXPECT_TRUE(WaitFor(
      [&] {
        answer = prom.Query(promql);
        return answer.find("\"" + std::to_string(kAttempts + markers) + "\"]") != std::string::npos;
      },
      milliseconds(30000)))
      << answer;

  // Every attempt also reached the event stream (or is counted as dropped), with the process.
  events->Signal(SIGTERM);
  events->Wait(milliseconds(5000));
  const std::string text = ReadFile(dir.path() + "/events.txt");
  EXPECT_NE(text.find("would_deny unix"), std::string::npos) << text;
  EXPECT_NE(text.find("(python3)"), std::string::npos) << text;
}

// Pins removed under a running agent (`tunnelguard detach`, or bpffs cleared by hand) take the
// links with them: the agent notices, says so, and attaches again; counting resumes.
TEST(AuditOnThisHost, PinsRemovedUnderTheAgentAreAttachedAgain) {
  TG_REQUIRE_ROOT();
  TG_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "needs Debian's python3 (install-deps)");
  TempDir dir;
  TestCgroup cg("tg-audit-repin");
  ASSERT_TRUE(cg.ok());
  // Pins of its own: a detach of the shared default directory must not be ours to make.
  testing::TestAgent agent({.dir = dir.path(),
                            .args = {"--cgroup", cg.path(), "--mode", "audit", "--wx-memory", "off",
                                     "--upstream", "web=127.0.0.1:1"},
                            .api = false,
                            .pins = "tg-audit-repin"});
  const std::string bpffs = agent.bpffs_dir();
  const int metrics_port = agent.WaitForMetrics();
  ASSERT_GT(metrics_port, 0) << agent.log();
  auto log = [&] { return agent.log(); };
  const std::string info = "tunnelguard_policy_info{policy=\"address_families\"";
  auto attached = [&] {
    return HttpGet(metrics_port, "/metrics").value_or("").find(info) != std::string::npos;
  };
  ASSERT_TRUE(WaitFor(attached, milliseconds(20000))) << log();

  const auto [rc, out] =
      RunCommand(std::string(TG_BINARY) + " detach --all --bpffs-dir " + bpffs + " 2>&1");
  ASSERT_EQ(rc, 0) << out;
  // The re-attach is the first attach's work again (probe, load, pin, canary): the same bound.
  EXPECT_TRUE(
      WaitFor([&] { return log().find("were removed while the agent runs") != std::string::npos; },
              milliseconds(20000)))
      << log();
  EXPECT_TRUE(WaitFor(attached, milliseconds(20000))) << log();

  // Counting again: attempts after the re-attach are seen.
  auto py = Subprocess::Start({"/usr/bin/python3", "-c",
                               "import socket\nfor _ in range(10): socket.socket(socket.AF_UNIX)"},
                              {{}, dir.path() + "/py.log", cg.path()});
  ASSERT_EQ(py.Wait(milliseconds(30000)), 0);
  std::string body;
  EXPECT_TRUE(MetricsShowUnixWouldDeny(metrics_port, 10, &body)) << body << log();
}

}  // namespace
}  // namespace tg
