#include "agent/latency/snapshot.h"

namespace tg {
namespace {

UpstreamStats DeltaOf(const UpstreamStats& later, const UpstreamStats& earlier) {
  UpstreamStats s = later;
  for (const auto& c : kUpstreamCounters) {
    const uint64_t a = later.*c.member, b = earlier.*c.member;
    s.*c.member = a >= b ? a - b : 0;
  }
  s.request_latency = Delta(later.request_latency, earlier.request_latency);
  s.connect_latency = Delta(later.connect_latency, earlier.connect_latency);
  return s;
}

}  // namespace

LatencySnapshot Delta(const LatencySnapshot& later, const LatencySnapshot& earlier) {
  LatencySnapshot out;
  for (size_t i = 0; i < later.upstreams.size(); ++i) {
    out.upstreams.push_back(i < earlier.upstreams.size()
                                ? DeltaOf(later.upstreams[i], earlier.upstreams[i])
                                : later.upstreams[i]);
  }
  return out;
}

}  // namespace tg
