#include "exporter/policy_collector.h"

#include <algorithm>

#include "agent/enforce/families.h"
#include "agent/enforce/policy_wx.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"
#include "exporter/family_builder.h"

namespace tg::exporter {

using prometheus::MetricType;

namespace {

// Family slots without a name (AF_UNSPEC, numbers past AF_MAX) share one series: the set of
// series stays fixed whatever a process passes to socket().
std::string ExportedDetail(PolicyKind kind, const std::string& detail) {
  return kind == PolicyKind::kAddressFamilies && detail.rfind("af_", 0) == 0 ? "other" : detail;
}

}  // namespace

PolicyDetails DetailsOf(const PolicyStatus& p) {
  PolicyDetails d;
  if (p.kind == PolicyKind::kWxMemory) {
    for (uint32_t i = 0; i < TG_WX_DETAILS; ++i) {
      (i < TG_WX_FIRST_DENIABLE ? d.allowed : d.refusable).push_back(WxDetailName(i));
    }
    return d;
  }
  auto mask = ParseFamilies(p.allowed_families);
  const uint64_t allowed = mask.ok() ? *mask : 0;
  for (const auto& f : KnownFamilies()) {
    (((allowed >> f.family) & 1) != 0 ? d.allowed : d.refusable).emplace_back(f.name);
  }
  d.refusable.emplace_back("other");
  if (UnixNotifyOn(allowed)) {  // its sends allowed to the notify socket, refused elsewhere
    for (const auto& r : UnixNotifyDetails()) {
      (r.family == TG_FAM_UNIX_NOTIFY ? d.allowed : d.refusable).emplace_back(r.name);
    }
  }
  return d;
}

std::vector<std::string> ActionsFor(const PolicyStatus& p) {
  // deny and would_deny both: `tunnelctl mode` switches between them while the agent runs.
  std::vector<std::string> actions = {"deny", "would_deny"};
  if (p.observe_seccomp) actions.emplace_back("denied_by_seccomp");
  if (p.setup.has_value() && p.setup->manager_tgid != 0) actions.emplace_back("exempt_setup");
  return actions;
}

void AddDecisions(prometheus::MetricFamily& f, const std::string& policy, const PolicyStatus& p) {
  // Every series the policy can produce, from 0, so that a first decision is a rise that
  // rate()/increase() see; then whatever else the kernel counted (e.g. an allowed kernel socket
  // of a family outside the list).
  std::map<std::pair<std::string, std::string>, uint64_t> counts;  // (action, detail) → n
  const PolicyDetails details = DetailsOf(p);
  for (const auto& detail : details.allowed) counts[{"allow", detail}] = 0;
  for (const auto& action : ActionsFor(p)) {
    for (const auto& detail : details.refusable) counts[{action, detail}] = 0;
  }
  for (const auto& [detail, d] : p.by_detail) {
    const std::string exported = ExportedDetail(p.kind, detail);
    const std::pair<const char*, uint64_t> actions[] = {{"allow", d.allow},
                                                        {"deny", d.deny},
                                                        {"would_deny", d.would_deny},
                                                        {"denied_by_seccomp", d.denied_by_seccomp},
                                                        {"exempt_setup", d.exempt_setup}};
    for (const auto& [action, n] : actions) {
      if (n != 0) counts[{action, exported}] += n;
    }
  }
  for (const auto& [key, n] : counts) {
    AddCounter(f, {{"policy", policy}, {"action", key.first}, {"detail", key.second}},
               static_cast<double>(n));
  }
}

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
    AddDecisions(decisions, name, *p);
    AddCounter(dropped, {{"policy", name}, {"reason", "ring_buffer_full"}},
               static_cast<double>(p->events_dropped));
  }
  return {decisions, enforced, verified, info, events, dropped};
}

}  // namespace tg::exporter
