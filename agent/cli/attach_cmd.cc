// `tunnelguard attach (--cgroup PATH | --unit NAME) [--mode enforce|audit]
//  [--families LIST|none|off] [--wx-memory deny|off] [--bpffs-dir DIR]`:
// puts systemd's RestrictAddressFamilies= and MemoryDenyWriteExecute= on a cgroup with
// BPF-LSM. Exit 0 only when every requested policy is attached and pinned.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/enforce/canary.h"
#include "agent/enforce/families.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"
#include "agent/enforce/unit_policy.h"

namespace tg::cli {
namespace {

struct AttachFlags {
  TargetFlags target;
  PolicyFlags policy;
  bool policy_from_unit = false;
  bool no_lsm_precheck = false;  // hidden, for tests: leave the no-op to the canary
  bool families_given = false;   // an explicit flag wins over the unit's directive
  bool wx_given = false;
};

// --policy-from-unit: fills the flags the user did not give from the unit's own directives,
// read from systemd before anything is attached (once the family policy is on, this process,
// which runs in the unit's cgroup under ExecStartPre=, could not open D-Bus's AF_UNIX socket).
Status ApplyUnitPolicy(AttachFlags& f) {
  if (f.target.unit.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "--policy-from-unit needs --unit NAME (a cgroup has no directives)");
  }
  auto unit = SystemdUnit::Find(f.target.unit);
  if (!unit.ok()) return unit.error();
  auto policy = ReadUnitPolicy(*unit);
  if (!policy.ok()) return policy.error();
  std::printf("read from %s: %s\n", f.target.unit.c_str(), policy->summary.c_str());
  if (!f.families_given) {
    f.policy.families =
        policy->allowed_families ? FormatFamilies(*policy->allowed_families) : "off";
  }
  if (!f.wx_given) f.policy.wx_memory = policy->wx_memory ? "deny" : "off";
  return Status::Ok();
}

int Run(AttachFlags f) {
  if (f.policy_from_unit) {
    if (auto st = ApplyUnitPolicy(f); !st.ok()) return Fail(st.error());
  }
  auto policies = BuildPolicies(f.policy);
  if (!policies.ok()) return Fail(policies.error());
  AttachRequest req;
  req.policies = std::move(*policies);
  req.bpffs_dir = f.policy.bpffs_dir;
  req.check_lsm_list = !f.no_lsm_precheck;
  auto mechanism = ParseMechanismFlag(f.policy);
  if (!mechanism.ok()) return Fail(mechanism.error());
  req.mechanism = *mechanism;
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  auto target = OpenTarget(f.target);
  if (!target.ok()) return Fail(target.error());
  auto result = AttachPolicies(*target, req);
  if (!result.ok()) return Fail(result.error());
  for (const PolicySpec& p : req.policies) {
    std::printf("%s: %s on %s with %s%s\n", std::string(PolicyName(p.kind)).c_str(),
                std::string(ModeName(p.mode)).c_str(), target->path.c_str(),
                std::string(MechanismName(result->mechanism)).c_str(),
                p.kind == PolicyKind::kAddressFamilies
                    ? (", allowed families: " + FormatFamilies(p.allowed_families)).c_str()
                    : "");
  }
  const bool notify =
      std::any_of(req.policies.begin(), req.policies.end(), [](const PolicySpec& p) {
        return p.kind == PolicyKind::kAddressFamilies && UnixNotifyOn(p.allowed_families);
      });
  if (notify && result->mechanism == Mechanism::kObserve) {  // said plainly, never faked
    std::printf(
        "address_families: unix-notify with observe sees socket() and socketpair() only; the "
        "AF_UNIX peer rule (the notify socket only) needs BPF-LSM\n");
  }
  if (result->setup) {
    std::printf("address_families: systemd set-up exemption: %s\n",
                FormatSetupExemption(*result->setup).c_str());
  }
  for (PolicyKind k : result->adopted) {
    std::printf("%s: adopted the pinned links (no second attach; counters continue)\n",
                std::string(PolicyName(k)).c_str());
  }
  std::printf("pinned in %s\n", result->pin_dir.c_str());
  // Proof, not belief: a real forbidden attempt from a child cgroup of the target. A failed
  // canary leaves the pins in place (status shows the failure) and fails the command.
  auto canary = RunCanary(req.bpffs_dir, *target);
  if (!canary.ok()) return Fail(canary.error());
  std::printf("%s", FormatCanary(*canary).c_str());
  if (!canary->passed) {
    std::fprintf(stderr, "tunnelguard: canary failed: policies are not in force: %s\n",
                 canary->cause.c_str());
    return kExitFailure;
  }
  std::printf("canary passed in %.1f ms\n", static_cast<double>(canary->elapsed.count()) / 1000.0);
  return kExitOk;
}

}  // namespace

void RegisterAttach(CLI::App& app, Action& action) {
  auto flags = std::make_shared<AttachFlags>();
  auto* sub = app.add_subcommand(
      "attach", "enforce RestrictAddressFamilies and MemoryDenyWriteExecute on a cgroup");
  AddTargetFlags(*sub, flags->target, /*required=*/true);
  auto [families, wx] = AddPolicyFlags(*sub, flags->policy);
  sub->add_flag("--policy-from-unit", flags->policy_from_unit,
                "enforce the unit's own RestrictAddressFamilies= and MemoryDenyWriteExecute= "
                "(asked from systemd); --families/--wx-memory given too win");
  sub->add_flag("--no-lsm-precheck", flags->no_lsm_precheck,
                "attach even when bpf is not an active LSM (tests: the canary must catch it)")
      ->group("");  // hidden
  sub->callback([&action, flags, families, wx] {
    flags->families_given = families->count() > 0;
    flags->wx_given = wx->count() > 0;
    action = [flags] { return Run(*flags); };
  });
}

}  // namespace tg::cli
