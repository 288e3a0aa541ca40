// The canary: proof, not belief. A successful attach proves nothing on its own (booted without
// `bpf` in lsm=, LSM programs load, attach and are never called), so after attaching — and
// periodically, from the daemon — a short-lived helper process makes one real forbidden
// attempt per attached policy from a child cgroup of the target:
//   address_families: socketpair() of a built-in family outside the allow-list; with
//                     unix-notify (BPF-LSM) also a datagram connect() to the notify socket,
//                     which must be allowed, and one to another bound socket of its own,
//                     which must be refused (both judged on the peer hook's own counters);
//   wx_memory:        one per hook: an executable mapping of an unsealed memfd (W^X of the
//                     memory object), opening /proc/self/mem for writing, PTRACE_TRACEME from a
//                     child, and that child's /proc/PID/mem opened read-only (the attach-mode
//                     access check PTRACE_ATTACH/SEIZE ask); each judged on its own detail counter.
// (The observe mechanism sees system call arguments only: socket() and a W+X anonymous mmap.)
// Both attempts pass the seccomp filters of the shipped units (systemd's
// RestrictAddressFamilies= filters socket() only; MemoryDenyWriteExecute= filters W+X prot
// bits, and an R+X file mapping has none), so they reach the LSM hooks even when the agent or
// the tunnel's ExecStartPre= runs under them, and a seccomp refusal can never pass for an LSM
// denial: a check passes only when the policy's own canary counter moved (enforce: and the
// call failed with the policy's errno). Those counters are the canary's alone (struct
// tg_canary_state), so the tunnel's decisions never include the canary's attempts.
#ifndef TUNNELGUARD_AGENT_CANARY_H_
#define TUNNELGUARD_AGENT_CANARY_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"
#include "agent/target/cgroup.h"

namespace tg {

// The canary's child cgroup of the target: created per run, removed after.
inline constexpr char kCanaryCgroupName[] = "tunnelguard-canary";

struct CanaryCheck {
  PolicyKind kind = PolicyKind::kAddressFamilies;
  Mode mode = Mode::kEnforce;
  std::string attempt;   // "socketpair(AF_UNIX)", "mmap(PROT_READ|PROT_EXEC) of a memfd"
  std::string observed;  // "EAFNOSUPPORT, counted deny", "succeeded, not counted"
  bool passed = false;
};

struct CanaryReport {
  bool passed = false;  // every check passed
  std::vector<CanaryCheck> checks;
  std::chrono::microseconds elapsed{0};  // from the cgroup's creation to its removal
  std::string cause;                     // when failed: the likely cause and its fix
};

// Runs one canary against the policies pinned for `target` under `base` (their mode and
// allow-list are read from the pins) and records the outcome in each policy's config
// (`status` shows it). An Error means the canary could not run at all (no pins, cannot
// create the cgroup or fork); a canary that ran and failed is a report with passed == false.
Result<CanaryReport> RunCanary(const std::string& base, const Cgroup& target);

// The report as one line per check, for the CLI and the log.
std::string FormatCanary(const CanaryReport& report);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_CANARY_H_
