// Attach, detach and re-mode enforcement on a target cgroup. Attach is all or nothing: any
// failure leaves no link attached and no pin behind. Detach removes exactly the pins attach
// made (pin_layout.h), which detaches the programs.
#ifndef TUNNELGUARD_AGENT_POLICY_CONTROL_H_
#define TUNNELGUARD_AGENT_POLICY_CONTROL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_families.h"
#include "agent/target/cgroup.h"

namespace tg {

struct AttachRequest {
  std::vector<PolicySpec> policies;
  std::string bpffs_dir = kDefaultBpffsDir;
  std::optional<Mechanism> mechanism;  // empty: chosen by probing
  bool check_lsm_list = true;          // false: tests only (mechanism.h)
};

struct AttachResult {
  uint64_t cgroup_id = 0;
  Mechanism mechanism = Mechanism::kLsmCgroup;
  std::string pin_dir;
  std::vector<PolicyKind> adopted;  // found pinned and live: kept, config updated in place
  // address_families: the manager whose exec children are exempt while setting up (empty when
  // that policy was not requested).
  std::optional<SetupExemption> setup;
};

// kPermission unless running as root (BPF, cgroup attachment and bpffs need it).
Status RequireRoot();

// Loads every requested policy, attaches it to `target` and pins links and maps. A target
// already pinned is adopted: complete, live policies keep their links and maps (their mode and
// allow-list are updated in the pinned config), incomplete ones are attached again, policies
// no longer requested are removed. Pins of removed cgroups are pruned first.
Result<AttachResult> AttachPolicies(const Cgroup& target, const AttachRequest& request);

// Removes the pins of one target (kNotFound when nothing is attached to it), then the target
// directory, and `base` itself when it is left empty.
Status DetachTarget(const std::string& base, uint64_t cgroup_id);

// Detaches every target whose cgroup no longer exists (its links are already inert); returns
// their ids. A cgroup that cannot be checked is kept.
std::vector<uint64_t> PruneStaleTargets(const std::string& base);

// Flips one policy's mode in its pinned config map: takes effect at the next call, without
// reload or re-attach.
Status SetMode(const std::string& base, uint64_t cgroup_id, PolicyKind kind, Mode mode);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_CONTROL_H_
