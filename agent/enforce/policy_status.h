// What is attached, read back from bpffs pins alone (no agent process needs to be running):
// targets, each policy's mode, mechanism, whether its links are really attached, and its
// decision counters summed over CPUs. One read per call; nothing is cached.
#ifndef TUNNELGUARD_AGENT_POLICY_STATUS_H_
#define TUNNELGUARD_AGENT_POLICY_STATUS_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_families.h"

namespace tg {

struct Decisions {
  uint64_t allow = 0;
  uint64_t deny = 0;
  uint64_t would_deny = 0;
  uint64_t denied_by_seccomp = 0;  // observe --observe-seccomp: systemd's filter refused it
  uint64_t exempt_setup = 0;       // address_families: systemd's exec child before its exec
};

struct PolicyStatus {
  PolicyKind kind = PolicyKind::kAddressFamilies;
  std::optional<Mode> mode;                    // empty when the config could not be read
  std::optional<Mechanism> mechanism;          // idem
  bool active = false;                         // every link pinned and attached to the target
  std::string problem;                         // why not active ("" when active)
  std::string allowed_families;                // address_families only: "inet,inet6"
  std::string notify_socket;                   // address_families, unix-notify: its peer
  std::optional<SetupExemption> setup;         // address_families only: the set-up exemption
  Decisions decisions;                         // totals
  std::map<std::string, Decisions> by_detail;  // per family / memory operation, non-zero only
  uint64_t events_dropped = 0;
  // The last canary (canary.h): "never", "passed" or "failed", how long ago (seconds, from
  // CLOCK_BOOTTIME; -1 when never) and the canary's own decisions, kept out of `decisions`.
  // observe only: whether seccomp refusals are counted, and the measured host-wide cost
  // (getppid ns without / with the programs; 0 when not measured).
  bool observe_seccomp = false;
  uint32_t observe_sys_exit_calls = 0;  // TG_OBS_* bits hooked at the host-wide sys_exit fallback
  double observe_bare_ns = 0;
  double observe_on_ns = 0;
  std::string canary_result = "never";
  double canary_age_seconds = -1;
  Decisions canary;
};

struct TargetStatus {
  uint64_t cgroup_id = 0;
  std::string cgroup;  // path under the cgroup2 mount, or "" when the cgroup is gone
  bool stale = false;  // the cgroup is gone: pins left over (attach / detach --all prune them)
  std::string pin_dir;
  std::vector<PolicyStatus> policies;
};

struct StatusReport {
  std::string bpffs_dir;
  std::vector<TargetStatus> targets;
  uint64_t events_dropped = 0;  // over all targets and policies
};

Result<TargetStatus> ReadTargetStatus(const std::string& base, uint64_t cgroup_id);
Result<StatusReport> ReadStatus(const std::string& base);

// The documented `status --json` schema (docs/enforcement.md).
nlohmann::json ToJson(const StatusReport& report);

// Every entry of a pinned per-CPU u64 array, summed over possible CPUs.
Result<std::vector<uint64_t>> ReadPerCpuCounters(const std::string& path, uint32_t entries);

// Whether the cgroup with this id still exists (an error when that cannot be told).
Result<bool> CgroupExists(uint64_t cgroup_id);

// The path of a cgroup v2 directory from its id ("" when it no longer exists).
std::string CgroupPathFromId(uint64_t cgroup_id);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_STATUS_H_
