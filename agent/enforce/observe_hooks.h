// Where the observe mechanism hooks each watched system call on this kernel. Preferred: the
// call's own exit tracepoint (tracepoint/syscalls/sys_exit_<name>), so only that call runs a
// tunnelguard program. A call whose tracepoint this kernel does not offer (no
// CONFIG_FTRACE_SYSCALLS, no tracefs mounted, a call without syscall metadata) falls back, on
// its own, to the raw sys_exit tracepoint (tp_btf/sys_exit), which every system call of every
// task on the host runs: same counts, higher host-wide cost. Probed at each load, never assumed.
#ifndef TUNNELGUARD_AGENT_OBSERVE_HOOKS_H_
#define TUNNELGUARD_AGENT_OBSERVE_HOOKS_H_

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"

namespace tg {

// The events directory libbpf resolves tracepoints in (its choice: debugfs's tracing directory
// when present, else tracefs), e.g. "/sys/kernel/tracing/events".
std::string TracepointEventsDir();

// For one policy: the TG_OBS_* bits of the calls that go through the sys_exit fallback, and one
// line saying why (empty when every call has its own tracepoint). `forced`: calls put there even
// where their tracepoint exists (PolicySpec::observe_sys_exit_calls).
struct ObservePlan {
  uint32_t sys_exit_calls = 0;
  std::string why;
};
ObservePlan PlanObserve(PolicyKind kind, uint32_t forced,
                        const std::string& events_dir = TracepointEventsDir());

// Before load: autoload exactly the programs of the plan (each call's tracepoint program, or the
// fallback when `sys_exit_calls` has bits). Logs the plan's reason, once per load.
Status SelectObservePrograms(bpf_object* obj, PolicyKind kind, const ObservePlan& plan);

// "socket, socketpair" for TG_OBS_* bits of `kind`'s calls.
std::string ObserveCallNames(PolicyKind kind, uint32_t calls);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_OBSERVE_HOOKS_H_
