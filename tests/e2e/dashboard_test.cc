// Every panel of every dashboard in dashboards/ shows data from a real agent. The demo's
// workload (tools/demo.sh: a delay backend behind nginx standing in for Traefik, a keep-alive
// client in the tunnel's cgroup standing in for cloudflared), `tunnelguard run --mode audit`
// with both policies (observe on a kernel that refuses BPF-LSM), denials from inside the cgroup
// (AF_UNIX and AF_NETLINK sockets, anonymous W+X mmap), and a real Prometheus scraping every
// second. Each panel query — extracted by tests/deploy/grafana/panel-queries.jq, the filter the
// static check uses — goes through Prometheus's HTTP API and must return at least one series
// with a finite value. Queries of metrics only Traefik or cloudflared export are listed, counted
// and printed, never silently passed. Self-check: a misspelt metric in a copy of the dashboard
// makes exactly its panel fail.
//
// TG_DASHBOARD_PICTURE=/abs/path.png [TG_DASHBOARD_SECONDS=N]: first run N s (default 240) of
// demo traffic in phases of different backend delays and rates, then render the README picture
// from that data with tools/render-dashboard-picture.sh (see README.md).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "latency_fixtures.h"
#include "prometheus.h"
#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::HttpGet;
using testing::ReadFile;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestCgroup;
using testing::TestPrometheus;
using testing::WaitFor;

// Grafana's interval variables for a 1 s scrape interval: $__rate_interval is at least four
// scrape intervals (Grafana: max($__interval + scrape, 4 × scrape)); 10 s leaves room for a
// late scrape. $__range covers the whole test.
constexpr const char* kRateInterval = "10s";
constexpr const char* kInterval = "5s";
constexpr const char* kRange = "10m";

// Metrics the dashboards show beside ours that only other programs export. Debian 12 packages
// neither Traefik nor cloudflared, so here nginx and tg-http-client stand in for them and these
// queries cannot return data. Listed by name: any other foreign metric fails the test.
const std::map<std::string, std::string>& NotProducedHere() {
  static const std::map<std::string, std::string> m = {
      {"traefik_entrypoint_request_duration_seconds_bucket",
       "needs Traefik's metrics (no traefik package in Debian 12; nginx stands in)"},
      {"traefik_entrypoint_requests_total",
       "needs Traefik's metrics (no traefik package in Debian 12; nginx stands in)"},
      {"cloudflared_tunnel_total_requests",
       "needs cloudflared's metrics (no cloudflared package in Debian 12; tg-http-client stands "
       "in)"}};
  return m;
}

struct PanelQuery {
  int id = 0;
  std::string title, ref, expr;
};

struct Outcome {
  PanelQuery query;
  int series = 0;      // series in the answer
  int finite = 0;      // of which with a finite value (NaN/Inf draw nothing in Grafana)
  std::string reason;  // why it is not checkable here ("" = checked)
  std::string error;   // Prometheus's error, or "no answer"
};

// The metric names a PromQL expression selects (every selector has a {…} matcher: the static
// check requires an instance filter on each).
std::set<std::string> MetricNames(const std::string& expr) {
  static const std::regex name(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\{)");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

// Every panel query of `dashboard` with the template variables replaced (panel-queries.jq).
std::vector<PanelQuery> PanelQueries(const std::string& dashboard, const std::string& instance) {
  const nlohmann::json vars = {{"instance", instance},
                               {"entrypoint", "web"},
                               {"__rate_interval", kRateInterval},
                               {"__interval", kInterval},
                               {"__range", kRange}};
  const auto [rc, out] = RunCommand("jq -c -f " TG_SOURCE_DIR
                                    "/tests/deploy/grafana/panel-queries.jq --argjson vars '" +
                                    vars.dump() + "' '" + dashboard + "'");
  std::vector<PanelQuery> queries;
  EXPECT_EQ(rc, 0) << out;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "jq printed a line that is not JSON: " << line;
      continue;
    }
    queries.push_back({j["id"].get<int>(), j["title"].get<std::string>(),
                       j["refId"].get<std::string>(), j["expr"].get<std::string>()});
  }
  return queries;
}

