// What the latency probe reads from the kernel, as plain values: per-upstream counters and
// fine histograms, and the difference between two reads. No libbpf here, so clients such as
// tunnelctl use the same types and functions as the agent without linking the loader.
#ifndef TUNNELGUARD_AGENT_LATENCY_SNAPSHOT_H_
#define TUNNELGUARD_AGENT_LATENCY_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "agent/latency/histogram.h"

namespace tg {

// Sums over all CPUs for one upstream.
struct UpstreamStats {
  std::string name;
  std::vector<std::string> addresses;
  uint64_t requests = 0;
  uint64_t connections = 0;          // established
  uint64_t connections_adopted = 0;  // already open when we attached (see bpf/latency.bpf.c)
  uint64_t connections_closed = 0;   // established or adopted ones that closed
  uint64_t connect_attempts = 0;     // connects to the upstream (established or not)
  uint64_t refused = 0;
  uint64_t timeout = 0;
  uint64_t reset = 0;
  uint64_t aborted = 0;  // closed while still connecting, without an error
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t retransmits = 0;
  uint64_t tls_handshake_turns = 0;
  uint64_t tls_h2_turns = 0;  // answered turns of TLS connections offering h2: not requests
  uint64_t flows_closed = 0;
  FineHistogram request_latency;
  FineHistogram connect_latency;

  uint64_t open_connections() const {
    const uint64_t opened = connections + connections_adopted;
    return opened >= connections_closed ? opened - connections_closed : 0;
  }
  // Sockets that hold flow state right now (accounting view; FlowCount() is the census).
  uint64_t live_flows() const {
    return connect_attempts >= flows_closed ? connect_attempts - flows_closed : 0;
  }
};

struct LatencySnapshot {
  std::vector<UpstreamStats> upstreams;
};

// What changed between two snapshots of the same probe (for per-interval views).
LatencySnapshot Delta(const LatencySnapshot& later, const LatencySnapshot& earlier);

// Every counter of UpstreamStats with the name of its field in the gRPC UpstreamStats message
// (nullptr: not sent). Delta, the gRPC service and tunnelctl walk this one list, so a counter
// is added here once.
struct UpstreamCounter {
  uint64_t UpstreamStats::*member;
  const char* proto_field;
};
inline constexpr UpstreamCounter kUpstreamCounters[] = {
    {&UpstreamStats::requests, "requests"},
    {&UpstreamStats::connections, "connections"},
    {&UpstreamStats::connections_adopted, "connections_adopted"},
    {&UpstreamStats::connections_closed, "connections_closed"},
    {&UpstreamStats::connect_attempts, "connect_attempts"},
    {&UpstreamStats::refused, "failures_refused"},
    {&UpstreamStats::timeout, "failures_timeout"},
    {&UpstreamStats::reset, "failures_reset"},
    {&UpstreamStats::aborted, "failures_aborted"},
    {&UpstreamStats::bytes_sent, "bytes_sent"},
    {&UpstreamStats::bytes_received, "bytes_received"},
    {&UpstreamStats::retransmits, "retransmits"},
    {&UpstreamStats::tls_handshake_turns, "tls_handshake_turns"},
    {&UpstreamStats::tls_h2_turns, "tls_h2_turns"},
    {&UpstreamStats::flows_closed, nullptr},
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_LATENCY_SNAPSHOT_H_
