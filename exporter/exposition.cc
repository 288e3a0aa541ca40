#include "exporter/exposition.h"

#include <google/protobuf/util/delimited_message_util.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <limits>
#include <sstream>

#include "agent/base/log.h"
#include "agent/base/text.h"
#include "agent/latency/histogram.h"
#include "exporter/family_builder.h"
#include "exporter/labelled_collectable.h"
#include "prometheus/exposition.pb.h"

namespace tg::exporter {
namespace {

namespace pb = io::prometheus::client;

constexpr std::string_view kText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kProtobuf =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
    "encoding=delimited";
// Anything above 0 marks a histogram as native in Prometheus even before its first value; the
// zero bucket then holds only values of exactly 0 (Prometheus's client libraries use 2^-128).
constexpr double kZeroThreshold = 2.938735877055719e-39;

// One media range of an Accept header: its type, whether it is Prometheus's delimited
// MetricFamily protobuf, and its quality.
struct MediaRange {
  std::string type;
  bool metric_family_delimited = false;
  double q = 1.0;
};

MediaRange ParseMediaRange(std::string_view range) {
  MediaRange m;
  bool proto = false, delimited = false;
  size_t start = 0;
  for (bool first = true; start <= range.size(); first = false) {
    const size_t end = std::min(range.find(';', start), range.size());
    const std::string part = Lower(Trim(range.substr(start, end - start)));
    start = end + 1;
    if (first) {
      m.type = part;
      continue;
    }
    const auto eq = part.find('=');
    if (eq == std::string::npos) continue;
    const std::string key(Trim(std::string_view(part).substr(0, eq)));
    const std::string value(Trim(std::string_view(part).substr(eq + 1)));
    if (key == "q") m.q = std::strtod(value.c_str(), nullptr);
    if (key == "proto") proto = value == "io.prometheus.client.metricfamily";
    if (key == "encoding") delimited = value == "delimited";
  }
  m.metric_family_delimited = m.type == "application/vnd.google.protobuf" && proto && delimited;
  return m;
}

// Histograms carrying the kernel's buckets get classic buckets at `bounds`; `native` (when not
// null) receives each one's native buckets, in family and series order.
void Rebin(std::vector<prometheus::MetricFamily>& families, std::span<const double> bounds,
           std::vector<std::optional<NativeHistogram>>* native) {
  for (auto& f : families) {
    if (f.type != prometheus::MetricType::Histogram) continue;
    for (auto& m : f.metric) {
      const std::optional<FineHistogram> fine = FineFromHistogram(m.histogram);
      if (native) native->push_back(fine ? std::optional(ToNativeSchema5(*fine)) : std::nullopt);
      if (!fine) continue;
      const std::vector<uint64_t> cumulative = CumulativeCounts(*fine, bounds);
      m.histogram.bucket.clear();
      for (size_t i = 0; i < bounds.size(); ++i) {
        m.histogram.bucket.push_back({cumulative[i], bounds[i]});
      }
      m.histogram.bucket.push_back({fine->count, std::numeric_limits<double>::infinity()});
    }
  }
}

pb::MetricType ProtoType(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return pb::COUNTER;
    case prometheus::MetricType::Gauge:
      return pb::GAUGE;
    case prometheus::MetricType::Summary:
      return pb::SUMMARY;
    case prometheus::MetricType::Histogram:
      return pb::HISTOGRAM;
    case prometheus::MetricType::Untyped:
      break;
  }
  return pb::UNTYPED;
}

void SetNative(const NativeHistogram& n, pb::Histogram* out) {
  out->set_schema(NativeHistogram::kSchema);
  out->set_zero_threshold(kZeroThreshold);
  out->set_zero_count(n.zero_count);
  // Spans skip runs of empty buckets longer than two (a delta per bucket costs more).
  int64_t previous_count = 0;
  int32_t next_index = 0;  // the index after the last bucket written
  pb::BucketSpan* span = nullptr;
  for (size_t k = 0; k < n.counts.size(); ++k) {
    if (n.counts[k] == 0) continue;
    const int32_t index = n.first_index + static_cast<int32_t>(k);
    const int32_t gap = index - next_index;
    if (span == nullptr || gap > 2) {
      span = out->add_positive_span();
      span->set_offset(out->positive_span_size() == 1 ? index : gap);
    } else {
      for (int32_t g = 0; g < gap; ++g) {  // short run of empty buckets: written as zeros
        out->add_positive_delta(-previous_count);
        previous_count = 0;
      }
      span->set_length(span->length() + static_cast<uint32_t>(gap));
    }
    const auto count = static_cast<int64_t>(n.counts[k]);
    out->add_positive_delta(count - previous_count);
    previous_count = count;
    span->set_length(span->length() + 1);
    next_index = index + 1;
  }
}

void SetMetric(const prometheus::MetricFamily& f, const prometheus::ClientMetric& m,
               const std::optional<NativeHistogram>* native, pb::Metric* out) {
  for (const auto& l : m.label) {
    auto* pair = out->add_label();
    pair->set_name(l.name);
    pair->set_value(l.value);
  }
  switch (f.type) {
    case prometheus::MetricType::Counter:
      out->mutable_counter()->set_value(m.counter.value);
      break;
    case prometheus::MetricType::Gauge:
      out->mutable_gauge()->set_value(m.gauge.value);
      break;
    case prometheus::MetricType::Untyped:
      out->mutable_untyped()->set_value(m.untyped.value);
      break;
    case prometheus::MetricType::Summary: {
      auto* s = out->mutable_summary();
      s->set_sample_count(m.summary.sample_count);
      s->set_sample_sum(m.summary.sample_sum);
      for (const auto& q : m.summary.quantile) {
        auto* pq = s->add_quantile();
        pq->set_quantile(q.quantile);
        pq->set_value(q.value);
      }
      break;
    }
    case prometheus::MetricType::Histogram: {
      auto* h = out->mutable_histogram();
      h->set_sample_count(m.histogram.sample_count);
      h->set_sample_sum(m.histogram.sample_sum);
      for (const auto& b : m.histogram.bucket) {
        auto* pb_bucket = h->add_bucket();
        pb_bucket->set_cumulative_count(b.cumulative_count);
        pb_bucket->set_upper_bound(b.upper_bound);
      }
      if (native != nullptr && native->has_value()) SetNative(**native, h);
      break;
    }
  }
}

std::string RenderProtobuf(const std::vector<prometheus::MetricFamily>& families,
                           const std::vector<std::optional<NativeHistogram>>& native) {
  std::ostringstream out;
  size_t next_native = 0;
  for (const auto& f : families) {
    pb::MetricFamily pf;
    pf.set_name(f.name);
    pf.set_help(f.help);
    pf.set_type(ProtoType(f.type));
    for (const auto& m : f.metric) {
      const bool histogram = f.type == prometheus::MetricType::Histogram;
      SetMetric(f, m, histogram ? &native[next_native++] : nullptr, pf.add_metric());
    }
    google::protobuf::util::SerializeDelimitedToOstream(pf, &out);
  }
  return std::move(out).str();
}

}  // namespace

