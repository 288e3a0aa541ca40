#include <cstdio>

#include "agent/cli/cli.h"
#include "agent/enforce/families.h"

namespace tg::cli {

void AddTargetFlags(CLI::App& sub, TargetFlags& flags, bool required) {
  auto* cg = sub.add_option("--cgroup", flags.cgroup,
                            "target cgroup v2 directory (absolute, or relative to the cgroup2 "
                            "mount)");
  auto* unit =
      sub.add_option("--unit", flags.unit, "target systemd unit; its cgroup is asked from systemd");
  cg->excludes(unit);
  if (required) {
    auto* group = sub.add_option_group("target", "what to guard or measure");
    group->add_option(cg);
    group->add_option(unit);
    group->require_option(1);
  }
}

Result<Cgroup> OpenTarget(const TargetFlags& flags) {
  if (!flags.unit.empty()) return OpenUnitCgroup(flags.unit);
  return OpenCgroup(flags.cgroup);
}

std::pair<CLI::Option*, CLI::Option*> AddPolicyFlags(CLI::App& sub, PolicyFlags& flags) {
  sub.add_option("--mode", flags.mode, "enforce (deny) or audit (allow, report would_deny)")
      ->capture_default_str();
  auto* families =
      sub.add_option("--families", flags.families,
                     "allowed address families, comma-separated (unix, inet, inet6, netlink, "
                     "packet, vsock, alg, xdp, …); 'none' allows none, 'off' attaches no family "
                     "policy")
          ->capture_default_str();
  auto* wx = sub.add_option("--wx-memory", flags.wx_memory, "deny W+X memory (deny) or not (off)")
                 ->capture_default_str();
  sub.add_option("--bpffs-dir", flags.bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub.add_option("--mechanism", flags.mechanism,
                 "auto (probe: lsm-cgroup, else lsm-global, else observe for --mode audit), "
                 "lsm-cgroup, lsm-global, observe (audit only; host-wide cost, see status)")
      ->capture_default_str();
  sub.add_flag("--observe-seccomp", flags.observe_seccomp,
               "observe: also count systemd's own seccomp refusals (RestrictAddressFamilies=, "
               "MemoryDenyWriteExecute=) as denied_by_seccomp");
  // Hidden (empty group): sys-exit hooks every watched call at the host-wide sys_exit
  // tracepoint, as before issue 19, so bench/run.sh measures both designs in one run.
  sub.add_option("--observe-hook", flags.observe_hook,
                 "observe: per-call (each call's exit tracepoint) or sys-exit (host-wide)")
      ->check(CLI::IsMember({"per-call", "sys-exit"}))
      ->group("");
  return {families, wx};
}

Result<std::vector<PolicySpec>> BuildPolicies(const PolicyFlags& f) {
  auto mode = ParseMode(f.mode);
  if (!mode.ok()) return mode.error();
  std::vector<PolicySpec> policies;
  if (f.families != "off") {
    auto mask = ParseFamilies(f.families);
    if (!mask.ok()) return mask.error();
    policies.push_back({PolicyKind::kAddressFamilies, *mode, *mask});
  }
  if (f.wx_memory == "deny") {
    policies.push_back({PolicyKind::kWxMemory, *mode, 0});
  } else if (f.wx_memory != "off") {
    return MakeError(ErrorKind::kInvalidArgument,
                     "unknown --wx-memory value '" + f.wx_memory + "'; use deny or off");
  }
  for (PolicySpec& p : policies) {
    p.observe_seccomp = f.observe_seccomp;
    p.observe_sys_exit_calls = f.observe_hook == "sys-exit" ? ~0u : 0u;
  }
  return policies;
}

Result<std::optional<Mechanism>> ParseMechanismFlag(const PolicyFlags& f) {
  if (f.mechanism == "auto") return std::optional<Mechanism>();
  auto m = ParseMechanism(f.mechanism);
  if (!m.ok()) return m.error();
  return std::optional<Mechanism>(*m);
}

int Fail(const Error& error) {
  std::fprintf(stderr, "tunnelguard: %s\n", error.message.c_str());
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
      return kExitUsage;
    case ErrorKind::kUnsupported:
      return kExitUnsupported;
    default:
      return kExitFailure;
  }
}

}  // namespace tg::cli
