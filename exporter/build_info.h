// tunnelguard_build_info: the constant-1 gauge every exporter has, labelled with what was
// built and what it runs on, so dashboards can show versions and join on them; and
// process_start_time_seconds, the start time every Prometheus client library exports, so a
// restart of the agent shows (changes(), the dashboard's annotation).
#ifndef TUNNELGUARD_EXPORTER_BUILD_INFO_H_
#define TUNNELGUARD_EXPORTER_BUILD_INFO_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>

namespace tg::exporter {

class BuildInfoCollector : public prometheus::Collectable {
 public:
  BuildInfoCollector();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string kernel_;
  double start_time_seconds_ = 0;
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_BUILD_INFO_H_
