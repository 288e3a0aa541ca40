// Where enforcement lives in bpffs, and exactly which pins attach makes (so detach removes
// exactly those and nothing else):
//   <base>/<cgroup id>/<policy>/link_<program>   one pinned BPF link per hook (keeps it attached)
//   <base>/<cgroup id>/<policy>/<map>            config, counters, drops, events
// <base> defaults to /sys/fs/bpf/tunnelguard. The cgroup id names the target because it is
// what the kernel knows the cgroup by (a path can be renamed; `status` resolves it back).
#ifndef TUNNELGUARD_AGENT_PIN_LAYOUT_H_
#define TUNNELGUARD_AGENT_PIN_LAYOUT_H_

#include <bpf/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/enforce/policy.h"

namespace tg {

inline constexpr char kDefaultBpffsDir[] = "/sys/fs/bpf/tunnelguard";

// observe: one watched system call, its TG_OBS_* bit and the program on its own exit tracepoint
// (tracepoint/syscalls/sys_exit_<syscall>).
struct ObserveHook {
  std::string syscall;
  uint32_t bit;
  std::string program;
};

// The fixed names of one policy's pins.
struct PinManifest {
  std::vector<std::string> programs;         // lsm_cgroup: pinned as link_<program>
  std::vector<std::string> global_programs;  // lsm_global: the same hooks as global lsm/
  std::vector<ObserveHook> observe_hooks;    // observe: one exit tracepoint per watched call
  std::string observe_fallback;              // observe: tp_btf/sys_exit, for calls without one
  std::string config_map;
  std::string counters_map;
  std::string drops_map;
  std::string events_map;
  std::string canary_map;  // the canary's decisions by action (agent/enforce/canary.h)
  std::string cgroup_map;  // lsm_global: the target cgroup (a cgroup array)
  std::vector<std::string> Maps() const {
    return {config_map, counters_map, drops_map, events_map, canary_map, cgroup_map};
  }
  // The programs one mechanism attaches (and pins), and all of them (detach removes all).
  // observe: the calls in `sys_exit_calls` (TG_OBS_* bits) go through the fallback instead of
  // their own tracepoint.
  std::vector<std::string> ProgramsFor(Mechanism m, uint32_t sys_exit_calls = 0) const;
  std::vector<std::string> AllPrograms() const;
  // The TG_OBS_* bits of every call this policy watches.
  uint32_t ObservedCalls() const;
};
const PinManifest& ManifestFor(PolicyKind kind);

// Whether the maps pinned in a policy's directory have the shapes this build reads and writes:
// the config map's value size and the entry counts of the counter maps (both change with the
// ABI, bpf/policy_abi.h). An error names the first mismatch: pins of another tunnelguard
// version, which must not be adopted (a config read into a smaller struct would overflow it).
Status CheckPinnedAbi(const std::string& dir, PolicyKind kind);
// A pinned map opened and its kernel info read: what every check of a pin's shape starts with.
struct PinnedMap {
  UniqueFd fd;
  bpf_map_info info{};
};
Result<PinnedMap> OpenPinnedMap(const std::string& path);

std::string TargetDir(const std::string& base, uint64_t cgroup_id);
std::string PolicyDir(const std::string& base, uint64_t cgroup_id, PolicyKind kind);
std::string LinkPinName(const std::string& program);  // "link_<program>"

// Checks that `dir` is (or would be created) on a mounted bpffs: its nearest existing
// ancestor must be a bpf filesystem. The error names the mount command that fixes it.
Status CheckOnBpffs(const std::string& dir);

// Kernel ids of the programs behind the pinned links of one target (every policy, every
// mechanism's links that exist); none when nothing is pinned.
std::vector<uint32_t> PinnedProgramIds(const std::string& base, uint64_t cgroup_id);

// The cgroup ids that have a target directory under `base` (none when base is missing).
std::vector<uint64_t> PinnedTargets(const std::string& base);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_PIN_LAYOUT_H_
