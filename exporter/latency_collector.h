// tunnelguard_upstream_*: per-upstream latency histograms and traffic counters, read from the
// kernel's per-CPU maps at each scrape. Labels: `entrypoint` (the upstream's configured name,
// Traefik's entry point: web, websecure) and `upstream` (its addresses, "127.0.0.1:80,[::1]:80").
#ifndef TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <span>
#include <vector>

#include "agent/latency/histogram.h"
#include "agent/latency/latency.h"

namespace tg::exporter {

// The metric families for one snapshot, histograms with `bounds` (ExportBoundsSeconds; pure:
// unit-tested on made-up snapshots).
std::vector<prometheus::MetricFamily> LatencyFamilies(
    const LatencySnapshot& snapshot, std::span<const double> bounds = DefaultCoarseBoundsSeconds());

class LatencyCollector : public prometheus::Collectable {
 public:
  using SnapshotFn = std::function<Result<LatencySnapshot>()>;
  // `per_decade`: --histogram-buckets-per-decade (0: the default bounds).
  explicit LatencyCollector(SnapshotFn snapshot, int per_decade = 0)
      : snapshot_(std::move(snapshot)), bounds_(ExportBoundsSeconds(per_decade)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  SnapshotFn snapshot_;
  std::vector<double> bounds_;
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_LATENCY_COLLECTOR_H_
