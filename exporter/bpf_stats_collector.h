// tunnelguard_bpf_*: what tunnelguard's own BPF programs and maps cost, from the kernel's
// per-program statistics (run count, run time) and map info. Every tunnelguard program and map
// is named tg_*, so they are found by name among all the host's BPF objects.
//
// Run time and count are only counted while kernel BPF statistics are on; they add their own
// timing to every run, so the agent turns them on only when asked (--bpf-stats), holding a
// BPF_ENABLE_STATS fd that turns them off again when it exits.
#ifndef TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "result.h"
#include "unique_fd.h"

namespace tg::exporter {

class BpfStatsCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// Turns kernel BPF run-time statistics on for as long as the returned fd is open.
Result<UniqueFd> EnableBpfStats();

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_BPF_STATS_COLLECTOR_H_