Outcome RunQuery(const TestPrometheus& prom, const PanelQuery& q, double at) {
  Outcome o;
  o.query = q;
  for (const auto& m : MetricNames(q.expr)) {
    const auto it = NotProducedHere().find(m);
    if (it != NotProducedHere().end()) o.reason = it->second;
  }
  const auto answer = nlohmann::json::parse(prom.QueryAt(q.expr, at), nullptr, false);
  if (answer.is_discarded() || answer.value("status", "") != "success") {
    o.error = answer.is_discarded() ? "no answer (a query Prometheus rejects answers 400)"
                                    : answer.value("error", "error");
    return o;
  }
  const auto& data = answer["data"];
  auto count = [&](const nlohmann::json& value) {
    ++o.series;
    const double v = std::strtod(value[1].get<std::string>().c_str(), nullptr);
    if (std::isfinite(v)) ++o.finite;
  };
  if (data["resultType"] == "scalar") {
    count(data["result"]);
  } else {
    for (const auto& s : data["result"]) count(s["value"]);
  }
  return o;
}

std::vector<Outcome> RunAll(const TestPrometheus& prom, const std::vector<PanelQuery>& queries,
                            double at) {
  std::vector<Outcome> out;
  for (const auto& q : queries) out.push_back(RunQuery(prom, q, at));
  return out;
}

// What is wrong with a dashboard's outcomes, one line each ("" when every checkable query has
// data and every panel that mixes in foreign metrics has data of ours).
std::string Problems(const std::vector<Outcome>& outcomes) {
  std::string problems;
  std::map<int, bool> panel_has_ours;
  for (const auto& o : outcomes) {
    const std::string where =
        "panel " + std::to_string(o.query.id) + " '" + o.query.title + "' " + o.query.ref;
    for (const auto& m : MetricNames(o.query.expr)) {
      if (m.rfind("tunnelguard_", 0) != 0 && NotProducedHere().count(m) == 0) {
        problems += where + ": metric " + m + " is neither ours nor listed as not produced here\n";
      }
    }
    if (!o.error.empty()) {
      problems += where + ": " + o.error + ": " + o.query.expr + "\n";
      continue;
    }
    if (!o.reason.empty()) continue;
    panel_has_ours.try_emplace(o.query.id, false);
    if (o.finite == 0) {
      problems += where + ": " +
                  (o.series == 0 ? std::string("no data")
                                 : std::to_string(o.series) + " series, none finite") +
                  ": " + o.query.expr + "\n";
    } else {
      panel_has_ours[o.query.id] = true;
    }
  }
  for (const auto& o : outcomes) {
    if (!o.reason.empty() && !panel_has_ours[o.query.id]) {
      problems += "panel " + std::to_string(o.query.id) + " '" + o.query.title +
                  "': none of its tunnelguard queries has data beside the foreign one\n";
    }
  }
  return problems;
}

