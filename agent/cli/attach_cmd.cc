// `tunnelguard attach (--cgroup PATH | --unit NAME) [--mode enforce|audit]
//  [--families LIST|none|off] [--wx-memory deny|off] [--bpffs-dir DIR]`:
// puts systemd's RestrictAddressFamilies= and MemoryDenyWriteExecute= on a cgroup with
// BPF-LSM. Exit 0 only when every requested policy is attached and pinned.
#include <cstdio>
#include <memory>

#include "canary.h"
#include "cli.h"
#include "families.h"
#include "pin_layout.h"
#include "policy_control.h"
#include "unit_policy.h"

namespace tg::cli {
namespace {

struct AttachFlags {
  TargetFlags target;
  std::string mode = "enforce";
  std::string families = "inet,inet6";
  std::string wx_memory = "deny";
  std::string bpffs_dir = kDefaultBpffsDir;
  std::string mechanism = "auto";
  bool policy_from_unit = false;
  bool observe_seccomp = false;
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
    f.families = policy->allowed_families ? FormatFamilies(*policy->allowed_families) : "off";
  }
  if (!f.wx_given) f.wx_memory = policy->wx_memory ? "deny" : "off";
  return Status::Ok();
}

// Flags → request; every malformed value is rejected here, before anything is touched.
Result<AttachRequest> BuildRequest(const AttachFlags& f) {
  auto mode = ParseMode(f.mode);
  if (!mode.ok()) return mode.error();
  AttachRequest req;
  req.bpffs_dir = f.bpffs_dir;
  req.check_lsm_list = !f.no_lsm_precheck;
  if (f.mechanism != "auto") {
    auto m = ParseMechanism(f.mechanism);
    if (!m.ok()) return m.error();
    req.mechanism = *m;
  }
  if (f.families != "off") {
    auto mask = ParseFamilies(f.families);
    if (!mask.ok()) return mask.error();
    req.policies.push_back({PolicyKind::kAddressFamilies, *mode, *mask});
  }
  if (f.wx_memory == "deny") {
    req.policies.push_back({PolicyKind::kWxMemory, *mode, 0});
  } else if (f.wx_memory != "off") {
    return MakeError(ErrorKind::kInvalidArgument,
                     "unknown --wx-memory value '" + f.wx_memory + "'; use deny or off");
  }
  for (PolicySpec& p : req.policies) p.observe_seccomp = f.observe_seccomp;
  return req;
}

int Run(AttachFlags f) {
  if (f.policy_from_unit) {
    if (auto st = ApplyUnitPolicy(f); !st.ok()) return Fail(st.error());
  }
  auto req = BuildRequest(f);
  if (!req.ok()) return Fail(req.error());
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  auto target = OpenTarget(f.target);
  if (!target.ok()) return Fail(target.error());
  auto result = AttachPolicies(*target, *req);
  if (!result.ok()) return Fail(result.error());
  for (const PolicySpec& p : req->policies) {
    std::printf("%s: %s on %s with %s%s\n", std::string(PolicyName(p.kind)).c_str(),
                std::string(ModeName(p.mode)).c_str(), target->path.c_str(),
                std::string(MechanismName(result->mechanism)).c_str(),
                p.kind == PolicyKind::kAddressFamilies
                    ? (", allowed families: " + FormatFamilies(p.allowed_families)).c_str()
                    : "");
  }
  for (PolicyKind k : result->adopted) {
    std::printf("%s: adopted the pinned links (no second attach; counters continue)\n",
                std::string(PolicyName(k)).c_str());
  }
  std::printf("pinned in %s\n", result->pin_dir.c_str());
  // Proof, not belief: a real forbidden attempt from a child cgroup of the target. A failed
  // canary leaves the pins in place (status shows the failure) and fails the command.
  auto canary = RunCanary(req->bpffs_dir, *target);
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
  sub->add_option("--mode", flags->mode, "enforce (deny) or audit (allow, report would_deny)")
      ->capture_default_str();
  auto* families =
      sub->add_option("--families", flags->families,
                      "allowed address families, comma-separated (unix, inet, inet6, netlink, "
                      "packet, vsock, alg, xdp, …); 'none' allows none, 'off' attaches no family "
                      "policy")
          ->capture_default_str();
  auto* wx = sub->add_option("--wx-memory", flags->wx_memory, "deny W+X memory (deny) or not (off)")
                 ->capture_default_str();
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->add_flag("--policy-from-unit", flags->policy_from_unit,
                "enforce the unit's own RestrictAddressFamilies= and MemoryDenyWriteExecute= "
                "(asked from systemd); --families/--wx-memory given too win");
  sub->add_option("--mechanism", flags->mechanism,
                  "auto (probe: lsm-cgroup, else lsm-global, else observe for --mode audit), "
                  "lsm-cgroup, lsm-global, observe (audit only; host-wide cost, see status)")
      ->capture_default_str();
  sub->add_flag("--observe-seccomp", flags->observe_seccomp,
                "observe: also count systemd's own seccomp refusals (RestrictAddressFamilies=, "
                "MemoryDenyWriteExecute=) as denied_by_seccomp");
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
