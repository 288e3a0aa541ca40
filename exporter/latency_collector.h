// tunnelguard_upstream_*: per-upstream latency histograms and traffic counters, read from the
// kernel's per-CPU maps at each scrape. Labels: `entrypoint` (the upstream's configured name,
// Traefik's entry point: web, websecure) and `upstream` (one address: "127.0.0.1:80").
#ifndef TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "agent/latency/histogram.h"
#include "agent/latency/latency.h"

namespace tg::exporter {

// The metric families for one snapshot, histograms at the kernel's resolution (AddHistogram;
// the exposition chooses their buckets). Pure: unit-tested on made-up snapshots.
std::vector<prometheus::MetricFamily> LatencyFamilies(const LatencySnapshot& snapshot);

class LatencyCollector : public prometheus::Collectable {
 public:
  using SnapshotFn = std::function<Result<LatencySnapshot>()>;
  explicit LatencyCollector(SnapshotFn snapshot) : snapshot_(std::move(snapshot)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  SnapshotFn snapshot_;
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_
