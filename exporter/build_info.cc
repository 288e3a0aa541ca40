#include "exporter/build_info.h"

#include <bpf/libbpf.h>
#include <sys/utsname.h>

#include "agent/base/version.h"

namespace tg::exporter {

BuildInfoCollector::BuildInfoCollector() {
  struct utsname u {};
  if (::uname(&u) == 0) kernel_ = u.release;
}

std::vector<prometheus::MetricFamily> BuildInfoCollector::Collect() const {
  prometheus::ClientMetric m;
  m.label = {
      {"version", kVersion}, {"libbpf_version", libbpf_version_string()}, {"kernel", kernel_}};
  m.gauge.value = 1;
  prometheus::MetricFamily f;
  f.name = "tunnelguard_build_info";
  f.help =
      "A metric with a constant '1' value labelled by tunnelguard's version, the libbpf "
      "version and the running kernel.";
  f.type = prometheus::MetricType::Gauge;
  f.metric.push_back(std::move(m));
  return {f};
}

}  // namespace tg::exporter
