// Several tunnels, one agent: `tunnelguard run --cgroup A --cgroup B` follows,
// measures and audits each tunnel on its own. On this host (no BPF-LSM) the policies run in
// audit mode through observe; latency needs only cgroup programs. Each tunnel's counts are
// exact and its own (metrics with a unit label, through a real Prometheus too), tunnelctl and
// `tunnelguard status` name both, and re-creating one tunnel's cgroup (its restart) leaves the
// other's programs and counters alone.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "latency_fixtures.h"
#include "prometheus.h"
#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using testing::HttpGet;
using testing::RunClient;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestAgent;
using testing::TestCgroup;
using testing::WaitFor;

class TunnelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    TG_REQUIRE(::access("/usr/bin/python3", X_OK) == 0, "needs Debian's python3 (install-deps)");
    a_ = std::make_unique<TestCgroup>("tg-tunnel-a");
    b_ = std::make_unique<TestCgroup>("tg-tunnel-b");
    ASSERT_TRUE(a_->ok() && b_->ok());
    auto server =
        testing::StartDelayServer("127.0.0.1", &upstream_port_, "2ms", dir_.path() + "/server.log");
    ASSERT_TRUE(server.has_value());
    server_.emplace(std::move(*server));
    upstream_ = "127.0.0.1:" + std::to_string(upstream_port_);
    agent_.emplace(TestAgent::Options{
        .dir = dir_.path(),
        .args = {"--cgroup", a_->path(), "--cgroup", b_->path(), "--mode", "audit", "--wx-memory",
                 "off", "--upstream", "web=" + upstream_},
        .pins = "tg-tunnels"});
    ASSERT_GT(metrics_port_ = agent_->WaitForMetrics(), 0) << Log();
    ASSERT_TRUE(
        WaitFor([&] { return Attached(a_->path()) && Attached(b_->path()); }, milliseconds(30000)))
        << Log();
  }
  void TearDown() override { agent_.reset(); }  // stops it and detaches its pins
  // The agent's log says it attached enforcement (observe) to that tunnel's cgroup.
  bool Attached(const std::string& path) const {
    return Log().find("address_families: attached to " + path) != std::string::npos;
  }
  std::string Ctl(const std::string& args) const {
    return std::string(TUNNELCTL_BINARY) + " --socket " + agent_->socket() + " " + args;
  }
  std::string Log() const { return agent_ ? agent_->log() : ""; }
  // `requests` keep-alive requests from inside `cgroup`.
  void Requests(const std::string& cgroup, int requests) {
    std::string out;
    auto client = RunClient({"--port", std::to_string(upstream_port_), "--requests",
                             std::to_string(requests), "--connections", "2"},
                            cgroup, dir_.path(), &out);
    ASSERT_TRUE(client.has_value()) << out;
    ASSERT_EQ((*client)["requests"], requests);
  }
  // `n` AF_UNIX sockets from inside `cgroup`: each a would_deny of its tunnel only.
  void UnixSockets(const std::string& cgroup, int n) {
    auto py = Subprocess::Start({"/usr/bin/python3", "-c",
                                 "import socket\nfor _ in range(" + std::to_string(n) +
                                     "): socket.socket(socket.AF_UNIX).close()"},
                                {{}, dir_.path() + "/py.log", cgroup});
    ASSERT_EQ(py.Wait(milliseconds(30000)), 0);
  }
  // Waits until /metrics holds every one of `series` (exact lines, value included).
  bool MetricsHold(const std::vector<std::string>& series, std::string* body) const {
    return WaitFor(
        [&] {
          *body = HttpGet(metrics_port_, "/metrics").value_or("");
          for (const auto& s : series) {
            if (body->find(s + "\n") == std::string::npos) return false;
          }
          return true;
        },
        milliseconds(10000));
  }
  std::string RequestsSeries(const TestCgroup& cg, int n) const {
    return "tunnelguard_upstream_requests_total{unit=\"" + cg.path() +
           "\",entrypoint=\"web\",upstream=\"" + upstream_ + "\"} " + std::to_string(n);
  }
  static std::string WouldDenySeries(const TestCgroup& cg, int n) {
    return "tunnelguard_policy_decisions_total{unit=\"" + cg.path() +
           "\",policy=\"address_families\",action=\"would_deny\",detail=\"unix\"} " +
           std::to_string(n);
  }

  TempDir dir_;
  std::unique_ptr<TestCgroup> a_, b_;
  int upstream_port_ = 0, metrics_port_ = 0;
  std::string upstream_;
  std::optional<Subprocess> server_;
  std::optional<TestAgent> agent_;
};

