#include "agent/latency/histogram.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include "bpf/latency.h"

namespace tg {

uint32_t BucketIndex(uint64_t ns) { return tg_lat_bucket(ns); }

uint64_t BucketLowerNs(uint32_t index) {
  if (index < TG_LAT_SUB_BUCKETS) return index;
  const uint32_t row = index / TG_LAT_SUB_BUCKETS - 1;  // = log2(lower) - TG_LAT_SUB_BITS
  const uint64_t sub = index % TG_LAT_SUB_BUCKETS;
  return (TG_LAT_SUB_BUCKETS + sub) << row;
}

uint64_t BucketUpperNs(uint32_t index) {
  if (index < TG_LAT_SUB_BUCKETS) return index + 1;
  const uint32_t row = index / TG_LAT_SUB_BUCKETS - 1;
  return BucketLowerNs(index) + (uint64_t{1} << row);
}

void FineHistogram::Add(const FineHistogram& other) {
  count += other.count;
  sum_ns += other.sum_ns;
  max_ns = std::max(max_ns, other.max_ns);
  if (buckets.size() < other.buckets.size()) buckets.resize(other.buckets.size());
  for (size_t i = 0; i < other.buckets.size(); ++i) buckets[i] += other.buckets[i];
}

void FineHistogram::Record(uint64_t ns) {
  if (buckets.size() < TG_LAT_BUCKETS) buckets.resize(TG_LAT_BUCKETS);
  ++buckets[BucketIndex(ns)];
  ++count;
  sum_ns += ns;
  max_ns = std::max(max_ns, ns);
}

FineHistogram Delta(const FineHistogram& later, const FineHistogram& earlier) {
  FineHistogram d;
  d.count = later.count - std::min(later.count, earlier.count);
  d.sum_ns = later.sum_ns - std::min(later.sum_ns, earlier.sum_ns);
  d.buckets = later.buckets;
  for (size_t i = 0; i < d.buckets.size() && i < earlier.buckets.size(); ++i) {
    d.buckets[i] -= std::min(d.buckets[i], earlier.buckets[i]);
  }
  for (size_t i = d.buckets.size(); i-- > 0;) {
    if (d.buckets[i] != 0) {
      d.max_ns = std::min(later.max_ns, BucketUpperNs(static_cast<uint32_t>(i)));
      break;
    }
  }
  return d;
}

double QuantileSeconds(const FineHistogram& h, double q) {
  if (h.count == 0) return 0.0;
  if (q >= 1.0) return static_cast<double>(h.max_ns) * 1e-9;
  // Nearest rank: the smallest value with at least ceil(q * count) values at or below it.
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(h.count))));
  uint64_t seen = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    seen += h.buckets[i];
    if (seen >= rank) {
      const auto idx = static_cast<uint32_t>(i);
      const double lower = static_cast<double>(BucketLowerNs(idx));
      const double upper = static_cast<double>(BucketUpperNs(idx));
      // Buckets below 32 ns are one nanosecond wide and exact.
      const double mid = idx < TG_LAT_SUB_BUCKETS ? lower : (lower + upper) / 2.0;
      return std::min(mid, static_cast<double>(h.max_ns)) * 1e-9;
    }
  }
  return static_cast<double>(h.max_ns) * 1e-9;
}

std::span<const double> DefaultCoarseBoundsSeconds() {
  static constexpr std::array<double, 16> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                     1.0,    2.5,     5.0,    10.0};
  return kBounds;
}

std::vector<double> ExportBoundsSeconds(int per_decade) {
  if (per_decade <= 0) {
    const auto d = DefaultCoarseBoundsSeconds();
    return {d.begin(), d.end()};
  }
  std::vector<double> out;
  for (int i = 0;; ++i) {
    const double b = 1e-5 * std::pow(10.0, static_cast<double>(i) / per_decade);
    if (b > 60.0 * (1 + 1e-12)) break;
    out.push_back(b);
  }
  return out;
}

std::vector<uint64_t> CumulativeCounts(const FineHistogram& h, std::span<const double> bounds) {
  std::vector<uint64_t> out(bounds.size(), 0);
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    if (h.buckets[i] == 0) continue;
    const auto idx = static_cast<uint32_t>(i);
    const double mid_s =
        (static_cast<double>(BucketLowerNs(idx)) + static_cast<double>(BucketUpperNs(idx))) / 2.0 *
        1e-9;
    // Bounds are sorted: the first bound at or above the midpoint, and every later one.
    const auto first = std::lower_bound(bounds.begin(), bounds.end(), mid_s);
    for (auto it = first; it != bounds.end(); ++it) {
      out[static_cast<size_t>(it - bounds.begin())] += h.buckets[i];
    }
  }
  return out;
}

int32_t NativeIndex(double seconds) {
  return static_cast<int32_t>(
      std::ceil(std::log2(seconds) * (1 << NativeHistogram::kSchema) - 1e-9));
}

NativeHistogram ToNativeSchema5(const FineHistogram& h) {
  NativeHistogram n;
  if (!h.buckets.empty()) n.zero_count = h.buckets[0];  // [0, 1) ns: exactly 0
  std::map<int32_t, uint64_t> by_index;
  for (size_t i = 1; i < h.buckets.size(); ++i) {
    if (h.buckets[i] == 0) continue;
    const auto idx = static_cast<uint32_t>(i);
    const double mid_ns =
        (static_cast<double>(BucketLowerNs(idx)) + static_cast<double>(BucketUpperNs(idx))) / 2.0;
    by_index[NativeIndex(mid_ns * 1e-9)] += h.buckets[i];
  }
  if (by_index.empty()) return n;
  n.first_index = by_index.begin()->first;
  n.counts.assign(static_cast<size_t>(by_index.rbegin()->first - n.first_index + 1), 0);
  for (const auto& [i, c] : by_index) n.counts[static_cast<size_t>(i - n.first_index)] = c;
  return n;
}

}  // namespace tg
