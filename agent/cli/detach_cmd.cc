// `tunnelguard detach (--cgroup PATH | --unit NAME | --all) [--bpffs-dir DIR]`: removes exactly
// the pins attach made, which detaches the programs.
#include <cstdio>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"

namespace tg::cli {
namespace {

struct DetachFlags {
  TargetFlags target;
  bool all = false;
  std::string bpffs_dir = kDefaultBpffsDir;
};

int Run(const DetachFlags& f) {
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  if (f.all) {
    const auto ids = PinnedTargets(f.bpffs_dir);
    for (uint64_t id : ids) {
      if (auto st = DetachTarget(f.bpffs_dir, id); !st.ok()) return Fail(st.error());
      std::printf("detached cgroup id %llu\n", static_cast<unsigned long long>(id));
    }
    if (ids.empty()) std::printf("nothing attached under %s\n", f.bpffs_dir.c_str());
    return kExitOk;
  }
  auto target = OpenTarget(f.target);
  if (!target.ok()) return Fail(target.error());
  if (auto st = DetachTarget(f.bpffs_dir, target->id); !st.ok()) {
    Error e = st.error();
    if (e.kind == ErrorKind::kNotFound) e.message = "nothing attached to " + target->path;
    return Fail(e);
  }
  std::printf("detached %s\n", target->path.c_str());
  return kExitOk;
}

}  // namespace

void RegisterDetach(CLI::App& app, Action& action) {
  auto flags = std::make_shared<DetachFlags>();
  auto* sub = app.add_subcommand("detach", "remove tunnelguard's policies from a cgroup");
  AddTargetFlags(*sub, flags->target, /*required=*/false);
  auto* all = sub->add_flag("--all", flags->all, "detach every target");
  all->excludes("--cgroup")->excludes("--unit");
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->callback([&action, flags] {
    action = [flags] {
      if (!flags->all && flags->target.cgroup.empty() && flags->target.unit.empty()) {
        return Fail(MakeError(ErrorKind::kInvalidArgument,
                              "detach needs --cgroup PATH, --unit NAME or --all"));
      }
      return Run(*flags);
    };
  });
}

}  // namespace tg::cli
