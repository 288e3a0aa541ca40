#include <cstdio>

#include "cli.h"

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
