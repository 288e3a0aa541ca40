// `tunnelguard status [--json] [--bpffs-dir DIR]`: what is attached, read from bpffs pins.
#include <cstdio>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/enforce/observe_hooks.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"
#include "agent/enforce/policy_status.h"

namespace tg::cli {
namespace {

struct StatusFlags {
  bool json = false;
  std::string bpffs_dir = kDefaultBpffsDir;
};

std::string CanaryText(const PolicyStatus& p) {
  if (p.canary_age_seconds < 0) return p.canary_result;
  return p.canary_result + "(" + std::to_string(static_cast<long long>(p.canary_age_seconds)) +
         "s ago)";
}

void PrintText(const StatusReport& r) {
  if (r.targets.empty()) {
    std::printf("no tunnelguard policies attached (%s)\n", r.bpffs_dir.c_str());
    return;
  }
  for (const TargetStatus& t : r.targets) {
    std::printf("cgroup %s (id %llu), pins in %s\n",
                t.stale            ? "(removed; stale pins: 'detach --all' prunes them)"
                : t.cgroup.empty() ? "(unknown)"
                                   : t.cgroup.c_str(),
                static_cast<unsigned long long>(t.cgroup_id), t.pin_dir.c_str());
    for (const PolicyStatus& p : t.policies) {
      std::printf("  %-16s %-7s %-10s %-8s allow=%llu deny=%llu would_deny=%llu canary=%s%s%s\n",
                  std::string(PolicyName(p.kind)).c_str(),
                  p.mode ? std::string(ModeName(*p.mode)).c_str() : "?",
                  p.mechanism ? std::string(MechanismName(*p.mechanism)).c_str() : "?",
                  p.active ? "active" : "INACTIVE",
                  static_cast<unsigned long long>(p.decisions.allow),
                  static_cast<unsigned long long>(p.decisions.deny),
                  static_cast<unsigned long long>(p.decisions.would_deny), CanaryText(p).c_str(),
                  p.kind == PolicyKind::kAddressFamilies
                      ? (" allowed=" + p.allowed_families +
                         (p.notify_socket.empty() ? "" : " notify=" + p.notify_socket))
                            .c_str()
                      : "",
                  p.problem.empty() ? "" : (" (" + p.problem + ")").c_str());
      if (p.setup) {
        std::printf("    systemd set-up exemption: %s; exempt_setup=%llu\n",
                    FormatSetupExemption(*p.setup).c_str(),
                    static_cast<unsigned long long>(p.decisions.exempt_setup));
      }
      if (p.mechanism == Mechanism::kObserve) {
        std::printf(
            "    observe: audit only, cannot deny%s; host-wide cost per system call: getppid "
            "%.0f ns -> %.0f ns (x%.2f)\n",
            p.observe_seccomp ? "; counts systemd's seccomp denials" : "", p.observe_bare_ns,
            p.observe_on_ns, p.observe_bare_ns > 0 ? p.observe_on_ns / p.observe_bare_ns : 0.0);
        const uint32_t all = ManifestFor(p.kind).ObservedCalls();
        const uint32_t own = all & ~p.observe_sys_exit_calls;
        std::printf(
            "    observe hooks: %s%s%s\n",
            own ? (ObserveCallNames(p.kind, own) + " at their exit tracepoints").c_str() : "",
            own && p.observe_sys_exit_calls ? "; " : "",
            p.observe_sys_exit_calls
                ? (ObserveCallNames(p.kind, p.observe_sys_exit_calls) +
                   " at sys_exit (every system call on the host runs the program)")
                      .c_str()
                : "");
      }
    }
  }
  std::printf("events dropped: %llu\n", static_cast<unsigned long long>(r.events_dropped));
}

int Run(const StatusFlags& f) {
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  auto report = ReadStatus(f.bpffs_dir);
  if (!report.ok()) return Fail(report.error());
  if (f.json) {
    std::printf("%s\n", ToJson(*report).dump(2).c_str());
  } else {
    PrintText(*report);
  }
  return kExitOk;
}

}  // namespace

void RegisterStatus(CLI::App& app, Action& action) {
  auto flags = std::make_shared<StatusFlags>();
  auto* sub = app.add_subcommand("status", "show attached policies and their decisions");
  sub->add_flag("--json", flags->json, "print JSON (schema: docs/enforcement.md)");
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->callback([&action, flags] { action = [flags] { return Run(*flags); }; });
}

}  // namespace tg::cli
