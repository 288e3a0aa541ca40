#include "exporter/family_builder.h"

#include <cmath>
#include <limits>

#include "bpf/latency.h"

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

void AddHistogram(prometheus::MetricFamily& f, Labels labels, const FineHistogram& h) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    if (h.buckets[i] == 0) continue;
    cumulative += h.buckets[i];
    const auto upper_ns = BucketUpperNs(static_cast<uint32_t>(i));
    m.histogram.bucket.push_back({cumulative, static_cast<double>(upper_ns) / 1e9});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(m));
}

std::optional<FineHistogram> FineFromHistogram(const prometheus::ClientMetric::Histogram& h) {
  FineHistogram fine;
  fine.count = h.sample_count;
  fine.sum_ns = static_cast<uint64_t>(std::llround(h.sample_sum * 1e9));
  fine.buckets.assign(TG_LAT_BUCKETS, 0);
  uint64_t previous = 0;
  for (const auto& b : h.bucket) {
    if (std::isinf(b.upper_bound)) break;
    const auto upper_ns = static_cast<uint64_t>(std::llround(b.upper_bound * 1e9));
    if (upper_ns == 0 || b.cumulative_count < previous) return std::nullopt;
    const uint32_t idx = BucketIndex(upper_ns - 1);
    if (BucketUpperNs(idx) != upper_ns) return std::nullopt;
    fine.buckets[idx] += b.cumulative_count - previous;
    fine.max_ns = upper_ns;
    previous = b.cumulative_count;
  }
  return fine;
}

}  // namespace tg::exporter
