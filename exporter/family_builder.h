// Small helpers to build prometheus-cpp MetricFamily values by hand, as Collectables that read
// their numbers at scrape time must (no Registry, no stored counters).
#ifndef TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_
#define TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_

#include <prometheus/metric_family.h>

#include <span>
#include <string>
#include <vector>

#include "agent/latency/histogram.h"

namespace tg::exporter {

using Labels = std::vector<prometheus::ClientMetric::Label>;

prometheus::MetricFamily NewFamily(std::string name, std::string help, prometheus::MetricType type);
void AddCounter(prometheus::MetricFamily& f, Labels labels, double value);
void AddGauge(prometheus::MetricFamily& f, Labels labels, double value);
// A Prometheus histogram from a kernel fine histogram: `bounds` in seconds, cumulative counts
// derived at scrape time (CumulativeCounts), sum converted from nanoseconds.
void AddHistogram(prometheus::MetricFamily& f, Labels labels, const FineHistogram& h,
                  std::span<const double> bounds);

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_