std::string Table(const std::string& dashboard, const std::vector<Outcome>& outcomes) {
  std::string t = dashboard + ": panel → series (finite) per query\n";
  int foreign = 0;
  for (const auto& o : outcomes) {
    char line[512];
    std::snprintf(line, sizeof(line), "  %3d %-48.48s %s  %3d (%d)%s%s\n", o.query.id,
                  o.query.title.c_str(), o.query.ref.c_str(), o.series, o.finite,
                  o.reason.empty() ? "" : "  not checkable here: ", o.reason.c_str());
    t += line;
    foreign += o.reason.empty() ? 0 : 1;
  }
  t += "  " + std::to_string(outcomes.size()) +
       " queries: " + std::to_string(outcomes.size() - static_cast<size_t>(foreign)) +
       " checked, " + std::to_string(foreign) +
       " need Traefik's or cloudflared's metrics, not checkable here\n";
  return t;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One phase of demo traffic: the backend's delay mix and the tunnel's request rate.
struct Phase {
  const char* mix;
  const char* rate;
  int unix_sockets;  // denials generated per tick in this phase
};
// tools/demo.sh's mix first; then a slow backend, a fast one, and an incident of AF_UNIX tries.
constexpr Phase kPhases[] = {{"2ms:70,20ms:25,120ms:5", "50", 10},
                             {"5ms:45,40ms:45,250ms:10", "30", 10},
                             {"1ms:90,8ms:9,60ms:1", "80", 60},
                             {"3ms:60,30ms:35,180ms:5", "50", 10}};

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    for (const char* tool : {"nginx", "prometheus", "jq", "/usr/bin/python3"}) {
      TG_REQUIRE(RunCommand(std::string("command -v ") + tool).first == 0,
                 std::string(tool) + " missing (tools/install-deps.sh installs it)");
    }
    cg_ = std::make_unique<TestCgroup>("tg-dashboard-test");
    ASSERT_TRUE(cg_->ok());
    ASSERT_NO_FATAL_FAILURE(StartBackend(kPhases[0].mix));  // on a port of its own choosing
    ::mkdir((dir_.path() + "/nginx").c_str(), 0755);
    auto nginx = testing::StartNginx(dir_.path() + "/nginx", &nginx_port_, nullptr, backend_port_);
    ASSERT_TRUE(nginx.has_value()) << ReadFile(dir_.path() + "/nginx/nginx.out");
    nginx_.emplace(std::move(*nginx));

    agent_.emplace(testing::TestAgent::Options{
        .dir = dir_.path(),
        .args = {"--cgroup", cg_->path(), "--mode", "audit", "--families", "inet,inet6",
                 "--wx-memory", "deny", "--upstream",
                 "web=127.0.0.1:" + std::to_string(nginx_port_), "--bpf-stats", "--canary-interval",
                 "10"},
        .pins = "tg-dashboard-test"});
    ASSERT_GT(metrics_port_ = agent_->WaitForMetrics(), 0) << agent_->log();
    instance_ = agent_->metrics_address();
    // Both policies active (with their mechanism) before Prometheus's first scrape.
    std::string body;
    ASSERT_TRUE(WaitFor(
        [&] {
          body = HttpGet(metrics_port_, "/metrics").value_or("");
          return body.find("tunnelguard_policy_info{policy=\"address_families\"") !=
                     std::string::npos &&
                 body.find("tunnelguard_policy_info{policy=\"wx_memory\"") != std::string::npos;
        },
        milliseconds(20000)))
        << body << ReadFile(dir_.path() + "/agent.log");
    ::mkdir((dir_.path() + "/prometheus").c_str(), 0755);
    // The shipped alert rules too, as an operator would load them beside the dashboard.
    prom_ = std::make_unique<TestPrometheus>(
        dir_.path() + "/prometheus", metrics_port_,
        std::vector<std::string>{TG_SOURCE_DIR "/deploy/prometheus/tunnelguard.rules.yml"});
    ASSERT_TRUE(prom_->ok()) << ReadFile(dir_.path() + "/prometheus/prometheus.log");
    ASSERT_TRUE(WaitFor([&] { return prom_->Query("up==1").find(instance_) != std::string::npos; },
                        milliseconds(30000)))
        << ReadFile(dir_.path() + "/prometheus/prometheus.log");
    // And one with native histograms (protobuf scrapes): the dashboard and the rules must
    // work with whichever form of the latency histograms an operator's Prometheus stores.
    ::mkdir((dir_.path() + "/native").c_str(), 0755);
    native_ = std::make_unique<TestPrometheus>(
        dir_.path() + "/native", metrics_port_,
        std::vector<std::string>{TG_SOURCE_DIR "/deploy/prometheus/tunnelguard.rules.yml"}, true);
    ASSERT_TRUE(native_->ok()) << ReadFile(dir_.path() + "/native/prometheus.log");
  }

  void TearDown() override { agent_.reset(); }  // stops it and detaches its pins

  // The first backend picks its port (backend_port_ == 0); the next phases' backends take the
  // same port again, since nginx proxies to it (picture mode only).
  void StartBackend(const std::string& mix) {
    backend_.reset();  // SIGKILL and reap the previous one: its port is ours again
    auto b =
        testing::StartDelayServer("127.0.0.1", &backend_port_, mix, dir_.path() + "/backend.log");
    ASSERT_TRUE(b.has_value()) << ReadFile(dir_.path() + "/backend.log");
    backend_.emplace(std::move(*b));
  }

  // The stand-in tunnel: keep-alive connections at a steady rate, in the tunnel's cgroup.
  void StartClient(const std::string& rate) {
    client_.reset();
    client_.emplace(
        Subprocess::Start({TG_HTTP_CLIENT, "--port", std::to_string(nginx_port_), "--connections",
                           "4", "--rate", rate, "--duration", "3600", "--cgroup", cg_->path()},
                          {{}, dir_.path() + "/client.out", ""}));
  }

  // One tick of the rest of the workload, from inside the cgroup: a few short connections
  // (connect latency: the keep-alive pool connects only once) and attempts both policies
  // refuse: AF_UNIX and AF_NETLINK sockets, anonymous W+X mappings (audit: allowed, counted).
  void Tick(int unix_sockets) {
    std::string out;
    ASSERT_TRUE(testing::RunClient(
                    {"--port", std::to_string(nginx_port_), "--churn", "5", "--churn-request"},
                    cg_->path(), dir_.path(), &out)
                    .has_value())
        << out;
    const std::string py =
        "import mmap, socket\n"
        "for _ in range(" +
        std::to_string(unix_sockets) +
        "): socket.socket(socket.AF_UNIX).close()\n"
        "for _ in range(3): socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()\n"
        "for _ in range(5): mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE,\n"
        "    prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC).close()\n";
    auto p = Subprocess::Start({"/usr/bin/python3", "-c", py},
                               {{}, dir_.path() + "/denials.log", cg_->path()});
    ASSERT_EQ(p.Wait(milliseconds(10000)), 0) << ReadFile(dir_.path() + "/denials.log");
  }

  // Ticks every ~2 s for `duration`.
  void Traffic(seconds duration, int unix_sockets) {
    const auto end = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < end) {
      ASSERT_NO_FATAL_FAILURE(Tick(unix_sockets));
      std::this_thread::sleep_for(milliseconds(2000));
    }
  }

  TempDir dir_;
  std::unique_ptr<TestCgroup> cg_;
  int backend_port_ = 0, nginx_port_ = 0, metrics_port_ = 0;
  std::string instance_;
  std::optional<Subprocess> backend_, nginx_, client_;
  std::optional<testing::TestAgent> agent_;
  std::unique_ptr<TestPrometheus> prom_, native_;
};

