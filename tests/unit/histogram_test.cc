// The fine log-linear layout (shared with the BPF program), quantiles and the coarse
// Prometheus buckets derived from it.
#include "agent/latency/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bpf/latency.h"

namespace tg {
namespace {

FineHistogram Fill(const std::vector<uint64_t>& values) {
  FineHistogram h;
  for (const uint64_t v : values) h.Record(v);
  return h;
}

double ExactQuantile(std::vector<uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return static_cast<double>(v[rank - 1]) * 1e-9;
}

TEST(HistogramLayout, EveryValueLiesInItsBucketAndBucketsAreNarrow) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values = {0, 1, 31, 32, 33, 63, 64, 1000, 999'999, 1'000'000, 1ull << 37};
  for (int i = 0; i < 200000; ++i) values.push_back(rng() >> (rng() % 40 + 24));
  for (const uint64_t v : values) {
    const uint32_t b = BucketIndex(v);
    ASSERT_LT(b, TG_LAT_BUCKETS);
    if (v >> (TG_LAT_MAX_LOG2 + 1) != 0) {  // beyond ~550 s: clamped, tested below
      EXPECT_EQ(b, TG_LAT_BUCKETS - 1);
      continue;
    }
    EXPECT_LE(BucketLowerNs(b), v) << v;
    EXPECT_LT(v, BucketUpperNs(b)) << v;
    // Width at most 1/32 of the lower bound (above the exact nanosecond range).
    if (v >= TG_LAT_SUB_BUCKETS) {
      EXPECT_LE((BucketUpperNs(b) - BucketLowerNs(b)) * 32, BucketLowerNs(b)) << v;
    }
  }
}

TEST(HistogramLayout, BucketsAreContiguousAndOrdered) {
  for (uint32_t b = 0; b + 1 < TG_LAT_BUCKETS; ++b) {
    ASSERT_EQ(BucketUpperNs(b), BucketLowerNs(b + 1)) << b;
    ASSERT_EQ(BucketIndex(BucketLowerNs(b)), b);
  }
}

TEST(HistogramLayout, HugeValuesClampToTheLastBucket) {
  EXPECT_EQ(BucketIndex(~0ull), TG_LAT_BUCKETS - 1);
  EXPECT_EQ(BucketIndex(1ull << 45), TG_LAT_BUCKETS - 1);
}

TEST(Quantiles, WithinThreePercentOfExactForVariedDistributions) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> lognormal(std::log(2e6), 1.0);  // ~2 ms median
  std::vector<uint64_t> v;
  for (int i = 0; i < 50000; ++i) v.push_back(static_cast<uint64_t>(lognormal(rng)));
  // A bimodal mix like the accuracy tests' (1 ms and 100 ms).
  for (int i = 0; i < 5000; ++i) v.push_back(100'000'000 + rng() % 2'000'000);
  const FineHistogram h = Fill(v);
  for (const double q : {0.01, 0.25, 0.5, 0.9, 0.99, 0.999}) {
    const double exact = ExactQuantile(v, q);
    EXPECT_NEAR(QuantileSeconds(h, q), exact, exact * 0.03) << "q=" << q;
  }
  EXPECT_DOUBLE_EQ(QuantileSeconds(h, 1.0), static_cast<double>(h.max_ns) * 1e-9);
}

TEST(Quantiles, EmptyIsZeroAndSmallValuesAreExact) {
  EXPECT_EQ(QuantileSeconds(FineHistogram{}, 0.5), 0.0);
  const FineHistogram h = Fill({5, 5, 7});
  EXPECT_DOUBLE_EQ(QuantileSeconds(h, 0.5), 5e-9);
  EXPECT_DOUBLE_EQ(QuantileSeconds(h, 0.99), 7e-9);
}

TEST(Quantiles, NeverAboveTheRecordedMax) {
  const FineHistogram h = Fill({1'000'000, 1'000'001});
  EXPECT_LE(QuantileSeconds(h, 0.99), static_cast<double>(h.max_ns) * 1e-9);
}

TEST(CoarseBuckets, CumulativeAndMonotonicWithExactTotals) {
  // 10 values at 50 us, 20 at 2 ms, 5 at 3 s.
  std::vector<uint64_t> v(10, 50'000);
  v.insert(v.end(), 20, 2'000'000);
  v.insert(v.end(), 5, 3'000'000'000);
  const FineHistogram h = Fill(v);
  const auto bounds = DefaultCoarseBoundsSeconds();
  const auto c = CumulativeCounts(h, bounds);
  ASSERT_EQ(c.size(), bounds.size());
  for (size_t i = 0; i < bounds.size(); ++i) {
    uint64_t expected = 0;
    for (const uint64_t x : v) expected += static_cast<double>(x) * 1e-9 <= bounds[i] ? 1 : 0;
    EXPECT_EQ(c[i], expected) << "le=" << bounds[i];
    if (i > 0) {
      EXPECT_GE(c[i], c[i - 1]);
    }
  }
  EXPECT_EQ(c.back(), 35u);  // le=10 s holds everything, 3 s included
  EXPECT_EQ(c[0], 10u);      // le=100 us: only the 50 us values
}

TEST(CoarseBuckets, BoundsStartSubMillisecondAndEndAtTenSeconds) {
  const auto b = DefaultCoarseBoundsSeconds();
  EXPECT_DOUBLE_EQ(b.front(), 0.0001);
  EXPECT_DOUBLE_EQ(b.back(), 10.0);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(CoarseBuckets, ExportBoundsPerDecadeSpan10usTo60s) {
  EXPECT_EQ(ExportBoundsSeconds(0).size(), DefaultCoarseBoundsSeconds().size());
  for (const int n : {1, 10, 40, kMaxBucketsPerDecade}) {
    const auto b = ExportBoundsSeconds(n);
    ASSERT_FALSE(b.empty());
    EXPECT_DOUBLE_EQ(b.front(), 1e-5);
    EXPECT_LE(b.back(), 60.0);
    EXPECT_GT(b.back() * std::pow(10.0, 1.0 / n), 60.0) << n;  // the last one that fits
    EXPECT_NEAR(b[static_cast<size_t>(n)], 1e-4, 1e-16) << n;  // one decade up
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  }
  // 10 us .. 60 s is 6.8 decades: 272 bounds, 273 buckets with +Inf (275 series with _sum, _count).
  EXPECT_EQ(ExportBoundsSeconds(40).size(), 272u);
}

TEST(Delta, SubtractsCountsAndBuckets) {
  const FineHistogram before = Fill({1000, 2000});
  const FineHistogram after = Fill({1000, 2000, 5'000'000});
  const FineHistogram d = Delta(after, before);
  EXPECT_EQ(d.count, 1u);
  EXPECT_EQ(d.sum_ns, 5'000'000u);
  EXPECT_NEAR(QuantileSeconds(d, 0.5), 5e-3, 5e-3 * 0.03);
  EXPECT_LE(d.max_ns, after.max_ns);
}

}  // namespace
}  // namespace tg
