// The Prometheus families built from made-up kernel readings: names, labels, bucket math.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "exporter/family_builder.h"
#include "exporter/labelled_collectable.h"
#include "exporter/latency_collector.h"
#include "exporter/policy_collector.h"

namespace tg::exporter {
namespace {

const prometheus::MetricFamily& Family(const std::vector<prometheus::MetricFamily>& fs,
                                       const std::string& name) {
  auto it = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f.name == name; });
  if (it == fs.end()) throw std::runtime_error("no family " + name);
  return *it;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "";
}

// A policy attached and active in `mode` through `mechanism`, with no counts yet.
PolicyStatus Active(PolicyKind kind, Mode mode, Mechanism mechanism) {
  PolicyStatus p;
  p.kind = kind;
  p.mode = mode;
  p.mechanism = mechanism;
  p.active = true;
  return p;
}

TEST(LatencyFamilies, HistogramAndCountersPerEntrypoint) {
  LatencySnapshot snap;
  UpstreamStats u;
  u.name = "web";
  u.addresses = {"127.0.0.1:80"};  // the probe measures each address on its own
  u.requests = 3;
  u.connections = 2;
  u.connections_adopted = 1;
  u.connections_closed = 1;
  u.refused = 4;
  for (uint64_t ns : {200'000ull, 3'000'000ull, 40'000'000ull}) {  // 0.2 ms, 3 ms, 40 ms
    FineHistogram one;
    one.count = 1;
    one.sum_ns = ns;
    one.max_ns = ns;
    one.buckets.assign(BucketIndex(ns) + 1, 0);
    one.buckets.back() = 1;
    u.request_latency.Add(one);
  }
  snap.upstreams.push_back(u);
  const auto fs = LatencyFamilies(snap);

  const auto& h = Family(fs, "tunnelguard_upstream_request_duration_seconds");
  ASSERT_EQ(h.type, prometheus::MetricType::Histogram);
  ASSERT_EQ(h.metric.size(), 1u);
  const auto& m = h.metric[0];
  EXPECT_EQ(Label(m, "entrypoint"), "web");
  EXPECT_EQ(Label(m, "upstream"), "127.0.0.1:80");
  EXPECT_EQ(m.histogram.sample_count, 3u);
  EXPECT_NEAR(m.histogram.sample_sum, 0.0432, 1e-9);
  // At the kernel's resolution: the exposition chooses the buckets a scraper gets
  // (exposition_test.cc); the three values come back in their own kernel buckets.
  const std::optional<FineHistogram> fine = FineFromHistogram(m.histogram);
  ASSERT_TRUE(fine.has_value());
  EXPECT_EQ(fine->count, 3u);
  for (uint64_t ns : {200'000ull, 3'000'000ull, 40'000'000ull}) {
    EXPECT_EQ(fine->buckets[BucketIndex(ns)], 1u) << ns;
  }
  EXPECT_EQ(m.histogram.bucket.size(), 4u) << "the three non-empty kernel buckets and +Inf";
  EXPECT_EQ(m.histogram.bucket.back().cumulative_count, 3u);  // +Inf

  EXPECT_EQ(Family(fs, "tunnelguard_upstream_requests_total").metric[0].counter.value, 3);
  EXPECT_EQ(Family(fs, "tunnelguard_upstream_connections_total").metric[0].counter.value, 3);
  EXPECT_EQ(Family(fs, "tunnelguard_upstream_open_connections").metric[0].gauge.value, 2);
  const auto& failures = Family(fs, "tunnelguard_upstream_connection_failures_total");
  ASSERT_EQ(failures.metric.size(), 4u);
  for (const auto& f : failures.metric) {
    EXPECT_EQ(f.counter.value, Label(f, "reason") == "refused" ? 4 : 0) << Label(f, "reason");
  }
}

TEST(PolicyFamilies, EnforcedOnlyWhenActiveEnforcingAndAbleToDeny) {
  PolicyMetricsInput in;
  in.configured = {PolicyKind::kAddressFamilies, PolicyKind::kWxMemory};
  PolicyStatus fam = Active(PolicyKind::kAddressFamilies, Mode::kEnforce, Mechanism::kLsmCgroup);
  fam.by_detail["unix"] = {0, 7, 0};
  fam.by_detail["inet"] = {12, 0, 0};
  fam.events_dropped = 2;
  in.attached = {fam};  // wx_memory configured but not attached
  in.verified[PolicyKind::kAddressFamilies] = true;
  in.events[{PolicyKind::kAddressFamilies, Action::kDeny}] = 5;
  const auto fs = PolicyFamilies(in);

  const auto& enforced = Family(fs, "tunnelguard_policy_enforced");
  ASSERT_EQ(enforced.metric.size(), 2u);
  for (const auto& m : enforced.metric) {
    EXPECT_EQ(m.gauge.value, Label(m, "policy") == "address_families" ? 1 : 0);
  }
  const auto& decisions = Family(fs, "tunnelguard_policy_decisions_total");
  auto value = [&](const std::string& action, const std::string& detail) {
    for (const auto& m : decisions.metric) {
      if (Label(m, "action") == action && Label(m, "detail") == detail) return m.counter.value;
    }
    return -1.0;  // no such series
  };
  EXPECT_EQ(value("deny", "unix"), 7);
  EXPECT_EQ(value("allow", "inet"), 12);
  EXPECT_EQ(value("allow", "unix"), -1) << "unix is not on the allow-list";
  const auto& info = Family(fs, "tunnelguard_policy_info");
  ASSERT_EQ(info.metric.size(), 1u);
  EXPECT_EQ(Label(info.metric[0], "mechanism"), "lsm_cgroup");
  EXPECT_EQ(Label(info.metric[0], "mode"), "enforce");
  EXPECT_EQ(Family(fs, "tunnelguard_events_dropped_total").metric[0].counter.value, 2);

  // The same policy in observe mode counts but cannot deny: not enforced.
  in.attached[0].mechanism = Mechanism::kObserve;
  const auto observed = PolicyFamilies(in);  // named: Family() returns a reference into it
  for (const auto& m : Family(observed, "tunnelguard_policy_enforced").metric) {
    EXPECT_EQ(m.gauge.value, 0);
  }
}

// The first denial must be a rise from 0: every series a policy can produce is there before it.
TEST(PolicyFamilies, EverySeriesAPolicyCanProduceStartsAtZero) {
  PolicyMetricsInput in;
  in.configured = {PolicyKind::kAddressFamilies, PolicyKind::kWxMemory};
  PolicyStatus fam = Active(PolicyKind::kAddressFamilies, Mode::kAudit, Mechanism::kObserve);
  fam.allowed_families = "inet,inet6";
  fam.by_detail["af_0"] = {0, 0, 2};   // AF_UNSPEC: no name of its own
  fam.by_detail["af_50"] = {0, 0, 1};  // past AF_MAX
  in.attached = {fam, Active(PolicyKind::kWxMemory, Mode::kEnforce, Mechanism::kLsmCgroup)};
  const auto fs = PolicyFamilies(in);
  const auto& decisions = Family(fs, "tunnelguard_policy_decisions_total");
  std::map<std::string, std::set<std::string>> series;  // policy → "action/detail"
  for (const auto& m : decisions.metric) {
    const std::string key = Label(m, "action") + "/" + Label(m, "detail");
    EXPECT_TRUE(series[Label(m, "policy")].insert(key).second) << "duplicate " << key;
    if (key == "would_deny/other") {
      EXPECT_EQ(m.counter.value, 3) << "unnamed families fold into 'other'";
    } else {
      EXPECT_EQ(m.counter.value, 0) << key;
    }
  }
  // address_families: 2 allowed + (45 known - 2 allowed + other) × {deny, would_deny}.
  EXPECT_EQ(series["address_families"].size(), 2u + 44u * 2u);
  for (const char* key : {"allow/inet", "allow/inet6", "deny/unix", "would_deny/unix",
                          "deny/netlink", "would_deny/packet", "deny/other"}) {
    EXPECT_EQ(series["address_families"].count(key), 1u) << key;
  }
  // wx_memory: 5 allowed operations + 10 refusable × {deny, would_deny}.
  EXPECT_EQ(series["wx_memory"].size(), 5u + 10u * 2u);
  for (const char* key :
       {"allow/mmap", "deny/mmap_wx", "would_deny/mprotect_add_exec", "deny/shmat_exec",
        "allow/proc_mem", "allow/ptrace_read", "deny/proc_mem_write", "would_deny/ptrace_attach",
        "deny/ptrace_traceme"}) {
    EXPECT_EQ(series["wx_memory"].count(key), 1u) << key;
  }

  // --observe-seccomp and the set-up exemption add their own actions, for refusable details.
  in.attached[0].observe_seccomp = true;
  in.attached[0].setup = SetupExemption{};
  in.attached[0].setup->manager_tgid = 1;
  const auto more_fs = PolicyFamilies(in);
  const auto& more = Family(more_fs, "tunnelguard_policy_decisions_total");
  EXPECT_EQ(more.metric.size(), decisions.metric.size() + 44u * 2u);
}

// Several tunnels: each tunnel's families get its unit label, and the families of the same name
// are joined into one block (the text format allows one TYPE line per name).
TEST(LabelledCollectable, TwoTunnelsMergeIntoOneFamilyEachSeriesLabelled) {
  LatencySnapshot snap;
  UpstreamStats u;
  u.name = "web";
  u.addresses = {"127.0.0.1:80"};
  u.requests = 3;
  snap.upstreams.push_back(u);
  auto a = WithLabel(LatencyFamilies(snap), "unit", "a.service");
  snap.upstreams[0].requests = 5;
  auto b = WithLabel(LatencyFamilies(snap), "unit", "b.service");
  std::vector<prometheus::MetricFamily> all = a;
  all.insert(all.end(), b.begin(), b.end());
  const auto merged = MergeFamilies(all);
  EXPECT_EQ(merged.size(), a.size());
  const auto& requests = Family(merged, "tunnelguard_upstream_requests_total");
  ASSERT_EQ(requests.metric.size(), 2u);
  EXPECT_EQ(requests.metric[0].label[0].name, "unit") << "unit first among the labels";
  EXPECT_EQ(Label(requests.metric[0], "unit"), "a.service");
  EXPECT_EQ(requests.metric[0].counter.value, 3);
  EXPECT_EQ(Label(requests.metric[1], "unit"), "b.service");
  EXPECT_EQ(requests.metric[1].counter.value, 5);
  EXPECT_EQ(Label(requests.metric[1], "entrypoint"), "web");
}

}  // namespace
}  // namespace tg::exporter
