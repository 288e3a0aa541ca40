#include "agent/enforce/policy_control.h"

#include <bpf/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>

#include "agent/base/log.h"
#include "agent/base/unique_fd.h"
#include "agent/enforce/mechanism.h"
#include "agent/enforce/observe_cost.h"
#include "agent/enforce/pinned_config.h"
#include "agent/enforce/policy_families.h"
#include "agent/enforce/policy_object.h"
#include "agent/enforce/policy_status.h"
#include "agent/enforce/policy_wx.h"
#include "agent/enforce/unix_notify.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {
namespace {

// Records every directory and pin it creates; unless committed, removes them again (newest
// first) when it goes out of scope.
class PinTransaction {
 public:
  PinTransaction() = default;
  PinTransaction(const PinTransaction&) = delete;
  PinTransaction& operator=(const PinTransaction&) = delete;
  ~PinTransaction() {
    if (committed_) return;
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      if (it->second) {
        ::rmdir(it->first.c_str());
      } else {
        ::unlink(it->first.c_str());
      }
    }
  }

  Status MakeDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) == 0) {
      created_.emplace_back(dir, true);
      return Status::Ok();
    }
    if (errno == EEXIST) return Status::Ok();
    return FromErrno(errno, "cannot create " + dir);
  }
  Status PinMap(bpf_map* map, const std::string& path) {
    if (const int err = bpf_map__pin(map, path.c_str()); err != 0) {
      return FromLibbpf(err, "cannot pin map at " + path);
    }
    created_.emplace_back(path, false);
    return Status::Ok();
  }
  Status PinLink(bpf_link* link, const std::string& path) {
    if (const int err = bpf_link__pin(link, path.c_str()); err != 0) {
      return FromLibbpf(err, "cannot pin link at " + path);
    }
    created_.emplace_back(path, false);
    return Status::Ok();
  }
  void Commit() { committed_ = true; }

 private:
  std::vector<std::pair<std::string, bool>> created_;  // (path, is a directory)
  bool committed_ = false;
};

Result<PolicyObject> LoadPolicy(const PolicySpec& spec, Mechanism m) {
  switch (spec.kind) {
    case PolicyKind::kAddressFamilies:
      return LoadFamiliesPolicy(spec, m);
    case PolicyKind::kWxMemory:
      return LoadWxPolicy(spec, m);
  }
  return MakeError(ErrorKind::kInternal, "unknown policy");
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status RemoveIfPresent(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  return FromErrno(errno, "cannot remove " + path);
}

Status RemoveDirIfPresent(const std::string& dir) {
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  if (errno == ENOTEMPTY) {
    return MakeError(ErrorKind::kInternal,
                     dir +
                         " holds pins tunnelguard did not make; left in place, remove them "
                         "by hand");
  }
  return FromErrno(errno, "cannot remove " + dir);
}

// Pins every object's maps and links under the target's directory (which must exist).
Status PinObjects(const std::string& base, uint64_t cgroup_id,
                  const std::vector<PolicyObject>& objects, PinTransaction& pins) {
  for (const PolicyObject& obj : objects) {
    const std::string dir = PolicyDir(base, cgroup_id, obj.kind());
    if (auto st = pins.MakeDir(dir); !st.ok()) return st;
    const PinManifest& manifest = ManifestFor(obj.kind());
    for (const auto& [name, map] : obj.Maps()) {
      const auto maps = manifest.Maps();
      if (std::find(maps.begin(), maps.end(), name) == maps.end()) {
        return MakeError(ErrorKind::kInternal, "map " + name +
                                                   " is missing from the pin "
                                                   "manifest (pin_layout.cc)");
      }
      if (auto st = pins.PinMap(map, dir + "/" + name); !st.ok()) return st;
    }
    for (const auto& [name, link] : obj.Links()) {
      const auto programs = manifest.AllPrograms();
      if (std::find(programs.begin(), programs.end(), name) == programs.end()) {
        return MakeError(ErrorKind::kInternal, "program " + name +
                                                   " is missing from the pin "
                                                   "manifest (pin_layout.cc)");
      }
      if (auto st = pins.PinLink(link, dir + "/" + LinkPinName(name)); !st.ok()) {
        return st;
      }
    }
  }
  return Status::Ok();
}

// Removes one policy's pins (links first: removing the last reference detaches a program),
// then its directory.
Status RemovePolicyPins(const std::string& base, uint64_t cgroup_id, PolicyKind kind) {
  const std::string dir = PolicyDir(base, cgroup_id, kind);
  const PinManifest& manifest = ManifestFor(kind);
  for (const std::string& prog : manifest.AllPrograms()) {
    if (auto st = RemoveIfPresent(dir + "/" + LinkPinName(prog)); !st.ok()) return st;
  }
  for (const std::string& map : manifest.Maps()) {
    if (auto st = RemoveIfPresent(dir + "/" + map); !st.ok()) return st;
  }
  return RemoveDirIfPresent(dir);
}

// What a pinned config records about how its programs are hooked.
struct PinnedHooks {
  Mechanism mechanism;
  uint32_t sys_exit_calls;  // observe: the calls on the sys_exit fallback (TG_OBS_* bits)
};

// The mechanism (and observe's hooks) recorded in a policy's pinned config.
std::optional<PinnedHooks> PinnedMechanism(const std::string& policy_dir, PolicyKind kind) {
  auto c = ReadPinnedConfig(policy_dir, kind);
  if (!c.ok()) return std::nullopt;
  const auto m = MechanismFromAbi(c->mechanism());
  if (!m) return std::nullopt;
  return PinnedHooks{*m, c->observe().sys_exit_calls};
}

// A policy's pins as a new attach finds them. kOutdated: complete but made by a tunnelguard
// with another map ABI (CheckPinnedAbi); attached again like kIncomplete.
enum class Pinned { kAbsent, kComplete, kIncomplete, kOutdated };

// Complete: every map and link of the manifest is pinned and every link is live on this
// cgroup. An attach killed half-way (kill -9 between two pins) leaves an incomplete set.
Pinned InspectPins(const std::string& base, uint64_t cgroup_id, PolicyKind kind) {
  const std::string dir = PolicyDir(base, cgroup_id, kind);
  if (!Exists(dir)) return Pinned::kAbsent;
  const PinManifest& manifest = ManifestFor(kind);
  for (const std::string& map : manifest.Maps()) {
    if (!Exists(dir + "/" + map)) return Pinned::kIncomplete;
  }
  if (auto st = CheckPinnedAbi(dir, kind); !st.ok()) {
    log::Warning("{}: {}", PolicyName(kind), st.error().message);
    return Pinned::kOutdated;
  }
  auto hooks = PinnedMechanism(dir, kind);
  if (!hooks) return Pinned::kIncomplete;
  for (const std::string& prog : manifest.ProgramsFor(hooks->mechanism, hooks->sys_exit_calls)) {
    UniqueFd fd(bpf_obj_get((dir + "/" + LinkPinName(prog)).c_str()));
    if (!fd.valid()) return Pinned::kIncomplete;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return Pinned::kIncomplete;
    if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id != cgroup_id) {
      return Pinned::kIncomplete;
    }
  }
  return Pinned::kComplete;
}

