#include "agent/face/confine.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <memory>
#include <vector>

namespace tg::face {
namespace {

// The calls the metrics face's loop makes: socket I/O on fds it was handed or accepted, epoll,
// memory, time, and leaving. Names the running libseccomp does not know are skipped.
constexpr const char* kAllowed[] = {
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "close",
    "accept",
    "accept4",
    "shutdown",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "futex",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "getpid",
    "gettid",
    "getppid",
    "rt_sigreturn",
    "rt_sigprocmask",
    "exit",
    "exit_group",
    "restart_syscall",
    "fstat",
    "newfstatat",
    "getrandom",
    "sched_yield",
};

Status DropCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) {
    return FromErrno(errno,
                     "dropping the face's capabilities (capset; the shipped unit allows it "
                     "with SystemCallFilter=bpf capset seccomp)");
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return FromErrno(errno, "clearing the face's ambient capabilities");
  }
  return Status::Ok();
}

}  // namespace

Status LoadAllowList(std::span<const char* const> extra) {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)),
                                                       seccomp_release);
  if (!ctx) return MakeError(ErrorKind::kInternal, "seccomp_init failed");
  // One thread today; should a later one appear, it starts under the same filter.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc < 0) {
    return FromErrno(-rc, "seccomp: thread synchronisation");
  }
  std::vector<const char*> allowed(std::begin(kAllowed), std::end(kAllowed));
  allowed.insert(allowed.end(), extra.begin(), extra.end());
  for (const char* name : allowed) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc < 0) {
      return FromErrno(-rc, std::string("seccomp: allowing ") + name);
    }
  }
  // abort() signals itself: kill and tgkill only with our own pid.
  const auto self = static_cast<scmp_datum_t>(::getpid());
  for (const char* name : {"kill", "tgkill"}) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, self));
        rc < 0) {
      return FromErrno(-rc, std::string("seccomp: allowing ") + name + " to self");
    }
  }
  if (int rc = seccomp_load(ctx.get()); rc < 0) {
    return FromErrno(-rc,
                     "loading the face's seccomp filter (allow seccomp and prctl in the "
                     "unit's SystemCallFilter=)");
  }
  return Status::Ok();
}

void CloseInheritedFds(int first_unused) {
  if (::syscall(SYS_close_range, first_unused, ~0U, 0) == 0) return;
  for (int fd = first_unused; fd < 65536; ++fd) ::close(fd);  // kernels before 5.9
}

Status ConfineFace(pid_t agent) {
  if (auto s = DropPrivileges(agent); !s.ok()) return s;
  return LoadAllowList();
}

Status DropPrivileges(pid_t agent) {
  if (auto s = DropCapabilities(); !s.ok()) return s;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return FromErrno(errno, "no_new_privs");
  // After capset: changing credentials clears the parent-death signal.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return FromErrno(errno, "pdeathsig");
  if (::getppid() != agent) {
    return MakeError(ErrorKind::kNotFound, "the agent that started this face has exited");
  }
  return Status::Ok();
}

}  // namespace tg::face
