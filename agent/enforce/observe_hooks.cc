#include "agent/enforce/observe_hooks.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "agent/base/log.h"
#include "agent/enforce/pin_layout.h"
#include "agent/target/kernel_features.h"

namespace tg {

std::string TracepointEventsDir() {
  // libbpf 1.1's tracefs_path(): the debugfs path wins whenever it exists.
  constexpr char kDebugfsTracing[] = "/sys/kernel/debug/tracing";
  // The per-call hooks need tracefs, as enforcement needs bpffs and securityfs: mounted here
  // like those when the system has not (a failure leaves the plan to say why and fall back).
  if (::access(kDebugfsTracing, F_OK) != 0) {
    if (auto st = EnsureMounted("tracefs", "/sys/kernel/tracing"); !st.ok()) {
      log::Notice("observe: {}", st.error().message);
    }
  }
  return std::string(::access(kDebugfsTracing, F_OK) == 0 ? kDebugfsTracing
                                                          : "/sys/kernel/tracing") +
         "/events";
}

ObservePlan PlanObserve(PolicyKind kind, uint32_t forced, const std::string& events_dir) {
  const PinManifest& manifest = ManifestFor(kind);
  ObservePlan plan;
  forced &= manifest.ObservedCalls();
  uint32_t missing = 0;
  for (const ObserveHook& h : manifest.observe_hooks) {
    const std::string id = events_dir + "/syscalls/sys_exit_" + h.syscall + "/id";
    if ((h.bit & forced) == 0 && ::access(id.c_str(), R_OK) != 0) missing |= h.bit;
  }
  plan.sys_exit_calls = forced | missing;
  if (missing == 0) {
    if (forced != 0) plan.why = "asked for (--observe-hook sys-exit)";
    return plan;
  }
  if (::access((events_dir + "/syscalls").c_str(), F_OK) == 0) {
    plan.why = "no exit tracepoint for " + ObserveCallNames(kind, missing) + " in " + events_dir +
               "/syscalls";
  } else if (::access(events_dir.c_str(), F_OK) == 0) {
    plan.why = "this kernel has no syscall tracepoints (" + events_dir +
               "/syscalls missing: CONFIG_FTRACE_SYSCALLS off?)";
  } else {
    plan.why = "tracefs is not mounted (no " + events_dir +
               "); mount it ('mount -t tracefs tracefs /sys/kernel/tracing') for per-call hooks";
  }
  return plan;
}

Status SelectObservePrograms(bpf_object* obj, PolicyKind kind, const ObservePlan& plan) {
  const std::vector<std::string> wanted =
      ManifestFor(kind).ProgramsFor(Mechanism::kObserve, plan.sys_exit_calls);
  size_t selected = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const bool mine =
        std::find(wanted.begin(), wanted.end(), bpf_program__name(prog)) != wanted.end();
    if (bpf_program__set_autoload(prog, mine) != 0) {
      return MakeError(ErrorKind::kInternal, "cannot select BPF programs (already loaded)");
    }
    selected += mine ? 1 : 0;
  }
  if (selected != wanted.size()) {
    return MakeError(ErrorKind::kInternal, std::string(PolicyName(kind)) +
                                               ": the BPF object lacks an observe program of "
                                               "the pin manifest (pin_layout.cc)");
  }
  if (!plan.why.empty()) {
    log::Notice(
        "{}: observe: {} at the host-wide sys_exit hook ({}): every system call on the "
        "host runs its program",
        PolicyName(kind), ObserveCallNames(kind, plan.sys_exit_calls), plan.why);
  }
  return Status::Ok();
}

std::string ObserveCallNames(PolicyKind kind, uint32_t calls) {
  std::string out;
  for (const ObserveHook& h : ManifestFor(kind).observe_hooks) {
    if ((h.bit & calls) == 0) continue;
    out += (out.empty() ? "" : ", ") + h.syscall;
  }
  return out;
}

}  // namespace tg
