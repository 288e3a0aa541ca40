// tg-quantile-shapes: latency shapes recorded into the kernel's fine histogram layout, for
// bench/quantile_accuracy.sh. Prints, for each shape, the quantiles the agent itself reports
// (QuantileSeconds: what `tunnelctl stats` prints) and a Prometheus text exposition of the
// same histogram with `le` bounds of several densities, so a real Prometheus's
// histogram_quantile can be held to the kernel's figures; with --protobuf, the same shapes as
// the agent serves them to a Prometheus with native histograms (exporter/exposition.h).
//
//   tg-quantile-shapes --exposition FILE --quantiles FILE [--protobuf FILE] [--samples N]
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "agent/latency/histogram.h"
#include "exporter/exposition.h"
#include "exporter/family_builder.h"
#include "tool_flags.h"

namespace {

struct Shape {
  const char* name;
  // One sample in seconds.
  double (*draw)(std::mt19937_64&);
};

double Uniform(std::mt19937_64& g, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(g);
}

// Held-out shapes: none of them was used to choose the bucket layouts.
const Shape kShapes[] = {
    {"uniform_2_3ms", [](std::mt19937_64& g) { return Uniform(g, 0.002, 0.003); }},
    {"connect_30_80us", [](std::mt19937_64& g) { return Uniform(g, 30e-6, 80e-6); }},
    {"bimodal_1ms_100ms",  // 85 % near 1 ms, 15 % near 100 ms (±5 %)
     [](std::mt19937_64& g) {
       const double base = Uniform(g, 0, 1) < 0.85 ? 0.001 : 0.1;
       return base * Uniform(g, 0.95, 1.05);
     }},
    {"tail_5s",  // log-normal body around 20 ms, 2 % stuck near 5 s (timeouts)
     [](std::mt19937_64& g) {
       if (Uniform(g, 0, 1) < 0.02) return 5.0 * Uniform(g, 0.98, 1.02);
       return 0.02 * std::exp(std::normal_distribution<double>(0, 0.5)(g));
     }},
};

}  // namespace

int main(int argc, char** argv) {
  std::string exposition, quantiles, protobuf;
  int samples = 200000;
  uint64_t seed = 17;
  std::vector<int> densities = {0, 10, 20, 40, 80};
  CLI::App app("Latency shapes as the kernel records them, for the quantile accuracy bench.",
               "tg-quantile-shapes");
  tg::tools::ConfigureApp(app);
  app.add_option("--exposition", exposition, "write the Prometheus text exposition here")
      ->required();
  app.add_option("--quantiles", quantiles, "write the agent's own quantiles here")->required();
  app.add_option("--protobuf", protobuf,
                 "write the protobuf exposition (native histograms, density=\"native\") here");
  app.add_option("--samples", samples, "samples per shape");
  app.add_option("--seed", seed, "random seed");
  app.add_option("--densities", densities, "bounds per decade (0: the exporter's default)");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  std::ofstream expo(exposition), quant(quantiles);
  expo << "# TYPE tg_shape_seconds histogram\n";
  std::mt19937_64 gen(seed);
  auto native = tg::exporter::NewFamily("tg_shape_seconds", "latency shapes",
                                        prometheus::MetricType::Histogram);
  for (const Shape& shape : kShapes) {
    tg::FineHistogram h;
    for (int i = 0; i < samples; ++i) {
      h.Record(static_cast<uint64_t>(shape.draw(gen) * 1e9));
    }
    tg::exporter::AddHistogram(native, {{"shape", shape.name}, {"density", "native"}}, h);
    quant << "# series " << shape.name << " native 1 " << tg::ToNativeSchema5(h).counts.size()
          << '\n';
    for (const double q : {0.5, 0.9, 0.99}) {
      quant << shape.name << ' ' << q << ' ' << tg::QuantileSeconds(h, q) << '\n';
    }
    for (const int d : densities) {
      const auto bounds = tg::ExportBoundsSeconds(d);
      const auto counts = tg::CumulativeCounts(h, bounds);
      const std::string labels =
          "shape=\"" + std::string(shape.name) + "\",density=\"" + std::to_string(d) + "\"";
      for (size_t i = 0; i < bounds.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof(le), "%.6g", bounds[i]);
        expo << "tg_shape_seconds_bucket{" << labels << ",le=\"" << le << "\"} " << counts[i]
             << '\n';
      }
      expo << "tg_shape_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count << '\n';
      expo << "tg_shape_seconds_count{" << labels << "} " << h.count << '\n';
      expo << "tg_shape_seconds_sum{" << labels << "} " << static_cast<double>(h.sum_ns) / 1e9
           << '\n';
      quant << "# series " << shape.name << ' ' << d << ' ' << bounds.size() + 1 << '\n';
    }
  }
  if (!protobuf.empty()) {
    std::ofstream(protobuf, std::ios::binary) << tg::exporter::Render(
        {native}, tg::exporter::Exposition::kProtobuf, tg::ExportBoundsSeconds(0));
  }
  return 0;
}
