#include "agent/target/target_follower.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <string_view>

#include "agent/target/systemd_unit.h"

namespace tg {
namespace {

std::string Parent(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? "" : path.substr(0, slash);
}

}  // namespace

// A unit whose ExecStartPre= commands run (SubState "start-pre") is not a target yet: that is
// the fail-closed drop-in's gate, `tunnelguard attach` inside the unit's cgroup, which needs
// AF_UNIX (D-Bus for the unit's policy, journald for its output) until it has pinned the
// policies itself. Attaching from the daemon in that window refused the gate's own sockets and
// failed the tunnel's start (seen in vm.systemd_e2e); the daemon adopts the gate's pins after.
// systemd creates the cgroup and forks the gate *before* it moves the unit to start-pre, so
// the states a (re)starting unit passes through on the way are waited out too (a restart after
// kill -9: the daemon attached while the unit still read "auto-restart", and the gate's own
// pinning then failed with EEXIST).
Result<Cgroup> ResolveTarget(const TargetSpec& spec) {
  if (!spec.cgroup.empty()) return OpenCgroup(spec.cgroup);
  auto unit = SystemdUnit::Find(spec.unit);
  if (!unit.ok()) return unit.error();
  static constexpr std::string_view kNotStartedYet[] = {"start-pre", "condition", "auto-restart",
                                                        "dead", "failed"};
  if (auto sub = unit->SubState();
      sub.ok() && std::find(std::begin(kNotStartedYet), std::end(kNotStartedYet), *sub) !=
                      std::end(kNotStartedYet)) {
    return MakeError(ErrorKind::kNotFound,
                     spec.unit + " is " + *sub +
                         " (not started yet; its ExecStartPre= attach gate runs first); "
                         "adopting its policies once it has started");
  }
  auto path = unit->ControlGroup();
  if (!path.ok()) return path.error();
  return OpenCgroup(*path);
}

TargetFollower::TargetFollower(TargetSpec spec)
    : spec_(std::move(spec)), inotify_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}

TargetFollower::Change TargetFollower::Poll() {
  auto cg = ResolveTarget(spec_);
  Watch(cg.ok() ? Parent(cg->path) : ParentToWatch());
  if (cg.ok()) {
    if (current_ && current_->id == cg->id) return Change::kNone;
    previous_id_ = last_id_;
    last_id_ = cg->id;
    current_ = std::move(*cg);
    wait_reason_.clear();
    return previous_id_ != 0 ? Change::kRecreated : Change::kFound;
  }
  // Not there (yet, or any more): the tunnel is stopped or restarting. Reported once a reason.
  if (cg.error().message == wait_reason_ && !current_) return Change::kNone;
  wait_reason_ = cg.error().message;
  current_.reset();
  return Change::kLost;
}

// Where the target's cgroup will appear: known from its last sight, or from a cgroup path.
std::string TargetFollower::ParentToWatch() const {
  if (!watched_.empty() || spec_.cgroup.empty()) return watched_;
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return "";
  const std::string& c = spec_.cgroup;
  const bool absolute = c.rfind(*mount + "/", 0) == 0;
  return Parent(absolute ? c : *mount + (c[0] == '/' ? "" : "/") + c);
}

// mkdir(2) on cgroupfs goes through the VFS, which reports it: a restarted tunnel is seen within
// milliseconds of systemd creating its cgroup, not at the next poll.
void TargetFollower::Watch(const std::string& dir) {
  if (!inotify_.valid() || dir.empty() || dir == watched_) return;
  if (wd_ >= 0) ::inotify_rm_watch(inotify_.get(), wd_);
  wd_ = ::inotify_add_watch(inotify_.get(), dir.c_str(), IN_CREATE | IN_DELETE | IN_ONLYDIR);
  watched_ = wd_ >= 0 ? dir : "";
}

void TargetFollower::DrainWatch() const {
  char buf[4096];
  while (::read(inotify_.get(), buf, sizeof(buf)) > 0) {
  }
}

}  // namespace tg
