#include "agent/latency/latency_json.h"

#include <string>

namespace tg {
namespace {

nlohmann::json HistogramJson(const FineHistogram& h, bool full) {
  nlohmann::json j;
  j["count"] = h.count;
  j["sum"] = static_cast<double>(h.sum_ns) * 1e-9;
  j["p50"] = QuantileSeconds(h, 0.50);
  if (full) j["p90"] = QuantileSeconds(h, 0.90);
  j["p99"] = QuantileSeconds(h, 0.99);
  j["max"] = QuantileSeconds(h, 1.0);
  // Prometheus-style cumulative buckets: {"le": seconds, "count": n}, +Inf is `count`.
  const auto bounds = DefaultCoarseBoundsSeconds();
  const auto cumulative = CumulativeCounts(h, bounds);
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < bounds.size(); ++i) {
    buckets.push_back({{"le", bounds[i]}, {"count", cumulative[i]}});
  }
  j["buckets"] = std::move(buckets);
  return j;
}

}  // namespace

nlohmann::json LatencyToJson(const LatencySnapshot& snapshot) {
  nlohmann::json ups = nlohmann::json::array();
  for (const auto& u : snapshot.upstreams) {
    std::string joined;
    for (const auto& a : u.addresses) joined += (joined.empty() ? "" : ",") + a;
    ups.push_back({
        {"name", u.name},
        {"address", joined},
        {"addresses", u.addresses},
        {"requests", u.requests},
        {"connections", u.connections},
        {"connections_adopted", u.connections_adopted},
        {"connections_closed", u.connections_closed},
        {"connect_attempts", u.connect_attempts},
        {"open_connections", u.open_connections()},
        {"request_latency_seconds", HistogramJson(u.request_latency, true)},
        {"connect_latency_seconds", HistogramJson(u.connect_latency, false)},
        {"failures",
         {{"refused", u.refused},
          {"timeout", u.timeout},
          {"reset", u.reset},
          {"aborted", u.aborted}}},
        {"bytes", {{"sent", u.bytes_sent}, {"received", u.bytes_received}}},
        {"retransmits", u.retransmits},
        {"tls_handshake_turns", u.tls_handshake_turns},
        {"tls_h2_turns", u.tls_h2_turns},
    });
  }
  return {{"schema_version", kLatencySchemaVersion}, {"upstreams", std::move(ups)}};
}

}  // namespace tg
