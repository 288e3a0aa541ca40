// What a scrape gets: format negotiation, the text page's classic buckets, and the protobuf
// page read back with the schema (delimited MetricFamily messages, native buckets decoded the
// way Prometheus decodes them, quantiles interpolated the way PromQL does).
#include "exporter/exposition.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/latency/histogram.h"
#include "exporter/family_builder.h"
#include "exporter/latency_collector.h"
#include "prometheus/exposition.pb.h"

namespace tg::exporter {
namespace {

namespace pb = io::prometheus::client;

// Prometheus 2.42's Accept headers, without and with --enable-feature=native-histograms.
constexpr char kPrometheusText[] =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
constexpr char kPrometheusNative[] =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding="
    "delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

TEST(Exposition, ProtobufOnlyWhenTheScraperPrefersPrometheusDelimitedMetricFamilies) {
  EXPECT_EQ(NegotiateExposition(kPrometheusNative), Exposition::kProtobuf);
  EXPECT_EQ(NegotiateExposition(kPrometheusText), Exposition::kText);
  EXPECT_EQ(NegotiateExposition(""), Exposition::kText);     // curl without -H, busybox wget
  EXPECT_EQ(NegotiateExposition("*/*"), Exposition::kText);  // curl
  EXPECT_EQ(NegotiateExposition("APPLICATION/VND.GOOGLE.PROTOBUF; PROTO=io.prometheus.client."
                                "MetricFamily; Encoding=Delimited"),
            Exposition::kProtobuf);
  // Another message, another encoding, or text preferred: text.
  EXPECT_EQ(NegotiateExposition("application/vnd.google.protobuf;proto=foo.Bar;encoding=delimited"),
            Exposition::kText);
  EXPECT_EQ(NegotiateExposition("application/vnd.google.protobuf;proto=io.prometheus.client."
                                "MetricFamily;encoding=text"),
            Exposition::kText);
  EXPECT_EQ(NegotiateExposition("text/plain;q=0.9,application/vnd.google.protobuf;proto=io."
                                "prometheus.client.MetricFamily;encoding=delimited;q=0.5"),
            Exposition::kText);
  EXPECT_NE(ContentType(Exposition::kProtobuf).find("encoding=delimited"), std::string::npos);
  EXPECT_EQ(ContentType(Exposition::kText).substr(0, 10), "text/plain");
}

FineHistogram Record(const std::vector<uint64_t>& ns) {
  FineHistogram h;
  for (uint64_t v : ns) h.Record(v);
  return h;
}

std::vector<prometheus::MetricFamily> OneHistogram(const FineHistogram& h) {
  auto f = NewFamily("x_seconds", "help", prometheus::MetricType::Histogram);
  AddHistogram(f, {{"upstream", "127.0.0.1:80"}}, h);
  auto c = NewFamily("x_total", "help", prometheus::MetricType::Counter);
  AddCounter(c, {}, 7);
  return {f, c};
}

TEST(Exposition, TextHasClassicBucketsAtTheConfiguredBounds) {
  const FineHistogram h = Record({200'000, 3'000'000, 40'000'000});  // 0.2, 3, 40 ms
  const std::string page = Render(OneHistogram(h), Exposition::kText, ExportBoundsSeconds(0));
  for (const char* line : {"x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"0.0001\"} 0",
                           "x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"0.00025\"} 1",
                           "x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"0.0025\"} 1",
                           "x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"0.005\"} 2",
                           "x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"0.05\"} 3",
                           "x_seconds_bucket{upstream=\"127.0.0.1:80\",le=\"+Inf\"} 3",
                           "x_seconds_count{upstream=\"127.0.0.1:80\"} 3", "x_total 7"}) {
    EXPECT_NE(page.find(line), std::string::npos) << line << "\n" << page;
  }
  // 40 per decade from 10 us to 60 s: 272 bounds and +Inf.
  const std::string dense = Render(OneHistogram(h), Exposition::kText, ExportBoundsSeconds(40));
  size_t buckets = 0;
  for (size_t at = 0; (at = dense.find("x_seconds_bucket{", at)) != std::string::npos; ++at) {
    ++buckets;
  }
  EXPECT_EQ(buckets, 273u);
}

std::vector<pb::MetricFamily> ParsePage(const std::string& page) {
  google::protobuf::io::ArrayInputStream in(page.data(), static_cast<int>(page.size()));
  std::vector<pb::MetricFamily> out;
  for (;;) {
    pb::MetricFamily f;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&f, &in, &clean_eof)) {
      EXPECT_TRUE(clean_eof) << "a truncated or malformed message";
      return out;
    }
    out.push_back(std::move(f));
  }
}

// Native bucket index -> count, decoded from spans and deltas as Prometheus does.
std::map<int32_t, uint64_t> DecodeNative(const pb::Histogram& h) {
  std::map<int32_t, uint64_t> out;
  int32_t index = 0;
  int64_t count = 0;
  int delta = 0;
  for (const auto& span : h.positive_span()) {
    index += span.offset();
    for (uint32_t k = 0; k < span.length(); ++k, ++index) {
      count += h.positive_delta(delta++);
      EXPECT_GE(count, 0);
      if (count > 0) out[index] = static_cast<uint64_t>(count);
    }
  }
  EXPECT_EQ(delta, h.positive_delta_size()) << "every delta belongs to a span";
  return out;
}

// PromQL's histogram_quantile on a native histogram (Prometheus 2.42, promql/quantile.go):
// the bucket holding rank q*count, interpolated linearly between its bounds.
double PromqlQuantile(const std::map<int32_t, uint64_t>& buckets, uint64_t zero, double q) {
  uint64_t total = zero;
  for (const auto& [i, c] : buckets) total += c;
  const double rank = q * static_cast<double>(total);
  double seen = static_cast<double>(zero);
  if (seen >= rank) return 0;
  for (const auto& [i, c] : buckets) {
    if (seen + static_cast<double>(c) >= rank) {
      const double lower = std::exp2((i - 1) / 32.0), upper = std::exp2(i / 32.0);
      return lower + (upper - lower) * (rank - seen) / static_cast<double>(c);
    }
    seen += static_cast<double>(c);
  }
  return std::exp2(buckets.rbegin()->first / 32.0);
}

// Shapes the bucket layouts were not tuned on (bench/quantile_accuracy.sh measures the same
// ones through a real Prometheus).
std::vector<std::pair<std::string, FineHistogram>> Shapes() {
  auto spread = [](std::vector<uint64_t>& out, double from_s, double to_s, int n) {
    for (int i = 0; i < n; ++i) {
      out.push_back(static_cast<uint64_t>((from_s + (to_s - from_s) * (i + 0.5) / n) * 1e9));
    }
  };
  std::vector<std::pair<std::string, FineHistogram>> shapes;
  std::vector<uint64_t> v;
  spread(v, 0.002, 0.003, 20000);
  shapes.push_back({"uniform 2-3 ms", Record(v)});
  v.clear();
  spread(v, 30e-6, 80e-6, 20000);
  shapes.push_back({"connects 30-80 us", Record(v)});
  v.clear();
  spread(v, 0.001, 0.0011, 18000);  // p90 is the last value of the first mode: a sharp edge
  spread(v, 0.1, 0.11, 2000);
  shapes.push_back({"bimodal 1 ms / 100 ms", Record(v)});
  v.clear();
  spread(v, 0.01, 0.02, 19800);
  spread(v, 4.0, 6.0, 200);
  shapes.push_back({"5 s tails", Record(v)});
  return shapes;
}

TEST(Exposition, ProtobufCarriesClassicAndNativeBucketsAndEveryOtherSeries) {
  const FineHistogram h = Record({0, 200'000, 3'000'000, 3'000'100, 40'000'000});
  const auto families =
      ParsePage(Render(OneHistogram(h), Exposition::kProtobuf, ExportBoundsSeconds(0)));
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[1].name(), "x_total");
  EXPECT_EQ(families[1].type(), pb::COUNTER);
  EXPECT_EQ(families[1].metric(0).counter().value(), 7);
  const pb::MetricFamily& f = families[0];
  EXPECT_EQ(f.name(), "x_seconds");
  EXPECT_EQ(f.type(), pb::HISTOGRAM);
  ASSERT_EQ(f.metric_size(), 1);
  EXPECT_EQ(f.metric(0).label(0).name(), "upstream");
  EXPECT_EQ(f.metric(0).label(0).value(), "127.0.0.1:80");
  const pb::Histogram& ph = f.metric(0).histogram();
  EXPECT_EQ(ph.sample_count(), 5u);
  EXPECT_NEAR(ph.sample_sum(), 0.0462001, 1e-9);
  ASSERT_EQ(ph.bucket_size(), 17);  // the 16 default bounds and +Inf
  EXPECT_EQ(ph.bucket(1).upper_bound(), 0.00025);
  EXPECT_EQ(ph.bucket(1).cumulative_count(), 2u);  // the 0 and the 0.2 ms
  EXPECT_EQ(ph.schema(), 5);
  EXPECT_GT(ph.zero_threshold(), 0) << "marks the histogram native";
  EXPECT_EQ(ph.zero_count(), 1u);
  const auto native = DecodeNative(ph);
  uint64_t total = ph.zero_count();
  for (const auto& [i, c] : native) total += c;
  EXPECT_EQ(total, 5u) << "native counts sum to the exact count";
  // Each value lands in its native bucket or a neighbour (its kernel bucket, 1.6-3.1 % wide,
  // may straddle an edge of the 2.2 % wide native ones).
  for (double s : {0.0002, 0.003, 0.04}) {
    const int32_t i = NativeIndex(s);
    EXPECT_TRUE(native.count(i - 1) || native.count(i) || native.count(i + 1)) << s;
  }
  // An empty histogram is still native (zero_threshold set), so Prometheus keeps its type.
  const auto empty = ParsePage(
      Render(OneHistogram(FineHistogram{}), Exposition::kProtobuf, ExportBoundsSeconds(0)));
  EXPECT_GT(empty[0].metric(0).histogram().zero_threshold(), 0);
  EXPECT_EQ(empty[0].metric(0).histogram().positive_span_size(), 0);
}

TEST(Exposition, NativeQuantilesAreWithinThreePercentOfTheKernels) {
  for (const auto& [name, h] : Shapes()) {
    const auto families =
        ParsePage(Render(OneHistogram(h), Exposition::kProtobuf, ExportBoundsSeconds(0)));
    const pb::Histogram& ph = families.at(0).metric(0).histogram();
    const auto native = DecodeNative(ph);
    uint64_t total = ph.zero_count();
    for (const auto& [i, c] : native) total += c;
    EXPECT_EQ(total, h.count) << name;
    for (double q : {0.5, 0.9, 0.99}) {
      const double kernel = QuantileSeconds(h, q), promql = PromqlQuantile(native, 0, q);
      EXPECT_NEAR(promql / kernel, 1.0, 0.03)
          << name << " p" << q * 100 << ": kernel " << kernel << " s, PromQL " << promql << " s";
    }
  }
}

TEST(Exposition, AHistogramNotInTheKernelsLayoutIsServedAsItIs) {
  auto f = NewFamily("other_seconds", "help", prometheus::MetricType::Histogram);
  prometheus::ClientMetric m;
  m.histogram.sample_count = 2;
  m.histogram.bucket = {{1, 0.1}, {2, 1.0}, {2, std::numeric_limits<double>::infinity()}};
  f.metric.push_back(m);
  const std::string page = Render({f}, Exposition::kText, ExportBoundsSeconds(0));
  EXPECT_NE(page.find("other_seconds_bucket{le=\"0.1\"} 1"), std::string::npos) << page;
  EXPECT_EQ(page.find("le=\"0.00025\""), std::string::npos) << page;
  const auto parsed = ParsePage(Render({f}, Exposition::kProtobuf, ExportBoundsSeconds(0)));
  EXPECT_EQ(parsed.at(0).metric(0).histogram().bucket_size(), 3);
  EXPECT_EQ(parsed.at(0).metric(0).histogram().schema(), 0) << "no native buckets made up";
}

}  // namespace
}  // namespace tg::exporter
