// The observe mechanism's price: enabling a syscall exit tracepoint puts every task's system
// calls on the slow path, host-wide, whether or not the task is in the target. Measured at
// attach (never assumed), recorded in the policies' configs, shown by `status`.
#ifndef TUNNELGUARD_AGENT_OBSERVE_COST_H_
#define TUNNELGUARD_AGENT_OBSERVE_COST_H_

#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/policy_object.h"

namespace tg {

struct ObserveCost {
  double bare_ns = 0;      // median per getppid() call without the programs
  double observed_ns = 0;  // with them attached (this process is outside the target)
  double ratio() const { return bare_ns > 0 ? observed_ns / bare_ns : 0; }
};

// Interleaved rounds: `calls` getppid() without, then with `objects` attached, `rounds` times;
// the medians. Leaves the objects detached.
Result<ObserveCost> MeasureObserveCost(std::vector<PolicyObject>& objects, int cgroup_fd,
                                       int rounds = 7, int calls = 200000);

// Writes the figures into each object's config map (struct tg_observe_state).
Status RecordObserveCost(const std::vector<PolicyObject>& objects, const ObserveCost& cost);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_OBSERVE_COST_H_
