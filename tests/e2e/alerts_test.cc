// The first denial alerts. A real agent (`run --mode audit --observe-seccomp`: the observe
// mechanism on a host that refuses BPF-LSM) exports every decision series from 0; ONE forbidden
// socket() (audit: would_deny) and ONE refused by a seccomp filter like systemd's
// (denied_by_seccomp) then fire the shipped rules' TunnelguardAuditWouldDeny and
// TunnelguardDenialsRising:
//   - in a real Prometheus evaluating deploy/prometheus/tunnelguard.rules.yml, and the
//     dashboard's "Denials (range)" query counts the one denial;
//   - in `promtool test rules` over series captured from the agent's own /metrics before and
//     after the denials (a rules test generated here, not written by hand).
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "prometheus.h"
#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using testing::HttpGet;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestCgroup;
using testing::TestPrometheus;
using testing::WaitFor;

constexpr const char* kRules = TG_SOURCE_DIR "/deploy/prometheus/tunnelguard.rules.yml";
const std::string kUnixWouldDeny =
    "tunnelguard_policy_decisions_total{policy=\"address_families\",action=\"would_deny\","
    "detail=\"unix\"}";
const std::string kUnixBySeccomp =
    "tunnelguard_policy_decisions_total{policy=\"address_families\",action=\"denied_by_seccomp\","
    "detail=\"unix\"}";

// The sample lines of a text exposition ("name{labels} value") as promtool series, with the
// labels Prometheus adds when it scrapes (instance, job) → value.
std::map<std::string, std::string> Samples(const std::string& body) {
  std::map<std::string, std::string> out;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    std::string name = line.substr(0, space);
    const std::string extra = "instance=\"agent\",job=\"tunnelguard\"";
    const auto brace = name.find('{');
    name = brace == std::string::npos
               ? name + "{" + extra + "}"
               : name.substr(0, brace + 1) + extra + "," + name.substr(brace + 1);
    out[name] = line.substr(space + 1);
  }
  return out;
}

// A promtool rules test: the `before` reading for 5 minutes, then the `after` reading, sampled
// each minute; the alerts expected at minute 4 (none) and minute 7.
std::string RulesTest(const std::string& before, const std::string& after) {
  const auto b = Samples(before), a = Samples(after);
  std::string t = "rule_files:\n  - '" + std::string(kRules) +
                  "'\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n";
  for (const auto& [series, value] : a) {
    const auto it = b.find(series);
    if (it == b.end() && series.rfind("tunnelguard_policy_decisions_total", 0) == 0) {
      ADD_FAILURE() << series << " appeared only after the denials";
    }
    const std::string first = it == b.end() ? "_" : it->second;
    std::string quoted;
    for (char c : series) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    t += "      - series: '" + quoted + "'\n        values: '" + first + "x5 " + value + "x10'\n";
  }
  t += R"(    alert_rule_test:
      - eval_time: 4m
        alertname: TunnelguardAuditWouldDeny
        exp_alerts: []
      - eval_time: 4m
        alertname: TunnelguardDenialsRising
        exp_alerts: []
      - eval_time: 7m
        alertname: TunnelguardAuditWouldDeny
        exp_alerts:
          - exp_labels: {severity: info, instance: agent, policy: address_families, detail: unix}
            exp_annotations:
              runbook_url: "docs/runbook.md#tunnelguardauditwoulddeny"
              summary: "tunnelguard (audit) would deny address_families/unix on agent"
              description: "In audit mode, about 1 calls of address_families (unix) in the last hour would have been denied on agent."
      - eval_time: 7m
        alertname: TunnelguardDenialsRising
        exp_alerts:
          - exp_labels: {severity: warning, instance: agent, policy: address_families, detail: unix}
            exp_annotations:
              runbook_url: "docs/runbook.md#tunnelguarddenialsrising"
              summary: "tunnelguard denies address_families/unix on agent"
              description: "About 1 denials (address_families, unix) in the last 10 minutes on agent. The journal's rate-limited denial lines name the process."
)";
  return t;
}

// The alerts Prometheus has firing now, as "alertname policy/detail action-free" lines.
std::set<std::string> Firing(const TestPrometheus& prom) {
  std::set<std::string> out;
  const auto j = nlohmann::json::parse(prom.Get("/api/v1/alerts"), nullptr, false);
  if (j.is_discarded()) return out;
  for (const auto& a : j["data"]["alerts"]) {
    if (a.value("state", "") != "firing") continue;
    const auto& l = a["labels"];
    out.insert(l.value("alertname", "") + " " + l.value("policy", "") + "/" +
               l.value("detail", ""));
  }
  return out;
}

std::string DenialsRangeQuery() {
  // The dashboard's variables replaced as the dashboard checks do (panel-queries.jq): All (.*)
  // for $instance and $unit.
  const auto [rc, out] = RunCommand(
      "jq -c -f " TG_SOURCE_DIR
      "/tests/deploy/grafana/panel-queries.jq --argjson vars "
      "'{\"__range\": \"5m\"}' " TG_SOURCE_DIR
      "/dashboards/tunnelguard.json | jq -r 'select(.title == \"Denials (range)\") | .expr'");
  EXPECT_EQ(rc, 0) << out;
  return out.substr(0, out.find('\n'));
}

