// The whole measuring path under real traffic: a self-timing client in the tunnel's cgroup
// talks to a server that answers after a known delay; `tunnelguard run` measures it; a real
// Prometheus scrapes /metrics and tunnelctl asks over gRPC. Counts must be exact, quantiles
// near the known delay, and all faces must agree.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/latency/latency.h"
#include "agent/latency/upstreams.h"
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
using testing::StartDelayServer;
using testing::Subprocess;
using testing::TempDir;
using testing::TestAgent;
using testing::TestCgroup;
using testing::WaitFor;

class TrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    cg_ = std::make_unique<TestCgroup>("tg-traffic-test");
    ASSERT_TRUE(cg_->ok());
    upstream_port_ = 0;
    auto server =
        StartDelayServer("127.0.0.1", &upstream_port_, "10ms", dir_.path() + "/server.log");
    ASSERT_TRUE(server.has_value());
    server_.emplace(std::move(*server));
    agent_.emplace(TestAgent::Options{
        .dir = dir_.path(),
        .args = {"--cgroup", cg_->path(), "--upstream",
                 "web=127.0.0.1:" + std::to_string(upstream_port_), "--families", "off",
                 "--wx-memory", "off", "--bpf-stats", "--histogram-buckets-per-decade", "40"}});
    socket_ = agent_->socket();
    ASSERT_GT(metrics_port_ = agent_->WaitForMetrics(), 0) << AgentLog();
    ASSERT_TRUE(WaitFor(
        [&] {
          auto [rc, out] = RunCommand(Ctl("status --json"));
          return rc == 0 && out.find("\"target_present\": true") != std::string::npos;
        },
        milliseconds(15000)))
        << AgentLog();
  }
  std::string Ctl(const std::string& args) const {
    return std::string(TUNNELCTL_BINARY) + " --socket " + socket_ + " " + args;
  }
  std::string AgentLog() const { return testing::ReadFile(dir_.path() + "/agent.log"); }

  TempDir dir_;
  std::unique_ptr<TestCgroup> cg_;
  int upstream_port_ = 0, metrics_port_ = 0;
  std::string socket_;
  std::optional<Subprocess> server_;
  std::optional<TestAgent> agent_;
};