// Writes a changed mode / allow-list into the pinned config map the running programs read:
// one map update, no reload, no detach. Each field is an aligned word the kernel copies as a
// whole, so every call sees either the old or the new value of it, never a mix; mode and
// list are two fields (a call racing the update may see the new list with the old mode).
Result<Mechanism> UpdatePinnedConfig(const std::string& base, uint64_t cgroup_id,
                                     const PolicySpec& spec, const SetupExemption& setup) {
  const std::string dir = PolicyDir(base, cgroup_id, spec.kind);
  tg_unix_notify notify{};
  if (!spec.notify_socket.empty()) {
    if (auto st = NotifySocketToAbi(spec.notify_socket, notify); !st.ok()) return st.error();
  }
  auto written = ChangePinnedConfig(dir, spec.kind, [&](PinnedConfig& c) {
    c.mode() = ModeToAbi(spec.mode);
    c.observe().seccomp = spec.observe_seccomp ? 1 : 0;
    if (!c.families()) return;
    c.fam.allowed = spec.allowed_families;
    c.fam.notify = notify;
    // PID 1 may have re-exec'd an upgraded binary: record it anew (the sandboxed daemon
    // cannot read it: keep the old).
    const uint64_t ino = c.fam.setup.exe_ino;
    SetupExemptionToAbi(setup, c.fam.setup);
    if (c.fam.setup.exe_ino == 0 && c.fam.setup.tgid != 0) c.fam.setup.exe_ino = ino;
  });
  if (!written.ok()) return written.error();
  auto m = MechanismFromAbi(written->mechanism());
  if (!m) return MakeError(ErrorKind::kInternal, dir + "'s config names no known mechanism");
  return *m;
}

}  // namespace

Status RequireRoot() {
  if (::geteuid() == 0) return Status::Ok();
  return MakeError(ErrorKind::kPermission,
                   "must run as root: loading BPF-LSM programs, attaching them to a cgroup and "
                   "pinning in bpffs need CAP_SYS_ADMIN and CAP_BPF; re-run with sudo");
}

