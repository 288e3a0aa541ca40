#include "exporter/labelled_collectable.h"

#include <map>

namespace tg::exporter {

std::vector<prometheus::MetricFamily> WithLabel(std::vector<prometheus::MetricFamily> families,
                                                const std::string& name, const std::string& value) {
  for (auto& f : families) {
    for (auto& m : f.metric) m.label.insert(m.label.begin(), {name, value});
  }
  return families;
}

std::vector<prometheus::MetricFamily> MergeFamilies(
    std::vector<prometheus::MetricFamily> families) {
  std::vector<prometheus::MetricFamily> out;
  std::map<std::string, size_t> index;  // name → position in out
  for (auto& f : families) {
    const auto [it, first] = index.emplace(f.name, out.size());
    if (first) {
      out.push_back(std::move(f));
      continue;
    }
    auto& into = out[it->second].metric;
    into.insert(into.end(), std::make_move_iterator(f.metric.begin()),
                std::make_move_iterator(f.metric.end()));
  }
  return out;
}

}  // namespace tg::exporter