TEST_F(TrafficTest, PrometheusAndTunnelctlSeeExactCountsAndTheKnownDelay) {
  std::string out;
  auto client = RunClient(
      {"--port", std::to_string(upstream_port_), "--requests", "300", "--connections", "3"},
      cg_->path(), dir_.path(), &out);
  ASSERT_TRUE(client.has_value()) << out;
  ASSERT_EQ((*client)["requests"], 300);
  const double client_p50 = (*client)["request_seconds"]["p50"];

  // tunnelctl stats --json: the measure schema plus policies[], counts exact.
  auto [rc, json_text] = RunCommand(Ctl("stats --json"));
  ASSERT_EQ(rc, 0) << json_text;
  const auto j = nlohmann::json::parse(json_text);
  ASSERT_EQ(j["upstreams"].size(), 1u) << json_text;
  const auto& web = j["upstreams"][0];
  EXPECT_EQ(web["name"], "web");
  EXPECT_EQ(web["requests"], 300);
  EXPECT_EQ(web["connections"], 3);
  EXPECT_EQ(web["request_latency_seconds"]["count"], 300);
  for (const char* f : {"p50", "p90", "p99", "max"}) {
    EXPECT_TRUE(web["request_latency_seconds"].contains(f)) << f;
  }
  for (const char* f : {"address", "open_connections", "failures", "bytes", "retransmits",
                        "connect_latency_seconds"}) {
    EXPECT_TRUE(web.contains(f)) << f;
  }
  EXPECT_TRUE(j.contains("policies"));
  EXPECT_TRUE(testing::WithinAccuracy(web["request_latency_seconds"]["p50"], client_p50))
      << web["request_latency_seconds"]["p50"] << " vs client " << client_p50;

  // The table and the histogram drawing.
  auto [trc, table] = RunCommand(Ctl("stats --histogram"));
  ASSERT_EQ(trc, 0) << table;
  EXPECT_NE(table.find("web"), std::string::npos) << table;
  EXPECT_NE(table.find("entrypoint = web (300 requests)"), std::string::npos) << table;
  EXPECT_NE(table.find("8192 -> 16383"), std::string::npos) << table;  // 10 ms in usecs

  // Another loader's tg_* programs and maps on the same host (here: this test's own probe for
  // three upstreams) are not the agent's: its figures cover only what it holds.
  auto upstreams = ParseUpstreams("a=127.0.0.1:1,b=127.0.0.1:2,c=127.0.0.1:3");
  ASSERT_TRUE(upstreams.ok());
  auto foreign = LatencyProbe::Load(*upstreams);
  ASSERT_TRUE(foreign.ok()) << foreign.error().message;

  // /metrics passes promtool's linter with every series populated.
  auto body = HttpGet(metrics_port_, "/metrics");
  ASSERT_TRUE(body.has_value());
  std::ofstream(dir_.path() + "/metrics.txt") << *body;
  auto [prc, lint] = RunCommand("promtool check metrics < " + dir_.path() + "/metrics.txt");
  std::istringstream lines(lint);
  std::string ours;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("tunnelguard_") != std::string::npos) ours += line + "\n";
  }
  EXPECT_EQ(ours, "") << lint;
  // --histogram-buckets-per-decade 40: 272 bounds from 10 us to 60 s, and +Inf.
  size_t buckets = 0;
  for (size_t at = 0; (at = body->find("tunnelguard_upstream_request_duration_seconds_bucket{",
                                       at)) != std::string::npos;
       ++at) {
    ++buckets;
  }
  EXPECT_EQ(buckets, 273u);
  EXPECT_NE(body->find("tunnelguard_bpf_program_runs_total{program=\"tg_lat_egress\"}"),
            std::string::npos);
  EXPECT_NE(body->find("tunnelguard_bpf_map_max_entries{map=\"tg_lat_ctrs\"} 1\n"),
            std::string::npos)
      << "one upstream: one counter slot, whatever else is loaded on the host";

  // A real Prometheus: the request count equals what the client sent; the median is near the
  // known delay.
  testing::TestPrometheus prom(dir_.path(), metrics_port_);
  ASSERT_TRUE(prom.ok()) << testing::ReadFile(dir_.path() + "/prometheus.log");
  auto query = [&](const std::string& promql) { return prom.Query(promql); };
  std::string count;
  ASSERT_TRUE(WaitFor(
      [&] {
        count = query("sum(tunnelguard_upstream_requests_total{entrypoint=\"web\"})");
        return count.find("\"300\"]") != std::string::npos;
      },
      milliseconds(30000)))
      << count;
  const std::string median = query(
      "histogram_quantile(0.5, sum by (le) "
      "(tunnelguard_upstream_request_duration_seconds_bucket{entrypoint=\"web\"}))");
  // At 40 bounds per decade (each bucket 5.9 % wide), Prometheus's interpolated median is
  // within 3 % of the kernel's own, what tunnelctl printed above.
  const auto pos = median.find("\"value\":[");
  ASSERT_NE(pos, std::string::npos) << median;
  const auto quote = median.find(",\"", pos);
  const double value = std::stod(median.substr(quote + 2));
  const double kernel_p50 = web["request_latency_seconds"]["p50"];
  EXPECT_NEAR(value, kernel_p50, kernel_p50 * 0.03) << median;

  // A Prometheus with native histograms asks for the protobuf exposition: the agent's face
  // serves it, the histogram arrives as one native series (no _bucket series), its count is
  // exact and its quantiles are within 3 % of the kernel's at p50, p90 and p99.
  ::mkdir((dir_.path() + "/native").c_str(), 0755);
  testing::TestPrometheus native(dir_.path() + "/native", metrics_port_, {}, true);
  ASSERT_TRUE(native.ok()) << testing::ReadFile(dir_.path() + "/native/prometheus.log");
  const std::string histogram =
      "sum(tunnelguard_upstream_request_duration_seconds{entrypoint=\"web\"})";
  std::string native_count;
  ASSERT_TRUE(WaitFor(
      [&] {
        native_count = native.Query("histogram_count(" + histogram + ")");
        return native_count.find("\"300\"]") != std::string::npos;
      },
      milliseconds(30000)))
      << native_count << testing::ReadFile(dir_.path() + "/native/prometheus.log");
  EXPECT_NE(native.Query("count(tunnelguard_upstream_request_duration_seconds_bucket)")
                .find("\"result\":[]"),
            std::string::npos)
      << "native ingestion stores no classic buckets";
  EXPECT_NE(native.Query("tunnelguard_upstream_requests_total").find("\"300\"]"), std::string::npos)
      << "counters come through the protobuf page too";
  for (const char* q : {"p50", "p90", "p99"}) {
    const std::string promql =
        std::string("histogram_quantile(0.") + (q + 1) + ", " + histogram + ")";
    const std::string answer = native.Query(promql);
    const auto at = answer.find("\"value\":[");
    ASSERT_NE(at, std::string::npos) << promql << ": " << answer;
    const double v = std::stod(answer.substr(answer.find(",\"", at) + 2));
    const double kernel = web["request_latency_seconds"][q];
    std::printf("native %s: PromQL %.6f s, kernel %.6f s (%+.2f %%)\n", q, v, kernel,
                (v / kernel - 1) * 100);
    EXPECT_NEAR(v, kernel, kernel * 0.03) << promql << ": " << answer;
  }
}

TEST_F(TrafficTest, SurvivesTheTunnelCgroupComingBack) {
  ASSERT_EQ(::rmdir(cg_->path().c_str()), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand(Ctl("status --json")).second.find("\"target_present\": false") !=
               std::string::npos;
      },
      milliseconds(5000)));
  ASSERT_EQ(::mkdir(cg_->path().c_str(), 0755), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand(Ctl("status --json")).second.find("\"target_present\": true") !=
               std::string::npos;
      },
      milliseconds(5000)));
  auto client = RunClient({"--port", std::to_string(upstream_port_), "--requests", "20"},
                          cg_->path(), dir_.path());
  ASSERT_TRUE(client.has_value());
  auto [rc, out] = RunCommand(Ctl("stats --json"));
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(nlohmann::json::parse(out)["upstreams"][0]["requests"], 20) << out;
}

}  // namespace
}  // namespace tg
