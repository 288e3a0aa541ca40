// Which mechanism carries enforcement on this kernel, chosen once at start by probing: lsm_cgroup
// when the kernel loads it; lsm_global when lsm_cgroup is refused but BPF-LSM works; observe
// (audit only) when there is no BPF-LSM; or a plain refusal naming why. The one place the
// choice is made, so callers never probe on their own.
#ifndef TUNNELGUARD_AGENT_MECHANISM_H_
#define TUNNELGUARD_AGENT_MECHANISM_H_

#include <optional>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"

namespace tg {

// `requested` empty: probe and choose. `mode`: the strictest mode asked for (enforce needs a
// mechanism that can deny). Errors start with "enforcement unavailable: " and give the cause.
// `check_lsm_list` false skips the "bpf is an active LSM" pre-check (tests use it to prove the
// canary catches the silent no-op on its own).
Result<Mechanism> ChooseMechanism(std::optional<Mechanism> requested, Mode mode,
                                  bool check_lsm_list = true);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_MECHANISM_H_
