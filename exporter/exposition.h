// What a scrape gets: the families of the registered collectables written in the format the
// scraper asked for. The text format (version 0.0.4) is what every scraper reads; Prometheus
// started with --enable-feature=native-histograms asks for the protobuf format first, and
// there each latency histogram also carries native buckets of schema 5, 32 per power of two,
// near the kernel's own resolution in one series (classic buckets come along for scrapers
// that keep them). Histograms arrive from the collectors at the kernel's resolution
// (family_builder.h AddHistogram); their classic `le` bounds are chosen here, once.
#ifndef TUNNELGUARD_EXPORTER_EXPOSITION_H_
#define TUNNELGUARD_EXPORTER_EXPOSITION_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tg::exporter {

enum class Exposition { kText, kProtobuf };

// The format for a request's Accept header: protobuf when it names Prometheus's delimited
// MetricFamily encoding with a quality no lower than any text type it accepts; else text.
Exposition NegotiateExposition(std::string_view accept);
std::string_view ContentType(Exposition format);

// `families` written as `format`, histograms with classic buckets at `classic_bounds`
// (seconds, ascending; ExportBoundsSeconds) and, in protobuf, native buckets too.
std::string Render(std::vector<prometheus::MetricFamily> families, Exposition format,
                   std::span<const double> classic_bounds);

// The exposition of `collectables` (families of one name merged across them); nullopt when a
// collector threw (logged).
std::optional<std::string> SerializeCollectables(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables, Exposition format,
    std::span<const double> classic_bounds);

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_EXPOSITION_H_
