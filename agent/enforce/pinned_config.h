// The one owner of a policy's pinned config map (<policy dir>/<config map>, pin_layout.h):
// every read and every change of a pinned config goes through here, in every process.
//
// An array map's value is written whole (the kernel has no single-field update for it), so a
// change is a read-modify-write of the entry, and two writers interleaving lose one change:
// a canary that read the config before `tunnelctl mode … enforce` would write the old mode
// back. Writers are `tunnelguard attach` (adoption), the daemon's SetMode and its canary, and
// `tunnelguard canary`, in different processes: each change holds an exclusive flock(2) on
// the policy's bpffs directory, and each read a shared one (a userspace lookup copies the
// value without the kernel's lock, so an unlocked read could see half of a concurrent write).
// The BPF programs only read, a field at a time; each field is an aligned word.
#ifndef TUNNELGUARD_AGENT_ENFORCE_PINNED_CONFIG_H_
#define TUNNELGUARD_AGENT_ENFORCE_PINNED_CONFIG_H_

#include <functional>
#include <string>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {

// One policy's config, whichever policy it is (only the member of `kind` is meaningful).
struct PinnedConfig {
  PolicyKind kind = PolicyKind::kAddressFamilies;
  tg_fam_config fam{};
  tg_wx_config wx{};

  bool families() const { return kind == PolicyKind::kAddressFamilies; }
  uint32_t& mode() { return families() ? fam.mode : wx.mode; }
  uint32_t mode() const { return families() ? fam.mode : wx.mode; }
  uint32_t mechanism() const { return families() ? fam.mechanism : wx.mechanism; }
  tg_canary_state& canary() { return families() ? fam.canary : wx.canary; }
  const tg_canary_state& canary() const { return families() ? fam.canary : wx.canary; }
  tg_observe_state& observe() { return families() ? fam.observe : wx.observe; }
  const tg_observe_state& observe() const { return families() ? fam.observe : wx.observe; }
};

// Reads the config pinned in `policy_dir` (PolicyDir()). An error names the path: nothing
// pinned, or a config of another size (another tunnelguard version's ABI, never read).
Result<PinnedConfig> ReadPinnedConfig(const std::string& policy_dir, PolicyKind kind);

// Reads, applies `change`, writes back, under the policy's lock; returns what was written.
Result<PinnedConfig> ChangePinnedConfig(const std::string& policy_dir, PolicyKind kind,
                                        const std::function<void(PinnedConfig&)>& change);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_ENFORCE_PINNED_CONFIG_H_
