// `tunnelguard attach (--cgroup PATH | --unit NAME) [--mode enforce|audit]
//  [--families LIST|none|off] [--wx-memory deny|off] [--bpffs-dir DIR]`:
// puts systemd's RestrictAddressFamilies= and MemoryDenyWriteExecute= on a cgroup with
// BPF-LSM. Exit 0 only when every requested policy is attached and pinned.
#include <cstdio>
#include <memory>

#include "cli.h"
#include "families.h"
#include "pin_layout.h"
#include "policy_control.h"

namespace tg::cli {
namespace {

struct AttachFlags {
  TargetFlags target;
  std::string mode = "enforce";
  std::string families = "inet,inet6";
  std::string wx_memory = "deny";
  std::string bpffs_dir = kDefaultBpffsDir;
};

// Flags → request; every malformed value is rejected here, before anything is touched.
Result<AttachRequest> BuildRequest(const AttachFlags& f) {
  auto mode = ParseMode(f.mode);
  if (!mode.ok()) return mode.error();
  AttachRequest req;
  req.bpffs_dir = f.bpffs_dir;
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
  return req;
}

int Run(const AttachFlags& f) {
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
  std::printf("pinned in %s\n", result->pin_dir.c_str());
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
  sub->add_option("--families", flags->families,
                  "allowed address families, comma-separated (unix, inet, inet6, netlink, "
                  "packet, vsock, alg, xdp, …); 'none' allows none, 'off' attaches no family "
                  "policy")
      ->capture_default_str();
  sub->add_option("--wx-memory", flags->wx_memory, "deny W+X memory (deny) or not (off)")
      ->capture_default_str();
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->callback([&action, flags] { action = [flags] { return Run(*flags); }; });
}

}  // namespace tg::cli
