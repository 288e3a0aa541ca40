#include "exporter/build_info.h"

#include <bpf/libbpf.h>
#include <sys/utsname.h>

#include <chrono>

#include "agent/base/version.h"

namespace tg::exporter {

BuildInfoCollector::BuildInfoCollector() {
  struct utsname u {};
  if (::uname(&u) == 0) kernel_ = u.release;
  // When this collector is made: at the agent's start, before it serves its first scrape.
  start_time_seconds_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
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
  prometheus::MetricFamily start;
  start.name = "process_start_time_seconds";
  start.help = "Start time of the process since the Unix epoch, in seconds.";
  start.type = prometheus::MetricType::Gauge;
  start.metric.emplace_back().gauge.value = start_time_seconds_;
  return {f, start};
}

}  // namespace tg::exporter