// A query that reads only classic `le` buckets of ours (the heatmap: Grafana draws `le`
// series); with native histograms stored it has nothing to read. Every quantile query has a
// native alternative (`… or histogram_quantile(q, sum(rate(name[…])))`).
bool ClassicBucketsOnly(const PanelQuery& q) {
  bool classic = false, native = false;
  for (const auto& m : MetricNames(q.expr)) {
    if (m.rfind("tunnelguard_", 0) != 0) continue;
    if (m.size() > 7 && m.compare(m.size() - 7, 7, "_bucket") == 0) {
      classic = true;
    } else if (m.find("_duration_seconds") != std::string::npos) {
      native = true;
    }
  }
  return classic && !native;
}

TEST_F(DashboardTest, EveryPanelQueryReturnsDataFromARealAgent) {
  std::vector<std::string> dashboards;
  for (const auto& e : std::filesystem::directory_iterator(TG_SOURCE_DIR "/dashboards")) {
    if (e.path().extension() == ".json") dashboards.push_back(e.path().string());
  }
  std::sort(dashboards.begin(), dashboards.end());
  ASSERT_FALSE(dashboards.empty());

  const char* picture = std::getenv("TG_DASHBOARD_PICTURE");
  const double start = Now();
  if (picture != nullptr && *picture != '\0') {
    // A few minutes in phases, so the picture's graphs move like a dashboard's.
    const char* env_seconds = std::getenv("TG_DASHBOARD_SECONDS");
    const int total = env_seconds != nullptr ? std::atoi(env_seconds) : 240;
    const int per_phase = std::max(20, total / static_cast<int>(std::size(kPhases)));
    for (const Phase& phase : kPhases) {
      client_.reset();
      ASSERT_NO_FATAL_FAILURE(StartBackend(phase.mix));
      StartClient(phase.rate);
      ASSERT_NO_FATAL_FAILURE(Traffic(seconds(per_phase), phase.unix_sockets));
    }
    const std::string cmd = std::string(TG_SOURCE_DIR) +
                            "/tools/render-dashboard-picture.sh --prometheus http://127.0.0.1:" +
                            std::to_string(prom_->port()) + " --instance " + instance_ +
                            " --start " + std::to_string(static_cast<long>(start)) + " --end " +
                            std::to_string(static_cast<long>(Now())) + " --out " + picture;
    const auto [rc, out] = RunCommand(cmd);
    std::printf("%s", out.c_str());
    ASSERT_EQ(rc, 0) << cmd << "\n" << out;
  } else {
    // Enough for every rate window to hold a dozen scrapes of traffic and denials.
    StartClient(kPhases[0].rate);
    ASSERT_NO_FATAL_FAILURE(Traffic(seconds(12), kPhases[0].unix_sockets));
  }

  // Every query of every dashboard at one instant. Scrapes are asynchronous, so a query that
  // is empty is asked again (with another tick of workload) for up to 20 s before it fails.
  for (const auto& dashboard : dashboards) {
    const auto queries = PanelQueries(dashboard, instance_);
    ASSERT_GT(queries.size(), 0U) << dashboard;
    std::vector<Outcome> outcomes;
    std::string problems;
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    for (;;) {
      outcomes = RunAll(*prom_, queries, Now());
      problems = Problems(outcomes);
      if (problems.empty() || std::chrono::steady_clock::now() > deadline) break;
      ASSERT_NO_FATAL_FAILURE(Tick(kPhases[0].unix_sockets));
      std::this_thread::sleep_for(milliseconds(1000));
    }
    std::printf("%s", Table(dashboard, outcomes).c_str());
    EXPECT_EQ(problems, "") << dashboard << "\n" << ReadFile(dir_.path() + "/agent.log");

    // The same queries on native histograms, but those that can only read `le` buckets.
    std::vector<PanelQuery> native_queries;
    for (const auto& q : queries) {
      if (ClassicBucketsOnly(q)) {
        std::printf("native: panel %d '%s' %s reads classic buckets only (left out)\n", q.id,
                    q.title.c_str(), q.ref.c_str());
      } else {
        native_queries.push_back(q);
      }
    }
    const auto native_deadline = std::chrono::steady_clock::now() + seconds(20);
    for (;;) {
      outcomes = RunAll(*native_, native_queries, Now());
      problems = Problems(outcomes);
      if (problems.empty() || std::chrono::steady_clock::now() > native_deadline) break;
      ASSERT_NO_FATAL_FAILURE(Tick(kPhases[0].unix_sockets));
      std::this_thread::sleep_for(milliseconds(1000));
    }
    std::printf("%s", Table(dashboard + " (native histograms)", outcomes).c_str());
    EXPECT_EQ(problems, "") << dashboard << " with native histograms\n";
    EXPECT_NE(native_->Query("count(tunnelguard_upstream_request_duration_seconds_bucket)")
                  .find("\"result\":[]"),
              std::string::npos)
        << "the native Prometheus stored classic buckets: it did not get the protobuf page";

    // Self-check: the same pipeline on a copy with one metric misspelt must fail exactly the
    // queries that use it — so an empty answer is caught, not read as data.
    std::string text = ReadFile(dashboard);
    const std::string metric = "tunnelguard_upstream_connect_duration_seconds_bucket";
    const auto at = text.find(metric);
    ASSERT_NE(at, std::string::npos) << dashboard;
    text.replace(at, metric.size(), "tunnelguard_upstream_conect_duration_seconds_bucket");
    const std::string mutated = dir_.path() + "/mutated.json";
    std::ofstream(mutated) << text;
    const std::string broken = Problems(RunAll(*prom_, PanelQueries(mutated, instance_), Now()));
    EXPECT_NE(broken.find("conect_duration"), std::string::npos)
        << "self-check: a misspelt metric was not caught:\n"
        << broken;
    EXPECT_EQ(std::count(broken.begin(), broken.end(), '\n'), 1) << broken;
    // And every checked query on its own: its metric names misspelt, it has no data.
    for (const auto& q : queries) {
      PanelQuery typo = q;
      for (size_t p = 0; (p = typo.expr.find("tunnelguard_", p)) != std::string::npos; p += 4) {
        typo.expr.replace(p, 12, "tunelguard_");
      }
      const Outcome o = RunQuery(*prom_, typo, Now());
      EXPECT_EQ(o.finite, 0) << "panel " << q.id << " " << q.ref
                             << " has data with its metric names misspelt: " << typo.expr;
    }
  }
}

