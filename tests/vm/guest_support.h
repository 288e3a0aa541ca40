// Shared machinery of the guest tests: cgroups, child processes placed in them, and an
// attachment that is detached on every path.
#ifndef TUNNELGUARD_TESTS_VM_GUEST_SUPPORT_H_
#define TUNNELGUARD_TESTS_VM_GUEST_SUPPORT_H_

#include <functional>
#include <optional>
#include <string>

#include "agent/enforce/policy.h"
#include "agent/enforce/policy_control.h"
#include "agent/enforce/policy_status.h"
#include "agent/target/cgroup.h"

namespace tg::testing {

// /sys/fs/cgroup/tg-target (attached to), tg-target/child (created *after* attach by the
// tests that need it), tg-outside (a sibling, never attached to).
struct GuestCgroups {
  std::string mount;
  std::string target;
  std::string child;
  std::string outside;
};
const GuestCgroups& Cgroups();  // creates target and outside on first use

// bit N for each family
uint64_t Families(std::initializer_list<int> families);

struct ChildOptions {
  std::string cgroup;             // joined before `op` runs ("" = stay)
  bool systemd_filter = false;    // install systemd's seccomp filters first
  uint64_t seccomp_families = 0;  // the allow-list for that filter
  std::string comm;               // thread name to take ("" = keep)
};

inline ChildOptions In(const std::string& cgroup) {
  ChildOptions o;
  o.cgroup = cgroup;
  return o;
}
inline ChildOptions UnderSystemd(const std::string& cgroup, uint64_t families) {
  ChildOptions o = In(cgroup);
  o.systemd_filter = true;
  o.seccomp_families = families;
  return o;
}

// Forks; the child joins the cgroup, applies the options, runs `op` and exits with its
// result (0..255). Returns that result, or -1 when the child could not be set up.
int RunInChild(const ChildOptions& options, const std::function<int()>& op,
               int* child_pid = nullptr);

// The policies of one attach, detached when this goes out of scope.
class Attachment {
 public:
  // `mechanism` empty: chosen by probing, as the agent does (lsm_cgroup on the guest kernels).
  // `notify_socket`: unix-notify's peer, for `families` with that mode.
  static std::optional<Attachment> Attach(const std::string& cgroup, Mode mode, uint64_t families,
                                          bool wx, std::string* error,
                                          std::optional<Mechanism> mechanism = std::nullopt,
                                          const std::string& notify_socket = "");
  Attachment(Attachment&& other) noexcept;
  Attachment& operator=(Attachment&& other) noexcept;
  ~Attachment();

  uint64_t cgroup_id() const { return cgroup_id_; }
  // Sets both policies' mode through the pinned config maps (no reload).
  bool SetModeAll(Mode mode);
  // One policy's current status (counters summed over CPUs).
  PolicyStatus Read(PolicyKind kind) const;

 private:
  Attachment() = default;
  uint64_t cgroup_id_ = 0;
  bool owned_ = false;
};

// One detail's decisions (all zero when it never occurred).
inline Decisions DetailOf(const PolicyStatus& s, const std::string& detail) {
  auto it = s.by_detail.find(detail);
  return it == s.by_detail.end() ? Decisions{} : it->second;
}

inline const char kBpffsDir[] = "/sys/fs/bpf/tunnelguard";

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_VM_GUEST_SUPPORT_H_
