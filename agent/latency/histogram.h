// The kernel's fine log-linear latency histograms (bpf/latency.h), read into userspace, and the
// pure functions every face uses on them: quantiles, and the coarse cumulative buckets of a
// Prometheus histogram. No copy is kept between reads; these work on one snapshot.
#ifndef TUNNELGUARD_AGENT_HISTOGRAM_H_
#define TUNNELGUARD_AGENT_HISTOGRAM_H_

#include <cstdint>
#include <span>
#include <vector>

namespace tg {

// Bucket i holds values in [BucketLowerNs(i), BucketUpperNs(i)) nanoseconds.
uint64_t BucketLowerNs(uint32_t index);
uint64_t BucketUpperNs(uint32_t index);
// The bucket a value falls in (the same function the BPF program uses).
uint32_t BucketIndex(uint64_t ns);

struct FineHistogram {
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  uint64_t max_ns = 0;
  std::vector<uint64_t> buckets;  // TG_LAT_BUCKETS entries (or empty when count == 0)

  // Adds another histogram (e.g. another CPU's slot) into this one.
  void Add(const FineHistogram& other);
  // Records one value the way the BPF program does (tests and synthetic histograms).
  void Record(uint64_t ns);
};

// What happened between two snapshots of the same histogram (counters only go up). The max of
// the interval is not kept by the kernel: it is estimated as the upper bound of the highest
// bucket that changed, capped by `later.max_ns`.
FineHistogram Delta(const FineHistogram& later, const FineHistogram& earlier);

// The q-quantile (0 < q <= 1) in seconds, nearest-rank, reported at the midpoint of the bucket
// that holds the rank (so within half a bucket, <= 1.6 %, of the true sample), never above the
// recorded max. q >= 1 gives the max. 0 when the histogram is empty.
double QuantileSeconds(const FineHistogram& h, double q);

// Default `le` bounds of our Prometheus histograms, in seconds: sub-millisecond first, because
// a loopback hop to Traefik takes tens of microseconds to a few milliseconds.
std::span<const double> DefaultCoarseBoundsSeconds();

// The densest `--histogram-buckets-per-decade` (finer adds series, not accuracy: 40 per decade
// already reads within ~1.2 % of the kernel's quantiles; bench/README.md).
inline constexpr int kMaxBucketsPerDecade = 80;

// The `le` bounds the exporter serves: 0 gives the default bounds above (16, 1-2.5-5 per
// decade); N > 0 gives N log-spaced bounds per decade from 10 us to 60 s (~7 decades: 7N + 1
// bounds, each bucket a factor 10^(1/N) wide, so histogram_quantile's linear interpolation is
// off by at most that width).
std::vector<double> ExportBoundsSeconds(int per_decade);

// Cumulative counts for each bound (a Prometheus histogram's buckets; the implicit +Inf bucket
// is h.count). A fine bucket is counted below a bound when its midpoint is <= the bound, so a
// coarse boundary is exact to within one fine bucket (<= 3.1 % of the bound).
std::vector<uint64_t> CumulativeCounts(const FineHistogram& h, std::span<const double> bounds);

// A Prometheus native histogram of schema 5 (32 buckets per power of two, each 2.2 % wide):
// bucket i holds values in (2^((i-1)/32), 2^(i/32)] seconds. The kernel's buckets are
// log-linear (32 equal steps per power of two of nanoseconds), so their edges rarely meet:
// each kernel bucket's count goes whole to the native bucket holding its midpoint, the rule
// CumulativeCounts uses for classic bounds. Counts stay exact in sum; a value moves by at most
// half a kernel bucket plus one native one. (Spreading a kernel bucket over the native buckets
// it overlaps was measured too: it leaks counts past the edge of a sharp mode, and was up to
// 3.5 % off the kernel's quantiles where this rule stays within 1.6 %: exposition_test.cc.)
struct NativeHistogram {
  static constexpr int kSchema = 5;
  uint64_t zero_count = 0;       // values of 0 ns (the zero bucket)
  int32_t first_index = 0;       // index of counts[0]
  std::vector<uint64_t> counts;  // consecutive buckets from first_index (empty: no values > 0)
};
NativeHistogram ToNativeSchema5(const FineHistogram& h);
// The native bucket that holds `seconds` (> 0).
int32_t NativeIndex(double seconds);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_HISTOGRAM_H_
