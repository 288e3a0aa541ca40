#include "exporter/family_builder.h"

#include <limits>

namespace tg::exporter {

prometheus::MetricFamily NewFamily(std::string name, std::string help,
                                   prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddCounter(prometheus::MetricFamily& f, Labels labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  f.metric.push_back(std::move(m));
}

void AddGauge(prometheus::MetricFamily& f, Labels labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

void AddHistogram(prometheus::MetricFamily& f, Labels labels, const FineHistogram& h,
                  std::span<const double> bounds) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
  const std::vector<uint64_t> cumulative = CumulativeCounts(h, bounds);
  for (size_t i = 0; i < bounds.size(); ++i) {
    m.histogram.bucket.push_back({cumulative[i], bounds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(m));
}

}  // namespace tg::exporter
