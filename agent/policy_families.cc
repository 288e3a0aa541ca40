#include "policy_families.h"

#include "bpf/policy_families.h"
#include "policy_abi_check.h"
#include "policy_families.skel.h"

namespace tg {

template <>
void SkeletonDeleter<policy_families>::operator()(policy_families* skel) const {
  policy_families__destroy(skel);
}

Result<PolicyObject> LoadFamiliesPolicy(const PolicySpec& spec, Mechanism m) {
  const std::string_view name = PolicyName(PolicyKind::kAddressFamilies);
  Skeleton<policy_families> skel(policy_families__open());
  if (!skel) return FromLibbpf(-errno, "cannot open the address_families BPF object");
  if (auto st = SelectPrograms(skel->obj, m, name); !st.ok()) return st.error();
  if (auto st = LoadObject(skel->obj, m, name); !st.ok()) return st.error();
  const tg_fam_config cfg{ModeToAbi(spec.mode),
                          MechanismToAbi(m),
                          spec.allowed_families,
                          {},
                          {spec.observe_seccomp ? 1u : 0u, 0, 0, 0}};
  if (auto st = WriteConfig(skel->maps.tg_fam_cfg, &cfg, sizeof(cfg), name); !st.ok()) {
    return st.error();
  }
  bpf_object* obj = skel->obj;
  return PolicyObject(PolicyKind::kAddressFamilies, m, std::move(skel), obj);
}

}  // namespace tg
