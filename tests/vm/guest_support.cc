#include "guest_support.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "systemd_seccomp.h"

namespace tg::testing {

const GuestCgroups& Cgroups() {
  static const GuestCgroups cg = [] {
    GuestCgroups c;
    auto m = FindCgroup2Mount();
    c.mount = m.ok() ? *m : "/sys/fs/cgroup";
    c.target = c.mount + "/tg-target";
    c.child = c.target + "/child";
    c.outside = c.mount + "/tg-outside";
    ::mkdir(c.target.c_str(), 0755);
    ::mkdir(c.outside.c_str(), 0755);
    return c;
  }();
  return cg;
}

uint64_t Families(std::initializer_list<int> families) {
  uint64_t mask = 0;
  for (int f : families) mask |= uint64_t{1} << f;
  return mask;
}

int RunInChild(const ChildOptions& o, const std::function<int()>& op, int* child_pid) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!o.cgroup.empty()) {
      const int fd = ::open((o.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(254);
      ::close(fd);
    }
    if (!o.comm.empty()) ::prctl(PR_SET_NAME, o.comm.c_str(), 0, 0, 0);
    if (o.systemd_filter && !InstallSystemdFilters(o.seccomp_families).empty()) ::_exit(253);
    const int r = op();
    ::_exit(r < 0 ? 252 : r);
  }
  if (child_pid != nullptr) *child_pid = pid;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  const int code = WEXITSTATUS(status);
  return code >= 252 && code <= 254 ? -1 : code;
}

std::optional<Attachment> Attachment::Attach(const std::string& cgroup, Mode mode,
                                             uint64_t families, bool wx, std::string* error,
                                             std::optional<Mechanism> mechanism,
                                             const std::string& notify_socket) {
  auto cg = OpenCgroup(cgroup);
  if (!cg.ok()) {
    *error = cg.error().message;
    return std::nullopt;
  }
  AttachRequest req;
  req.bpffs_dir = kBpffsDir;
  req.mechanism = mechanism;
  req.policies.push_back({PolicyKind::kAddressFamilies, mode, families, notify_socket});
  if (wx) req.policies.push_back({PolicyKind::kWxMemory, mode, 0});
  auto r = AttachPolicies(*cg, req);
  if (!r.ok()) {
    *error = r.error().message;
    return std::nullopt;
  }
  Attachment a;
  a.cgroup_id_ = cg->id;
  a.owned_ = true;
  return a;
}

Attachment::Attachment(Attachment&& other) noexcept
    : cgroup_id_(other.cgroup_id_), owned_(other.owned_) {
  other.owned_ = false;
}

Attachment& Attachment::operator=(Attachment&& other) noexcept {
  if (this != &other) {
    if (owned_) (void)DetachTarget(kBpffsDir, cgroup_id_);
    cgroup_id_ = other.cgroup_id_;
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

Attachment::~Attachment() {
  if (owned_) (void)DetachTarget(kBpffsDir, cgroup_id_);
}

bool Attachment::SetModeAll(Mode mode) {
  bool ok = true;
  for (PolicyKind k : kAllPolicyKinds) {
    struct stat st {};
    if (::stat(PolicyDir(kBpffsDir, cgroup_id_, k).c_str(), &st) != 0) continue;
    ok = SetMode(kBpffsDir, cgroup_id_, k, mode).ok() && ok;
  }
  return ok;
}

PolicyStatus Attachment::Read(PolicyKind kind) const {
  auto t = ReadTargetStatus(kBpffsDir, cgroup_id_);
  if (t.ok()) {
    for (const PolicyStatus& p : t->policies) {
      if (p.kind == kind) return p;
    }
  }
  PolicyStatus none;
  none.kind = kind;
  none.problem = "not attached";
  return none;
}

}  // namespace tg::testing
