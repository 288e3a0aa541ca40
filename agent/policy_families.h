// Loader for bpf/policy_families.bpf.c: RestrictAddressFamilies= as a BPF-LSM policy.
#ifndef TUNNELGUARD_AGENT_POLICY_FAMILIES_H_
#define TUNNELGUARD_AGENT_POLICY_FAMILIES_H_

#include "policy.h"
#include "policy_object.h"
#include "result.h"

namespace tg {

// Opens, selects the programs of `m`, loads, and writes mode and allow-list (spec.mode,
// spec.allowed_families) into the config map. Nothing is attached yet.
Result<PolicyObject> LoadFamiliesPolicy(const PolicySpec& spec, Mechanism m);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_FAMILIES_H_
