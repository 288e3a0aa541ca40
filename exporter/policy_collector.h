// tunnelguard_policy_* and tunnelguard_events_*: enforcement state and decisions of the
// current target, read from its pinned maps at each scrape.
#ifndef TUNNELGUARD_EXPORTER_POLICY_COLLECTOR_H_
#define TUNNELGUARD_EXPORTER_POLICY_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <string>
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

// The details a policy counts decisions under: allowed calls and refusable ones (address
// families outside the allow-list plus "other"; the W^X operations it stops).
struct PolicyDetails {
  std::vector<std::string> allowed, refusable;
};
PolicyDetails DetailsOf(const PolicyStatus& p);
// The refusing actions a policy can count: deny and would_deny, denied_by_seccomp with
// --observe-seccomp, exempt_setup with systemd's set-up exemption.
std::vector<std::string> ActionsFor(const PolicyStatus& p);

// Every tunnelguard_policy_decisions_total series `p` can produce, zeros included (bounded:
// allowed details × allow + refusable details × ActionsFor; docs: README "Metrics reference").
void AddDecisions(prometheus::MetricFamily& f, const std::string& policy, const PolicyStatus& p);

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
