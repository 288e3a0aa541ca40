// `tunnelguard features [--json]`: what this kernel offers tunnelguard, each probed for real.
#include <cstdio>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/target/kernel_features.h"

namespace tg::cli {
namespace {

void PrintFeature(const char* name, const Feature& f) {
  std::printf("  %-16s %-4s %s\n", name, f.available ? "yes" : "no", f.detail.c_str());
}

}  // namespace

void RegisterFeatures(CLI::App& app, Action& action) {
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("features", "probe what this kernel offers (needs root)");
  sub->add_flag("--json", *json, "print JSON");
  sub->callback([&action, json] {
    action = [json] {
      const KernelFeatures f = ProbeKernelFeatures();
      if (*json) {
        std::printf("%s\n", ToJson(f).dump(2).c_str());
        return kExitOk;
      }
      std::printf("kernel %s, cgroup2 at %s\n", f.kernel_release.c_str(),
                  f.cgroup2_mount.empty() ? "(none)" : f.cgroup2_mount.c_str());
      PrintFeature("bpffs", f.bpffs);
      PrintFeature("bpf LSM listed", f.bpf_lsm_listed);
      PrintFeature("lsm_cgroup", f.lsm_cgroup);
      PrintFeature("unix_notify", f.unix_notify);
      return kExitOk;
    };
  });
}

}  // namespace tg::cli
