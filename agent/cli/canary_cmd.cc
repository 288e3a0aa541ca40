// `tunnelguard canary (--cgroup PATH | --unit NAME) [--bpffs-dir DIR]`: proves the pinned
// policies of a target with a real forbidden attempt (agent/enforce/canary.h), on demand or from a
// timer. Exit 0 when every check passed, 1 when one failed (the cause on stderr).
#include <cstdio>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/enforce/canary.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"

namespace tg::cli {
namespace {

struct CanaryFlags {
  TargetFlags target;
  std::string bpffs_dir = kDefaultBpffsDir;
};

int Run(const CanaryFlags& f) {
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  auto target = OpenTarget(f.target);
  if (!target.ok()) return Fail(target.error());
  auto report = RunCanary(f.bpffs_dir, *target);
  if (!report.ok()) return Fail(report.error());
  std::printf("%s", FormatCanary(*report).c_str());
  if (!report->passed) {
    std::fprintf(stderr, "tunnelguard: canary failed: policies are not in force: %s\n",
                 report->cause.c_str());
    return kExitFailure;
  }
  std::printf("canary passed in %.1f ms\n", static_cast<double>(report->elapsed.count()) / 1000.0);
  return kExitOk;
}

}  // namespace

void RegisterCanary(CLI::App& app, Action& action) {
  auto flags = std::make_shared<CanaryFlags>();
  auto* sub = app.add_subcommand("canary",
                                 "prove a target's pinned policies with a real forbidden attempt");
  AddTargetFlags(*sub, flags->target, /*required=*/true);
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->callback([&action, flags] { action = [flags] { return Run(*flags); }; });
}

}  // namespace tg::cli
