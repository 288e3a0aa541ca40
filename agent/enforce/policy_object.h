// One loaded enforcement object (a bpf/policy_*.bpf.c), its programs chosen for one
// mechanism, and the links that attach them. Generic over the policies, so attach, pin and
// detach code is written once; the per-policy loaders (policy_families.h, policy_wx.h) only
// open their skeleton, choose programs, load and write their config.
#ifndef TUNNELGUARD_AGENT_POLICY_OBJECT_H_
#define TUNNELGUARD_AGENT_POLICY_OBJECT_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/base/bpf_owners.h"
#include "agent/base/result.h"
#include "agent/enforce/policy.h"

namespace tg {

class PolicyObject {
 public:
  // Takes ownership of a loaded skeleton; `obj` is its bpf_object.
  template <typename Skel>
  PolicyObject(PolicyKind kind, Mechanism mechanism, Skeleton<Skel> skel, bpf_object* obj)
      : kind_(kind),
        mechanism_(mechanism),
        obj_(obj),
        owner_(skel.release(), SkeletonDeleter<Skel>{}) {}

  PolicyKind kind() const { return kind_; }
  Mechanism mechanism() const { return mechanism_; }

  // Attaches every loaded program to the cgroup (lsm_cgroup: one BPF link per hook). The
  // links live in this object until they are pinned; destroying it unpinned detaches them.
  Status AttachToCgroup(int cgroup_fd);
  // Detaches what AttachToCgroup attached (before pinning; the cost measurement toggles it).
  void Detach() { links_.clear(); }

  // (program name, link) for every attached program.
  std::vector<std::pair<std::string, bpf_link*>> Links() const;
  // (map name, map) for every map worth pinning: config, counters, drops, events
  // (never .rodata/.bss, which belong to the programs).
  std::vector<std::pair<std::string, bpf_map*>> Maps() const;

 private:
  PolicyKind kind_;
  Mechanism mechanism_;
  bpf_object* obj_;
  // Declared before links_: links are destroyed first, then the skeleton.
  std::shared_ptr<void> owner_;
  std::vector<std::pair<std::string, BpfLink>> links_;
};

// Before load: turns autoload on for the programs that implement `m` (by section prefix,
// e.g. "lsm_cgroup/") and off for the rest. kUnsupported when the object has none yet.
Status SelectPrograms(bpf_object* obj, Mechanism m, std::string_view policy);

// Loads the object. A kernel refusal becomes kUnsupported "kernel refused lsm_cgroup
// program: EPERM" (the words of the feature probe); libbpf's misleading "ulimit -l" hint is
// kept out of the log unless debug logging is on.
Status LoadObject(bpf_object* obj, Mechanism m, std::string_view policy);

// Writes the single entry (key 0) of a config map.
Status WriteConfig(bpf_map* map, const void* value, size_t size, std::string_view policy);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_OBJECT_H_