// The sum of an instant vector's values (-1 when there is none).
double Total(const std::string& answer) {
  const auto j = nlohmann::json::parse(answer, nullptr, false);
  if (j.is_discarded() || j["data"]["result"].empty()) return -1;
  double total = 0;
  for (const auto& s : j["data"]["result"]) total += std::stod(s["value"][1].get<std::string>());
  return total;
}

TEST(FirstDenial, FiresTheShippedAlertsInARealPrometheusAndInRulesTestsFromCapturedSeries) {
  TG_REQUIRE_ROOT();
  TG_REQUIRE(::access("/usr/bin/promtool", X_OK) == 0, "needs Debian's prometheus (install-deps)");
  TempDir dir;
  TestCgroup cg("tg-first-denial");
  ASSERT_TRUE(cg.ok());
  testing::TestAgent agent({.dir = dir.path(),
                            .args = {"--cgroup", cg.path(), "--mode", "audit", "--observe-seccomp",
                                     "--upstream", "web=127.0.0.1:1"},
                            .api = false,
                            .pins = "tg-first-denial"});
  const int metrics_port = agent.WaitForMetrics();
  ASSERT_GT(metrics_port, 0) << agent.log();
  auto log = [&] { return agent.log(); };
  std::string before;
  ASSERT_TRUE(WaitFor(
      [&] {
        before = HttpGet(metrics_port, "/metrics").value_or("");
        return before.find(kUnixWouldDeny + " 0") != std::string::npos &&
               before.find("tunnelguard_policy_info{policy=\"wx_memory\"") != std::string::npos;
      },
      milliseconds(20000)))
      << "every decision series must be there from 0\n"
      << before << log();
  EXPECT_NE(before.find(kUnixBySeccomp + " 0"), std::string::npos) << before;

  TestPrometheus prom(dir.path(), metrics_port, {kRules});
  // Prometheus has the zeros (two scrapes) before the denials.
  const std::string zeros = "count_over_time(" + kUnixWouldDeny + "[1m]) >= 2";
  ASSERT_TRUE(WaitFor([&] { return Total(prom.Query(zeros)) >= 2; }, milliseconds(30000)))
      << prom.Query(zeros);
  EXPECT_TRUE(Firing(prom).empty());

  // ONE forbidden socket() each way, from inside the tunnel's cgroup.
  for (const bool seccomp : {false, true}) {
    std::vector<std::string> argv = {TG_FLOOD, "--cgroup", cg.path(), "--count", "1"};
    if (seccomp) argv.push_back("--seccomp");
    auto flood = Subprocess::Start(argv, {{}, dir.path() + "/flood.log", ""});
    ASSERT_EQ(flood.Wait(milliseconds(10000)), 0);
  }
  std::string after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = HttpGet(metrics_port, "/metrics").value_or("");
        return after.find(kUnixWouldDeny + " 1") != std::string::npos &&
               after.find(kUnixBySeccomp + " 1") != std::string::npos;
      },
      milliseconds(5000)))
      << after << log();

  // The shipped rules, in a real Prometheus: both alerts fire on the one denial each.
  const std::set<std::string> want = {"TunnelguardAuditWouldDeny address_families/unix",
                                      "TunnelguardDenialsRising address_families/unix"};
  std::set<std::string> firing;
  EXPECT_TRUE(WaitFor(
      [&] {
        firing = Firing(prom);
        return firing == want;
      },
      milliseconds(30000)))
      << "firing: " << ::testing::PrintToString(firing) << "\n"
      << prom.Get("/api/v1/alerts");
  const std::string rule =
      "sum by (instance, policy, detail) (increase(tunnelguard_policy_decisions_total"
      "{action=~\"deny|denied_by_seccomp\"}[10m])) > 0";
  std::cout << "query: " << rule << "\nresult: " << prom.Query(rule) << "\n";

  // The dashboard's "Denials (range)" counts both (each an increase of 0 → 1, extrapolated a
  // little by Prometheus over the scrapes before and after).
  const std::string range = DenialsRangeQuery();
  const double counted = Total(prom.Query(range));
  std::cout << "Denials (range): " << range << " = " << counted << "\n";
  EXPECT_GE(counted, 1.8) << range;
  EXPECT_LT(counted, 3) << range;

  // The same alerts in promtool's rules test, over the agent's own series.
  std::ofstream(dir.path() + "/captured.test.yml") << RulesTest(before, after);
  const auto [rc, out] =
      RunCommand("promtool test rules " + dir.path() + "/captured.test.yml 2>&1");
  EXPECT_EQ(rc, 0) << out;
  // Self-check: with the agent's first reading already at 1 (the old exporter's shape: a
  // series appearing only once non-zero), the rules test must fail.
  std::string late = before;
  late.replace(late.find(kUnixWouldDeny + " 0"), kUnixWouldDeny.size() + 2, kUnixWouldDeny + " 1");
  std::ofstream(dir.path() + "/late.test.yml") << RulesTest(late, after);
  EXPECT_NE(RunCommand("promtool test rules " + dir.path() + "/late.test.yml 2>&1").first, 0)
      << "a series that starts at 1 must not alert: the test could not tell";
}

}  // namespace
}  // namespace tg
