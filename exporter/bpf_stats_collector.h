// tunnelguard_bpf_*: what this agent's BPF programs and maps cost, from the kernel's
// per-program statistics (run count, run time) and map info. The programs are the ones the
// agent holds now (asked at each scrape; another agent's or a test's tg_* programs on the
// same host are not counted), the maps those programs use.
//
// Run time and count are only counted while kernel BPF statistics are on; they add their own
// timing to every run, so the agent turns them on only when asked (--bpf-stats), holding a
// BPF_ENABLE_STATS fd that turns them off again when it exits.
#ifndef TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"

namespace tg::exporter {

class BpfStatsCollector : public prometheus::Collectable {
 public:
  using ProgramIds = std::function<std::vector<uint32_t>()>;
  explicit BpfStatsCollector(ProgramIds program_ids) : program_ids_(std::move(program_ids)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  ProgramIds program_ids_;
};

// Turns kernel BPF run-time statistics on for as long as the returned fd is open.
Result<UniqueFd> EnableBpfStats();

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_
