#include "tunnelctl/stats_view.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "agent/latency/histogram.h"
#include "agent/latency/latency_json.h"

namespace tg::ctl {
namespace v1 = tunnelguard::v1;

namespace {

FineHistogram FineFromProto(const v1::FineHistogram& f) {
  FineHistogram h;
  h.count = f.count();
  h.sum_ns = f.sum_ns();
  h.max_ns = f.max_ns();
  h.buckets.assign(f.buckets().begin(), f.buckets().end());
  return h;
}

std::string Duration(double seconds) {
  if (seconds <= 0) return "-";
  if (seconds < 1e-3) return fmt::format("{:.0f}us", seconds * 1e6);
  if (seconds < 1) return fmt::format("{:.2f}ms", seconds * 1e3);
  return fmt::format("{:.2f}s", seconds);
}

}  // namespace

LatencySnapshot SnapshotFromProto(const v1::GetStatsResponse& r) {
  LatencySnapshot s;
  for (const auto& u : r.upstreams()) {
    UpstreamStats out;
    out.name = u.name();
    out.addresses.assign(u.addresses().begin(), u.addresses().end());
    for (const auto& c : kUpstreamCounters) {
      if (c.proto_field == nullptr) continue;
      out.*c.member =
          u.GetReflection()->GetUInt64(u, u.GetDescriptor()->FindFieldByName(c.proto_field));
    }
    out.request_latency = FineFromProto(u.request_fine());
    out.connect_latency = FineFromProto(u.connect_fine());
    s.upstreams.push_back(std::move(out));
  }
  return s;
}

nlohmann::json DecisionsJson(const v1::Decisions& d) {
  return {{"allow", d.allow()},
          {"deny", d.deny()},
          {"would_deny", d.would_deny()},
          {"denied_by_seccomp", d.denied_by_seccomp()},
          {"exempt_setup", d.exempt_setup()}};
}

namespace {

// The views of one tunnel (a response in the shape of one).
nlohmann::json TunnelJson(const v1::GetStatsResponse& r) {
  nlohmann::json j = LatencyToJson(SnapshotFromProto(r));
  j["uptime_seconds"] = r.uptime_seconds();
  for (size_t i = 0; i < j["upstreams"].size() && i < static_cast<size_t>(r.upstreams_size());
       ++i) {
    j["upstreams"][i]["request_rate"] = r.upstreams(static_cast<int>(i)).request_rate();
  }
  j["policies"] = nlohmann::json::array();
  for (const auto& p : r.policies()) {
    nlohmann::json details = nlohmann::json::object();
    for (const auto& [name, d] : p.by_detail()) {
      details[name] = DecisionsJson(d);
    }
    j["policies"].push_back({{"name", p.name()},
                             {"mode", p.mode()},
                             {"mechanism", p.mechanism()},
                             {"active", p.active()},
                             {"decisions", DecisionsJson(p.decisions())},
                             {"details", details},
                             {"events_dropped", p.events_dropped()}});
  }
  return j;
}

std::string TunnelTable(const v1::GetStatsResponse& r) {
  std::string out =
      fmt::format("{:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>5} {:>12}\n", "upstream", "req/s",
                  "p50", "p90", "p99", "requests", "connect99", "open", "fail r/t/x");
  for (const auto& u : r.upstreams()) {
    out += fmt::format(
        "{:<26} {:>8.1f} {:>9} {:>9} {:>9} {:>9} {:>10} {:>5} {:>12}\n",
        u.name() + " " + u.address(), u.request_rate(), Duration(u.request_latency_seconds().p50()),
        Duration(u.request_latency_seconds().p90()), Duration(u.request_latency_seconds().p99()),
        u.requests(), Duration(u.connect_latency_seconds().p99()), u.open_connections(),
        fmt::format("{}/{}/{}", u.failures_refused(), u.failures_timeout(), u.failures_reset()));
  }
  if (r.policies_size() == 0) {
    out += "\nenforcement: not in force on the target (see 'tunnelctl status' for why)\n";
  } else {
    // seccomp: refused by systemd's own filter first (observe --observe-seccomp); set-up:
    // systemd's exec child before exec (address_families only).
    out += fmt::format("\n{:<17} {:<8} {:<11} {:>9} {:>9} {:>11} {:>9} {:>7}\n", "policy", "mode",
                       "mechanism", "allowed", "denied", "would_deny", "seccomp", "set-up");
    for (const auto& p : r.policies()) {
      const auto& d = p.decisions();
      out +=
          fmt::format("{:<17} {:<8} {:<11} {:>9} {:>9} {:>11} {:>9} {:>7}{}\n", p.name(), p.mode(),
                      p.mechanism(), d.allow(), d.deny(), d.would_deny(), d.denied_by_seccomp(),
                      d.exempt_setup(), p.active() ? "" : "  (NOT ACTIVE)");
    }
  }
  return out;
}

std::string TunnelHistogram(const v1::GetStatsResponse& r) {
  std::string out;
  for (const auto& u : r.upstreams()) {
    const FineHistogram h = FineFromProto(u.request_fine());
    out += fmt::format("\nentrypoint = {} ({} requests)\n", u.name(), h.count);
    if (h.count == 0) continue;
    // Fold the fine buckets into power-of-two microsecond buckets, by each bucket's midpoint.
    std::map<int, uint64_t> log2;
    for (uint32_t i = 0; i < h.buckets.size(); ++i) {
      if (h.buckets[i] == 0) continue;
      const double mid_us = static_cast<double>(BucketLowerNs(i) + BucketUpperNs(i)) / 2.0 / 1000.0;
      int k = 0;
      while (k < 40 && static_cast<double>(uint64_t{1} << (k + 1)) <= mid_us) ++k;
      log2[mid_us < 1 ? -1 : k] += h.buckets[i];
    }
    uint64_t peak = 0;
    for (const auto& [k, n] : log2) peak = std::max(peak, n);
    out += fmt::format("{:>24} : {:<9} |{:<40}|\n", "usecs", "count", "distribution");
    const int first = log2.begin()->first, last = log2.rbegin()->first;
    for (int k = first; k <= last; ++k) {
      const uint64_t n = log2.count(k) != 0 ? log2[k] : 0;
      const uint64_t lo = k < 0 ? 0 : uint64_t{1} << k;
      const uint64_t hi = k < 0 ? 1 : (uint64_t{1} << (k + 1)) - 1;
      const auto stars = static_cast<size_t>(peak == 0 ? 0 : n * 40 / peak);
      out += fmt::format("{:>11} -> {:<10} : {:<9} |{:<40}|\n", lo, hi, n, std::string(stars, '*'));
    }
  }
  return out;
}

// One tunnel's part of a response, in the shape a response had before an agent guarded several
// (so one tunnel is shown exactly as before).
v1::GetStatsResponse OneTunnel(const v1::GetStatsResponse& r, const v1::TunnelStats& t) {
  v1::GetStatsResponse one;
  one.set_uptime_seconds(r.uptime_seconds());
  *one.mutable_upstreams() = t.upstreams();
  *one.mutable_policies() = t.policies();
  return one;
}

std::string TunnelHeading(const v1::TunnelStats& t, bool first) {
  return fmt::format("{}== tunnel {} ==\n", first ? "" : "\n", t.target());
}

}  // namespace

nlohmann::json StatsJson(const v1::GetStatsResponse& r) {
  nlohmann::json j = TunnelJson(r);
  j["tunnels"] = nlohmann::json::array();
  for (const auto& t : r.tunnels()) {
    nlohmann::json one = TunnelJson(OneTunnel(r, t));
    one.erase("uptime_seconds");
    one["target"] = t.target();
    j["tunnels"].push_back(std::move(one));
  }
  return j;
}

std::string StatsTable(const v1::GetStatsResponse& r) {
  if (r.tunnels_size() <= 1) return TunnelTable(r);
  std::string out;
  for (const auto& t : r.tunnels()) {
    out += TunnelHeading(t, out.empty()) + TunnelTable(OneTunnel(r, t));
  }
  return out;
}

std::string HistogramText(const v1::GetStatsResponse& r) {
  if (r.tunnels_size() <= 1) return TunnelHistogram(r);
  std::string out;
  for (const auto& t : r.tunnels()) {
    out += TunnelHeading(t, false) + TunnelHistogram(OneTunnel(r, t));
  }
  return out;
}

}  // namespace tg::ctl