TEST_F(TunnelsTest, EachTunnelCountedOnItsOwnInMetricsTunnelctlAndStatus) {
  Requests(a_->path(), 30);
  Requests(b_->path(), 50);
  UnixSockets(a_->path(), 3);
  UnixSockets(b_->path(), 5);

  std::string body;
  EXPECT_TRUE(MetricsHold({RequestsSeries(*a_, 30), RequestsSeries(*b_, 50),
                           WouldDenySeries(*a_, 3), WouldDenySeries(*b_, 5)},
                          &body))
      << body << Log();
  // One block per family: the text format allows no second TYPE line for a name.
  const std::string type = "# TYPE tunnelguard_upstream_requests_total counter";
  EXPECT_EQ(body.find(type), body.rfind(type)) << body;

  // A real Prometheus parses it and tells the tunnels apart.
  testing::TestPrometheus prom(dir_.path(), metrics_port_);
  ASSERT_TRUE(prom.ok()) << testing::ReadFile(dir_.path() + "/prometheus.log");
  std::string answer;
  EXPECT_TRUE(WaitFor(
      [&] {
        answer = prom.Query("sum by (unit) (tunnelguard_upstream_requests_total)");
        return answer.find(a_->path() + "\"},\"value\":[") != std::string::npos &&
               answer.find("\"30\"]") != std::string::npos &&
               answer.find("\"50\"]") != std::string::npos;
      },
      milliseconds(30000)))
      << answer;

  // tunnelctl: each tunnel by name, with its own numbers.
  auto [jrc, json_text] = RunCommand(Ctl("stats --json"));
  ASSERT_EQ(jrc, 0) << json_text;
  const auto j = nlohmann::json::parse(json_text);
  ASSERT_EQ(j["tunnels"].size(), 2u) << json_text;
  EXPECT_EQ(j["tunnels"][0]["target"], a_->path());
  EXPECT_EQ(j["tunnels"][0]["upstreams"][0]["requests"], 30);
  EXPECT_EQ(j["tunnels"][1]["target"], b_->path());
  EXPECT_EQ(j["tunnels"][1]["upstreams"][0]["requests"], 50);
  EXPECT_EQ(j["tunnels"][1]["policies"][0]["decisions"]["would_deny"], 5) << json_text;
  EXPECT_EQ(j["upstreams"][0]["requests"], 30) << "top level: the first tunnel, as before";
  auto [src, stats] = RunCommand(Ctl("stats"));
  ASSERT_EQ(src, 0) << stats;
  EXPECT_NE(stats.find("== tunnel " + a_->path() + " =="), std::string::npos) << stats;
  EXPECT_NE(stats.find("== tunnel " + b_->path() + " =="), std::string::npos) << stats;
  auto [trc, status] = RunCommand(Ctl("status"));
  ASSERT_EQ(trc, 0) << status;
  for (const auto* cg : {a_.get(), b_.get()}) {
    const std::string relative = cg->path().substr(cg->path().rfind('/'));
    EXPECT_NE(status.find("target   " + cg->path() + ": cgroup " + relative), std::string::npos)
        << status;
  }
  auto [grc, pinned] =
      RunCommand(std::string(TG_BINARY) + " status --bpffs-dir " + agent_->bpffs_dir());
  ASSERT_EQ(grc, 0) << pinned;
  for (const auto* cg : {a_.get(), b_.get()}) {
    EXPECT_NE(pinned.find(cg->path().substr(cg->path().rfind('/'))), std::string::npos) << pinned;
  }
  std::cout << "tunnelctl status:\n" << status << "\ntunnelctl stats:\n" << stats;
}

// Each event names its tunnel (tunnelctl events, its --unit filter, the agent's denial lines):
// with several tunnels a cgroup id alone does not say whose denial it was.
TEST_F(TunnelsTest, EventsNameTheirTunnelAndFilterByIt) {
  const std::vector<std::string> follow = {TUNNELCTL_BINARY, "--socket", agent_->socket(),
                                           "events",         "--follow", "--json"};
  int all_markers = 0, b_markers = 0;
  auto all =
      testing::StartEventReader(follow, dir_.path() + "/all.jsonl", b_->path(), &all_markers);
  ASSERT_TRUE(all.has_value()) << Log();
  std::vector<std::string> only_b = follow;
  only_b.insert(only_b.end(), {"--unit", b_->path()});
  auto b = testing::StartEventReader(only_b, dir_.path() + "/b.jsonl", b_->path(), &b_markers);
  ASSERT_TRUE(b.has_value()) << Log();
  UnixSockets(a_->path(), 3);
  UnixSockets(b_->path(), 5);

  // Every event of both tunnels reached the unfiltered reader; the hub offered each one to the
  // filtered reader at the same time, so what it holds then is final.
  auto targets = [](const std::string& file) {
    std::map<std::string, int> n;
    std::istringstream in(testing::ReadFile(file));
    for (std::string line; std::getline(in, line);) {
      const auto e = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!e.is_discarded() && e.value("comm", "") != "tg-sub-marker") ++n[e.value("target", "")];
    }
    return n;
  };
  const std::map<std::string, int> want_all = {{a_->path(), 3}, {b_->path(), 5}};
  EXPECT_TRUE(
      WaitFor([&] { return targets(dir_.path() + "/all.jsonl") == want_all; }, milliseconds(20000)))
      << testing::ReadFile(dir_.path() + "/all.jsonl");
  const std::map<std::string, int> want_b = {{b_->path(), 5}};
  EXPECT_TRUE(
      WaitFor([&] { return targets(dir_.path() + "/b.jsonl") == want_b; }, milliseconds(20000)))
      << testing::ReadFile(dir_.path() + "/b.jsonl");
  for (auto* reader : {&*all, &*b}) {
    reader->Signal(SIGTERM);
    reader->Wait(milliseconds(5000));
  }
  // The journal's line names the tunnel too.
  EXPECT_TRUE(
      WaitFor([&] { return Log().find("would deny unix socket for pid") != std::string::npos; },
              milliseconds(10000)));
  for (const auto* cg : {a_.get(), b_.get()}) {
    EXPECT_NE(Log().find("uid 0 in " + cg->path() + " (cgroup "), std::string::npos) << Log();
  }
}