// The shipped alert rules (deploy/prometheus/tunnelguard.rules.yml), loaded into the same
// Prometheus: every rule evaluates without error against the real agent's series, and the
// ones this situation must trigger do — the agent audits on purpose (observe: the host cannot
// enforce), so "audit mode" is pending and "enforcement inactive" (critical) stays quiet, and
// the workload's refused attempts fire "audit would deny" — while "agent down", "target
// absent" and "no policy" stay quiet.
TEST_F(DashboardTest, ShippedAlertRulesEvaluateAgainstARealAgent) {
  Traffic(seconds(8), 5);
  ASSERT_FALSE(HasFatalFailure());
  std::map<std::string, std::string> state;  // alert -> inactive | pending | firing
  std::string rules, unhealthy;
  ASSERT_TRUE(WaitFor(
      [&] {
        rules = prom_->Get("/api/v1/rules");
        const auto j = nlohmann::json::parse(rules, nullptr, false);
        if (j.is_discarded() || !j.contains("data")) return false;
        state.clear();
        unhealthy.clear();
        for (const auto& g : j["data"]["groups"]) {
          for (const auto& r : g["rules"]) {
            const std::string name = r.value("name", "");
            if (r.value("health", "") != "ok") unhealthy += name + " ";
            if (r.value("type", "") == "alerting") state[name] = r.value("state", "");
          }
        }
        return unhealthy.empty() && state["TunnelguardAuditMode"] != "inactive" &&
               state["TunnelguardAuditWouldDeny"] == "firing";
      },
      milliseconds(30000)))
      << "unhealthy: " << unhealthy << "\n"
      << rules;
  EXPECT_GE(state.size(), 11U) << rules;  // every alert of the file was loaded
  // On native histograms too: every rule evaluates (the latency rule reads either form).
  std::string native_rules, native_unhealthy;
  ASSERT_TRUE(WaitFor(
      [&] {
        native_rules = native_->Get("/api/v1/rules");
        const auto j = nlohmann::json::parse(native_rules, nullptr, false);
        if (j.is_discarded() || !j.contains("data")) return false;
        native_unhealthy.clear();
        int evaluated = 0;
        for (const auto& g : j["data"]["groups"]) {
          for (const auto& r : g["rules"]) {
            if (r.value("health", "") != "ok") native_unhealthy += r.value("name", "") + " ";
            ++evaluated;
          }
        }
        return evaluated >= 11 && native_unhealthy.empty();
      },
      milliseconds(30000)))
      << "unhealthy with native histograms: " << native_unhealthy << "\n"
      << native_rules;
  EXPECT_EQ(state["TunnelguardEnforcementInactive"], "inactive");  // audit is deliberate
  EXPECT_EQ(state["TunnelguardTargetAbsent"], "inactive");
  EXPECT_EQ(state["TunnelguardAgentDown"], "inactive");
  EXPECT_EQ(state["TunnelguardNoPolicy"], "inactive");
  EXPECT_EQ(state["TunnelguardCanaryFailed"], "inactive");  // observe's canary passes
  for (const auto& [name, st] : state) std::printf("ALERT %-34s %s\n", name.c_str(), st.c_str());
}

}  // namespace
}  // namespace tg
