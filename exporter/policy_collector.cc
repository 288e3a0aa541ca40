#include "exporter/policy_collector.h"

#include <algorithm>

#include "exporter/family_builder.h"

namespace tg::exporter {

using prometheus::MetricType;

std::vector<prometheus::MetricFamily> PolicyFamilies(const PolicyMetricsInput& in) {
  auto decisions =
      NewFamily("tunnelguard_policy_decisions_total",
                "Policy decisions by action (allow, deny, would_deny, denied_by_seccomp, "
                "exempt_setup) and detail "
                "(address family or memory operation), counted in the kernel.",
                MetricType::Counter);
  auto enforced = NewFamily("tunnelguard_policy_enforced",
                            "1 when the policy is attached to the target in enforce mode with a "
                            "mechanism that can deny.",
                            MetricType::Gauge);
  auto verified = NewFamily("tunnelguard_policy_verified",
                            "1 when the canary's last forbidden attempt was stopped (or counted "
                            "in audit mode): enforcement proven, not assumed.",
                            MetricType::Gauge);
  auto info = NewFamily("tunnelguard_policy_info",
                        "Constant 1 labelled with each attached policy's mode and mechanism.",
                        MetricType::Gauge);
  auto events = NewFamily("tunnelguard_events_total",
                          "Denial events the agent received from the kernel's ring buffers.",
                          MetricType::Counter);
  auto dropped = NewFamily("tunnelguard_events_dropped_total",
                           "Denial events lost before the agent read them (the decisions are "
                           "still counted).",
                           MetricType::Counter);

  for (PolicyKind kind : in.configured) {
    const std::string name(PolicyName(kind));
    const auto it = std::find_if(in.attached.begin(), in.attached.end(),
                                 [kind](const PolicyStatus& p) { return p.kind == kind; });
    const PolicyStatus* p = it == in.attached.end() ? nullptr : &*it;
    const bool can_deny = p != nullptr && p->active && p->mode == Mode::kEnforce &&
                          p->mechanism.has_value() && *p->mechanism != Mechanism::kObserve;
    AddGauge(enforced, {{"policy", name}}, can_deny ? 1 : 0);
    const auto v = in.verified.find(kind);
    AddGauge(verified, {{"policy", name}}, v != in.verified.end() && v->second ? 1 : 0);
    for (Action a : {Action::kDeny, Action::kWouldDeny, Action::kDeniedBySeccomp}) {
      const auto e = in.events.find({kind, a});
      AddCounter(events, {{"policy", name}, {"action", std::string(ActionName(a))}},
                 e == in.events.end() ? 0 : static_cast<double>(e->second));
    }
    if (p == nullptr) continue;
    if (p->mode && p->mechanism) {
      AddGauge(info,
               {{"policy", name},
                {"mode", std::string(ModeName(*p->mode))},
                {"mechanism", std::string(MechanismName(*p->mechanism))}},
               1);
    }
    for (const auto& [detail, d] : p->by_detail) {
      const std::pair<const char*, uint64_t> actions[] = {
          {"allow", d.allow},
          {"deny", d.deny},
          {"would_deny", d.would_deny},
          {"denied_by_seccomp", d.denied_by_seccomp},
          {"exempt_setup", d.exempt_setup}};
      for (const auto& [action, n] : actions) {
        if (n == 0) continue;
        AddCounter(decisions, {{"policy", name}, {"action", action}, {"detail", detail}},
                   static_cast<double>(n));
      }
    }
    AddCounter(dropped, {{"policy", name}, {"reason", "ring_buffer_full"}},
               static_cast<double>(p->events_dropped));
  }
  return {decisions, enforced, verified, info, events, dropped};
}

}  // namespace tg::exporter
