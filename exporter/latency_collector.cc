#include "exporter/latency_collector.h"

#include "agent/base/log.h"
#include "exporter/family_builder.h"

namespace tg::exporter {

using prometheus::MetricType;

std::vector<prometheus::MetricFamily> LatencyFamilies(const LatencySnapshot& snapshot) {
  auto request = NewFamily("tunnelguard_upstream_request_duration_seconds",
                           "Time from the first byte of a request the tunnel sent to the first "
                           "byte of the upstream's response.",
                           MetricType::Histogram);
  auto connect =
      NewFamily("tunnelguard_upstream_connect_duration_seconds",
                "Time from the tunnel's SYN to the established connection.", MetricType::Histogram);
  auto requests = NewFamily("tunnelguard_upstream_requests_total",
                            "Requests the upstream answered.", MetricType::Counter);
  auto connections = NewFamily("tunnelguard_upstream_connections_total",
                               "Connections to the upstream established (or found open at "
                               "attach).",
                               MetricType::Counter);
  auto failures = NewFamily("tunnelguard_upstream_connection_failures_total",
                            "Failed connections by reason: refused, timeout, reset, aborted.",
                            MetricType::Counter);
  auto sent = NewFamily("tunnelguard_upstream_sent_bytes_total",
                        "TCP payload bytes the tunnel sent to the upstream.", MetricType::Counter);
  auto received =
      NewFamily("tunnelguard_upstream_received_bytes_total",
                "TCP payload bytes the tunnel received from the upstream.", MetricType::Counter);
  auto retransmits = NewFamily("tunnelguard_upstream_retransmits_total",
                               "Retransmitted segments toward the upstream.", MetricType::Counter);
  auto open = NewFamily("tunnelguard_upstream_open_connections",
                        "Connections to the upstream open now.", MetricType::Gauge);

  for (const UpstreamStats& u : snapshot.upstreams) {
    // The probe measures each address on its own: `upstream` is one address.
    const Labels l = {{"entrypoint", u.name},
                      {"upstream", u.addresses.empty() ? "" : u.addresses[0]}};
    AddHistogram(request, l, u.request_latency);
    AddHistogram(connect, l, u.connect_latency);
    AddCounter(requests, l, static_cast<double>(u.requests));
    AddCounter(connections, l, static_cast<double>(u.connections + u.connections_adopted));
    const std::pair<const char*, uint64_t> reasons[] = {
        {"refused", u.refused}, {"timeout", u.timeout}, {"reset", u.reset}, {"aborted", u.aborted}};
    for (const auto& [reason, n] : reasons) {
      Labels with_reason = l;
      with_reason.push_back({"reason", reason});
      AddCounter(failures, with_reason, static_cast<double>(n));
    }
    AddCounter(sent, l, static_cast<double>(u.bytes_sent));
    AddCounter(received, l, static_cast<double>(u.bytes_received));
    AddCounter(retransmits, l, static_cast<double>(u.retransmits));
    AddGauge(open, l, static_cast<double>(u.open_connections()));
  }
  return {request, connect, requests, connections, failures, sent, received, retransmits, open};
}

std::vector<prometheus::MetricFamily> LatencyCollector::Collect() const {
  auto snapshot = snapshot_();
  if (!snapshot.ok()) {
    log::Warning("metrics: cannot read latency maps: {}", snapshot.error().message);
    return {};
  }
  return LatencyFamilies(*snapshot);
}

}  // namespace tg::exporter
