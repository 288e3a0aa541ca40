// tunnelguard_policy_* and tunnelguard_events_*: enforcement state and decisions of the
// current target, read from its pinned maps at each scrape.
#ifndef TUNNELGUARD_EXPORTER_POLICY_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_POLICY_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "agent/enforce/policy.h"
#include "agent/enforce/policy_events.h"
#include "agent/enforce/policy_status.h"

namespace tg::exporter {

struct PolicyMetricsInput {
  std::vector<PolicyKind> configured;   // what the agent was asked to enforce
  std::vector<PolicyStatus> attached;   // read from the current target's pins
  std::map<PolicyKind, bool> verified;  // the canary's last verdict, when it ran
  std::map<std::pair<PolicyKind, Action>, uint64_t> events;  // events the agent received
};

// The metric families for one reading (pure: unit-tested).
std::vector<prometheus::MetricFamily> PolicyFamilies(const PolicyMetricsInput& in);

class PolicyCollector : public prometheus::Collectable {
 public:
  using ReadFn = std::function<PolicyMetricsInput()>;
  explicit PolicyCollector(ReadFn read) : read_(std::move(read)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return PolicyFamilies(read_()); }

 private:
  ReadFn read_;
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_POLICY_COLLECTOR_H_
