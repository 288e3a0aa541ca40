// Small helpers to build prometheus-cpp MetricFamily values by hand, as Collectables that read
// their numbers at scrape time must (no Registry, no stored counters).
#ifndef TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_
#define TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_

#include <prometheus/metric_family.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/latency/histogram.h"

namespace tg::exporter {

using Labels = std::vector<prometheus::ClientMetric::Label>;

prometheus::MetricFamily NewFamily(std::string name, std::string help, prometheus::MetricType type);
void AddCounter(prometheus::MetricFamily& f, Labels labels, double value);
void AddGauge(prometheus::MetricFamily& f, Labels labels, double value);
// A histogram at the kernel's full resolution: its buckets are the kernel's non-empty fine
// buckets (upper bound in seconds, cumulative count), sum converted from nanoseconds. The
// exposition decides what a scraper gets from it (RenderText/RenderProtobuf: classic buckets
// at the configured bounds, and native buckets when the scraper takes them), so the density
// is chosen once, where the page is written.
void AddHistogram(prometheus::MetricFamily& f, Labels labels, const FineHistogram& h);
// The kernel histogram an AddHistogram series carries; nullopt when `h` is not one (a bound
// that is not a kernel bucket's upper bound): such a histogram is served as it is.
std::optional<FineHistogram> FineFromHistogram(const prometheus::ClientMetric::Histogram& h);

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_FAMILY_BUILDER_H_
