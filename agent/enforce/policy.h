// The enforcement vocabulary: which policies exist, their modes, and the mechanisms that can
// carry them. Names here are the ones users type and `status --json` prints.
#ifndef TUNNELGUARD_AGENT_POLICY_H_
#define TUNNELGUARD_AGENT_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/base/result.h"

namespace tg {

// systemd's RestrictAddressFamilies= and MemoryDenyWriteExecute=.
enum class PolicyKind { kAddressFamilies, kWxMemory };
inline constexpr PolicyKind kAllPolicyKinds[] = {PolicyKind::kAddressFamilies,
                                                 PolicyKind::kWxMemory};
std::string_view PolicyName(PolicyKind kind);  // "address_families", "wx_memory"
std::optional<PolicyKind> PolicyFromName(std::string_view name);

enum class Mode { kEnforce, kAudit };
std::string_view ModeName(Mode mode);  // "enforce", "audit"
Result<Mode> ParseMode(std::string_view name);

// How the programs reach the kernel: kLsmCgroup (lsm_cgroup programs on the target, kernels
// ≥ 6.0), kLsmGlobal (global lsm/ programs filtered by cgroup, kernels 5.7+), kObserve (syscall
// exit tracepoints, audit only, kernels without BPF-LSM). mechanism.h chooses among them.
enum class Mechanism { kLsmCgroup, kLsmGlobal, kObserve };
std::string_view MechanismName(Mechanism m);  // "lsm_cgroup", "lsm_global", "observe"
Result<Mechanism> ParseMechanism(std::string_view name);

// One policy as the user asked for it.
struct PolicySpec {
  PolicyKind kind = PolicyKind::kAddressFamilies;
  Mode mode = Mode::kEnforce;
  uint64_t allowed_families = 0;  // kAddressFamilies only: bit N allows family N
  // kAddressFamilies with unix-notify (families.h) only: the one peer sd_notify's datagrams
  // may reach, "/path" or "@abstract" (unix_notify.h); "" with the mode off.
  std::string notify_socket{};
  bool observe_seccomp = false;  // observe only: count systemd's seccomp refusals too
  // observe only: TG_OBS_* bits of calls to hook at the host-wide sys_exit tracepoint even where
  // their own exit tracepoint exists: all of them is the older design (hidden --observe-hook
  // sys-exit, so the benchmarks can compare); some of them, tests of the per-call fallback.
  uint32_t observe_sys_exit_calls = 0;
};

// The ABI values (bpf/policy_abi.h) for the enums above.
uint32_t ModeToAbi(Mode mode);
std::optional<Mode> ModeFromAbi(uint32_t v);
uint32_t MechanismToAbi(Mechanism m);
std::optional<Mechanism> MechanismFromAbi(uint32_t v);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_H_
