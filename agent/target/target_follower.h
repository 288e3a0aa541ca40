// Following one configured target — a systemd unit or a cgroup path — across the tunnel's
// restarts: each Poll() re-resolves it and says whether a new incarnation of its cgroup
// appeared, whether it went away, or nothing changed; an inotify watch on the directory that
// holds the cgroup (its slice) wakes the caller the moment systemd re-creates it. One follower
// per target, so several tunnels are followed independently (`tunnelguard run`).
#ifndef TUNNELGUARD_AGENT_TARGET_TARGET_FOLLOWER_H_
#define TUNNELGUARD_AGENT_TARGET_TARGET_FOLLOWER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/target/cgroup.h"

namespace tg {

// What to guard: a unit (its cgroup is asked from systemd) or a cgroup path.
struct TargetSpec {
  std::string unit{};
  std::string cgroup{};
  // As configured: the unit's name or the cgroup path (the `unit` metric label, tunnelctl's).
  const std::string& name() const { return cgroup.empty() ? unit : cgroup; }
};

// Resolves a target now. A unit that has not started yet (its ExecStartPre= gate runs, or it
// is between restarts) is kNotFound: see the .cc for why attaching in that window is wrong.
Result<Cgroup> ResolveTarget(const TargetSpec& spec);

class TargetFollower {
 public:
  enum class Change {
    kNone,       // as before (present or still missing)
    kFound,      // first sight of the cgroup: current() holds it
    kRecreated,  // a new incarnation (new id) after the tunnel restarted: current() holds it
    kLost,       // missing now, or missing for another reason: wait_reason() says why
  };
  explicit TargetFollower(TargetSpec spec);

  Change Poll();
  const TargetSpec& spec() const { return spec_; }
  // The cgroup of the last incarnation found, while it is present.
  const std::optional<Cgroup>& current() const { return current_; }
  uint64_t previous_id() const { return previous_id_; }
  const std::string& wait_reason() const { return wait_reason_; }

  // Readable when a cgroup appears in or leaves the target's parent directory (-1: no watch).
  int watch_fd() const { return inotify_.get(); }
  void DrainWatch() const;

 private:
  void Watch(const std::string& dir);
  std::string ParentToWatch() const;

  TargetSpec spec_;
  std::optional<Cgroup> current_;
  uint64_t previous_id_ = 0;  // the incarnation before current_ (0: none)
  uint64_t last_id_ = 0;      // the last incarnation seen, to tell a re-created cgroup
  std::string wait_reason_;
  UniqueFd inotify_;
  int wd_ = -1;
  std::string watched_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_TARGET_TARGET_FOLLOWER_H_