Exposition NegotiateExposition(std::string_view accept) {
  double protobuf_q = 0, text_q = 0;
  size_t start = 0;
  while (start <= accept.size()) {
    const size_t end = std::min(accept.find(',', start), accept.size());
    const MediaRange m = ParseMediaRange(accept.substr(start, end - start));
    start = end + 1;
    if (m.metric_family_delimited) {
      protobuf_q = std::max(protobuf_q, m.q);
    } else if (m.type == "text/plain" || m.type == "text/*" || m.type == "*/*" ||
               m.type == "application/openmetrics-text") {
      text_q = std::max(text_q, m.q);
    }
  }
  return protobuf_q > 0 && protobuf_q >= text_q ? Exposition::kProtobuf : Exposition::kText;
}

std::string_view ContentType(Exposition format) {
  return format == Exposition::kProtobuf ? kProtobuf : kText;
}

std::string Render(std::vector<prometheus::MetricFamily> families, Exposition format,
                   std::span<const double> classic_bounds) {
  if (format == Exposition::kText) {
    Rebin(families, classic_bounds, nullptr);
    return prometheus::TextSerializer().Serialize(families);
  }
  std::vector<std::optional<NativeHistogram>> native;
  Rebin(families, classic_bounds, &native);
  return RenderProtobuf(families, native);
}

std::optional<std::string> SerializeCollectables(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables, Exposition format,
    std::span<const double> classic_bounds) {
  std::vector<prometheus::MetricFamily> families;
  try {
    for (const auto& c : collectables) {
      auto f = c->Collect();
      families.insert(families.end(), std::make_move_iterator(f.begin()),
                      std::make_move_iterator(f.end()));
    }
    // Each tunnel's collectors return the same families (told apart by their unit label).
    return Render(MergeFamilies(std::move(families)), format, classic_bounds);
  } catch (const std::exception& e) {
    log::Error("/metrics: a collector failed: {}", e.what());
    return std::nullopt;
  }
}

}  // namespace tg::exporter
