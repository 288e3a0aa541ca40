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

// A unit is a target only once its ExecStartPre= commands are done: in start-pre runs the
// fail-closed drop-in's gate, `tunnelguard attach` inside the unit's cgroup, which needs
// AF_UNIX (D-Bus for the unit's policy, journald for its output) until it has pinned the
// policies itself. Attaching from the daemon in that window refused the gate's own sockets,
// or made the gate's pinning fail with EEXIST, and failed the tunnel's start (seen in
// vm.systemd_e2e); the daemon adopts the gate's pins after. systemd creates the cgroup and
// forks the gate *before* it moves the unit to start-pre, so the state read in that window is
// whatever came before: dead, auto-restart, and from systemd 254 auto-restart-queued,
// dead-before-auto-restart, ... A list of states to wait out missed those (a restart after
// kill -9 under systemd 257); the states where the gate is over are the stable list.
namespace {

bool PastItsStartGate(std::string_view sub_state) {
  static constexpr std::string_view kStarted[] = {
      "start", "start-post", "running", "reload", "reload-signal", "reload-notify", "exited"};
  return std::find(std::begin(kStarted), std::end(kStarted), sub_state) != std::end(kStarted);
}

}  // namespace

Result<Cgroup> ResolveTarget(const TargetSpec& spec) {
  if (!spec.cgroup.empty()) return OpenCgroup(spec.cgroup);
  auto unit = SystemdUnit::Find(spec.unit);
  if (!unit.ok()) return unit.error();
  auto sub = unit->SubState();
  if (!sub.ok()) return sub.error();
  if (!PastItsStartGate(*sub)) {
    return MakeError(ErrorKind::kNotFound,
                     spec.unit + " is " + *sub +
                         " (not started, or its ExecStartPre= attach gate still runs); "
                         "adopting its policies once it runs");
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