namespace {

// The request's own mistakes, refused before anything is loaded.
Status CheckAttachRequest(const Cgroup& target, const AttachRequest& request) {
  if (auto st = RequireRoot(); !st.ok()) return st;
  if (request.policies.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "no policy to attach: --families and --wx-memory are both off");
  }
  if (target.relative == "/") {
    // The root cgroup holds every process of the host, init and this agent included.
    return MakeError(ErrorKind::kInvalidArgument,
                     "refusing to attach to the root cgroup " + target.path +
                         " (it would restrict every process on the host); give the tunnel's "
                         "own cgroup, e.g. --unit cloudflared.service");
  }
  return CheckOnBpffs(request.bpffs_dir);
}

// A policy whose pins are complete keeps its live links and maps — no second attach, no gap,
// counters continue — and only what changed is written into its config.
Result<Mechanism> AdoptPinned(const Cgroup& target, const AttachRequest& request,
                              const PolicySpec& spec, const SetupExemption& setup) {
  const std::string& base = request.bpffs_dir;
  const PolicyKind kind = spec.kind;
  const auto hooks = PinnedMechanism(PolicyDir(base, target.id, kind), kind);
  const auto pinned_mechanism = hooks ? std::optional<Mechanism>(hooks->mechanism) : std::nullopt;
  if (request.mechanism && pinned_mechanism && *request.mechanism != *pinned_mechanism) {
    return MakeError(ErrorKind::kInvalidArgument,
                     std::string(PolicyName(kind)) + " on " + target.path + " is pinned with " +
                         std::string(MechanismName(*pinned_mechanism)) +
                         "; a mechanism cannot change in place: detach first");
  }
  if (pinned_mechanism == Mechanism::kObserve && spec.mode == Mode::kEnforce) {
    // Writing enforce into an observer's config would count denials nothing made.
    return MakeError(ErrorKind::kUnsupported,
                     "enforcement unavailable: " + std::string(PolicyName(kind)) + " on " +
                         target.path +
                         " is pinned with observe, which can only audit; detach first to "
                         "enforce with BPF-LSM");
  }
  auto m = UpdatePinnedConfig(base, target.id, spec, setup);
  if (!m.ok()) return m.error();
  log::Info("{}: adopted the pinned links on {} (cgroup id {}), config updated in place",
            PolicyName(kind), target.path, target.id);
  return *m;
}

// What an attach must load: the policies without complete pins, and which of them replace old
// pins (removed only once their successors are attached: both briefly enforce, no gap).
struct AttachPlan {
  std::vector<const PolicySpec*> fresh;
  std::vector<PolicyKind> replace;
};

// Adopts what is pinned complete, detaches what is no longer asked for, plans the rest.
Result<AttachPlan> AdoptOrPlan(const Cgroup& target, const AttachRequest& request,
                               const SetupExemption& setup, AttachResult& result) {
  const std::string& base = request.bpffs_dir;
  AttachPlan plan;
  for (PolicyKind kind : kAllPolicyKinds) {
    const auto spec = std::find_if(request.policies.begin(), request.policies.end(),
                                   [kind](const PolicySpec& p) { return p.kind == kind; });
    const Pinned pinned = InspectPins(base, target.id, kind);
    if (spec == request.policies.end()) {
      if (pinned == Pinned::kAbsent) continue;
      // Asked off: removed, as detach would.
      if (auto st = RemovePolicyPins(base, target.id, kind); !st.ok()) return st.error();
      log::Info("{}: detached from {} (no longer requested)", PolicyName(kind), target.path);
      continue;
    }
    if (kind == PolicyKind::kAddressFamilies) result.setup = setup;
    if (pinned == Pinned::kComplete) {
      auto m = AdoptPinned(target, request, *spec, setup);
      if (!m.ok()) return m.error();
      result.mechanism = *m;
      result.adopted.push_back(kind);
      continue;
    }
    if (pinned == Pinned::kIncomplete) {
      log::Warning("{}: pins on {} are incomplete (an attach was interrupted); attaching again",
                   PolicyName(kind), target.path);
    }
    if (pinned == Pinned::kOutdated) {
      log::Warning("{}: pins on {} were made by another tunnelguard version; attaching again",
                   PolicyName(kind), target.path);
    }
    if (pinned != Pinned::kAbsent) plan.replace.push_back(kind);
    plan.fresh.push_back(&*spec);
  }
  return plan;
}

// Loads the planned policies; observe's host-wide cost is measured here, before anything is
// pinned, and recorded in their configs.
Result<std::vector<PolicyObject>> LoadPlanned(const AttachPlan& plan, Mechanism mechanism,
                                              const Cgroup& target) {
  std::vector<PolicyObject> objects;
  for (const PolicySpec* spec : plan.fresh) {
    auto obj = LoadPolicy(*spec, mechanism);
    if (!obj.ok()) {
      Error e = obj.error();
      if (e.kind == ErrorKind::kUnsupported) e.message = "enforcement unavailable: " + e.message;
      return e;
    }
    objects.push_back(std::move(*obj));
  }
  if (mechanism != Mechanism::kObserve) return objects;
  auto cost = MeasureObserveCost(objects, target.fd.get());
  if (!cost.ok()) return cost.error();
  if (auto st = RecordObserveCost(objects, *cost); !st.ok()) return st.error();
  log::Notice(
      "observe: getppid() {:.0f} ns without, {:.0f} ns with the syscall exit tracepoints "
      "enabled (x{:.2f}, every task on the host)",
      cost->bare_ns, cost->observed_ns, cost->ratio());
  return objects;
}

