// tunnelguard_build_info: the constant-1 gauge every exporter has, labelled with what was
// built and what it runs on, so dashboards can show versions and join on them.
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
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_BUILD_INFO_H_