// Tunnel A restarts (its cgroup removed and made again, as systemd does): the agent follows A
// to the new cgroup, and B's programs keep counting without a gap or a reset.
TEST_F(TunnelsTest, OneTunnelsRestartLeavesTheOtherAlone) {
  Requests(a_->path(), 10);
  Requests(b_->path(), 20);
  std::string body;
  ASSERT_TRUE(MetricsHold({RequestsSeries(*a_, 10), RequestsSeries(*b_, 20)}, &body)) << body;

  ASSERT_EQ(::rmdir(a_->path().c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir(a_->path().c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_TRUE(WaitFor(
      [&] { return Log().find("target " + a_->path() + " re-created") != std::string::npos; },
      milliseconds(10000)))
      << Log();
  Requests(b_->path(), 5);  // B while A re-attaches
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto at = Log().find("target " + a_->path() + " re-created");
        return Log().find("address_families: attached to " + a_->path(), at) != std::string::npos;
      },
      milliseconds(20000)))
      << Log();
  Requests(a_->path(), 7);
  UnixSockets(a_->path(), 2);
  EXPECT_TRUE(MetricsHold({RequestsSeries(*a_, 17), RequestsSeries(*b_, 25),
                           WouldDenySeries(*a_, 2), WouldDenySeries(*b_, 0)},
                          &body))
      << body << Log();
  EXPECT_EQ(Log().find("target " + b_->path() + " re-created"), std::string::npos) << Log();
  EXPECT_EQ(Log().find("target " + b_->path() + " is gone"), std::string::npos) << Log();
}

// The config file's list (`cgroup = A, B`) is two tunnels, each waited for on its own; a tunnel
// named twice is refused in one line that says how to fix it.
TEST(TunnelsConfig, AListInTheConfigFileAndATunnelNamedTwice) {
  TG_REQUIRE_ROOT();
  TempDir dir;
  const std::string a = "/tg-tunnels-absent-a", b = "/tg-tunnels-absent-b",
                    c = "/tg-tunnels-absent-c";
  const std::string config = dir.path() + "/tunnelguard.conf";
  // A list two ways: comma-separated, and one line per tunnel (as an admin adds a tunnel).
  std::ofstream(config) << "cgroup = " << a << ", " << b << "\nupstream = web=127.0.0.1:1\n"
                        << "cgroup = " << c << "\n";
  TestAgent agent(
      {.dir = dir.path(), .args = {"--config", config, "--families", "off", "--wx-memory", "off"}});
  ASSERT_GT(agent.WaitForMetrics(), 0) << agent.log();
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = agent.log();
        return log.find("waiting for target " + a + ":") != std::string::npos &&
               log.find("waiting for target " + b + ":") != std::string::npos &&
               log.find("waiting for target " + c + ":") != std::string::npos;
      },
      milliseconds(10000)))
      << agent.log();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(milliseconds(10000)), 0) << agent.log();

  const auto [rc, out] = RunCommand(std::string(TG_BINARY) +
                                    " run --unit x.service,x.service --metrics-listen "
                                    "127.0.0.1:0 2>&1");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_EQ(out, "tunnelguard: tunnel 'x.service' is given twice; name each tunnel once\n");

  // A key of one value, twice: one line naming both lines, nothing started.
  const std::string twice = dir.path() + "/twice.conf";
  std::ofstream(twice) << "unit = x.service\nmetrics-listen = 127.0.0.1:0\n# again\n"
                       << "metrics-listen = 127.0.0.1:1\n";
  const auto [trc, tout] = RunCommand(std::string(TG_BINARY) + " run --config " + twice + " 2>&1");
  EXPECT_EQ(trc, 2) << tout;
  EXPECT_EQ(tout, "tunnelguard: " + twice +
                      ":4: 'metrics-listen' is set twice (first on line 2); keep one of the "
                      "lines\n");
}

}  // namespace
}  // namespace tg