// Attaches the loaded objects, removes the pins they replace, and pins them (all or none).
Status AttachAndPin(const Cgroup& target, const std::string& base, const std::string& target_dir,
                    std::vector<PolicyObject>& objects, const std::vector<PolicyKind>& replace) {
  for (PolicyObject& obj : objects) {
    if (auto st = obj.AttachToCgroup(target.fd.get()); !st.ok()) return st;
  }
  for (PolicyKind kind : replace) {
    if (auto st = RemovePolicyPins(base, target.id, kind); !st.ok()) return st;
  }
  PinTransaction pins;
  if (auto st = pins.MakeDir(base); !st.ok()) return st;
  if (auto st = pins.MakeDir(target_dir); !st.ok()) return st;
  if (auto st = PinObjects(base, target.id, objects, pins); !st.ok()) return st;
  pins.Commit();
  for (const PolicyObject& obj : objects) {
    log::Info("{}: attached to {} (cgroup id {}) with {}", PolicyName(obj.kind()), target.path,
              target.id, MechanismName(obj.mechanism()));
  }
  return Status::Ok();
}

}  // namespace

Result<AttachResult> AttachPolicies(const Cgroup& target, const AttachRequest& request) {
  if (auto st = CheckAttachRequest(target, request); !st.ok()) return st.error();
  const std::string& base = request.bpffs_dir;
  const std::string target_dir = TargetDir(base, target.id);
  PruneStaleTargets(base);
  const bool any_enforce =
      std::any_of(request.policies.begin(), request.policies.end(),
                  [](const PolicySpec& p) { return p.mode == Mode::kEnforce; });
  auto mechanism = ChooseMechanism(request.mechanism, any_enforce ? Mode::kEnforce : Mode::kAudit,
                                   request.check_lsm_list);
  if (!mechanism.ok()) return mechanism.error();

  // Adoption: a target already pinned (an earlier attach, a crashed or upgraded agent) keeps
  // its live links; a policy whose pins are incomplete is attached again.
  AttachResult result{target.id, *mechanism, target_dir, {}, {}};
  auto plan = AdoptOrPlan(target, request, DetectSetupExemption(), result);
  if (!plan.ok()) return plan.error();
  if (plan->fresh.empty()) return result;
  auto objects = LoadPlanned(*plan, *mechanism, target);
  if (!objects.ok()) return objects.error();
  if (auto st = AttachAndPin(target, base, target_dir, *objects, plan->replace); !st.ok()) {
    return st.error();
  }
  return result;
}

Status DetachTarget(const std::string& base, uint64_t cgroup_id) {
  if (auto st = RequireRoot(); !st.ok()) return st;
  const std::string target_dir = TargetDir(base, cgroup_id);
  if (!Exists(target_dir)) {
    return MakeError(
        ErrorKind::kNotFound,
        "nothing attached to cgroup id " + std::to_string(cgroup_id) + " (no " + target_dir + ")");
  }
  for (PolicyKind kind : kAllPolicyKinds) {
    if (auto st = RemovePolicyPins(base, cgroup_id, kind); !st.ok()) return st;
  }
  if (auto st = RemoveDirIfPresent(target_dir); !st.ok()) return st;
  ::rmdir(base.c_str());  // only succeeds when no other target (or other user) is left
  log::Info("detached cgroup id {}", cgroup_id);
  return Status::Ok();
}

std::vector<uint64_t> PruneStaleTargets(const std::string& base) {
  std::vector<uint64_t> pruned;
  for (uint64_t id : PinnedTargets(base)) {
    auto exists = CgroupExists(id);
    if (!exists.ok() || *exists) continue;  // unknown is never pruned
    if (DetachTarget(base, id).ok()) {
      log::Info("pruned the pins of removed cgroup id {}", id);
      pruned.push_back(id);
    }
  }
  return pruned;
}

Status SetMode(const std::string& base, uint64_t cgroup_id, PolicyKind kind, Mode mode) {
  auto written = ChangePinnedConfig(PolicyDir(base, cgroup_id, kind), kind,
                                    [mode](PinnedConfig& c) { c.mode() = ModeToAbi(mode); });
  if (!written.ok()) return written.error();
  return Status::Ok();
}

}  // namespace tg
