#include "agent/enforce/canary.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <thread>

#include "agent/base/clock.h"
#include "agent/base/log.h"
#include "agent/base/unique_fd.h"
#include "agent/enforce/families.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/pinned_config.h"
#include "agent/enforce/policy_abi_check.h"
#include "agent/enforce/policy_status.h"
#include "agent/enforce/policy_wx.h"
#include "agent/enforce/unix_notify.h"
#include "agent/target/kernel_features.h"
#include "agent/target/lsm_probe.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {
namespace {

constexpr int kNotAttempted = -1;

bool Observes(const PinnedConfig& c) {
  return c.mechanism() == MechanismToAbi(Mechanism::kObserve);
}

Result<PinnedConfig> ReadConfig(const std::string& base, uint64_t cgroup_id, PolicyKind kind) {
  const std::string dir = PolicyDir(base, cgroup_id, kind);
  if (auto st = CheckPinnedAbi(dir, kind); !st.ok()) return st.error();
  return ReadPinnedConfig(dir, kind);
}

// Writes the canary's own fields only, under the config's lock: the mode and allow-list
// belong to their writers and may have changed since ReadConfig (SetMode, attach).
Status UpdateCanaryState(const std::string& base, uint64_t cgroup_id, const PinnedConfig& c,
                         const tg_canary_state& state) {
  auto written = ChangePinnedConfig(PolicyDir(base, cgroup_id, c.kind), c.kind,
                                    [&state](PinnedConfig& now) { now.canary() = state; });
  if (!written.ok()) return written.error();
  return Status::Ok();
}

Result<Decisions> ReadCanaryCounters(const std::string& base, uint64_t cgroup_id, PolicyKind kind) {
  const std::string path = PolicyDir(base, cgroup_id, kind) + "/" + ManifestFor(kind).canary_map;
  auto counts = ReadPerCpuCounters(path, TG_ACTIONS);
  if (!counts.ok()) return counts.error();
  return Decisions{(*counts)[TG_ACT_ALLOW], (*counts)[TG_ACT_DENY], (*counts)[TG_ACT_WOULD_DENY],
                   (*counts)[TG_ACT_DENIED_BY_SECCOMP], (*counts)[TG_ACT_EXEMPT_SETUP]};
}

// address_families: the canary's peer-hook (unix_may_send) decisions, the counters' second half.
Result<Decisions> ReadCanaryPeerCounters(const std::string& base, uint64_t cgroup_id) {
  const std::string path = PolicyDir(base, cgroup_id, PolicyKind::kAddressFamilies) + "/" +
                           ManifestFor(PolicyKind::kAddressFamilies).canary_map;
  auto counts = ReadPerCpuCounters(path, TG_FAM_CANARY_COUNTERS);
  if (!counts.ok()) return counts.error();
  const auto at = [&](uint32_t action) { return (*counts)[TG_ACTIONS + action]; };
  return Decisions{at(TG_ACT_ALLOW), at(TG_ACT_DENY), at(TG_ACT_WOULD_DENY),
                   at(TG_ACT_DENIED_BY_SECCOMP), at(TG_ACT_EXEMPT_SETUP)};
}

// wx_memory: the canary's refused calls by detail (tg_wx_canary after its action totals), so
// each hook's attempt is judged on its own counter.
Result<std::vector<uint64_t>> ReadCanaryDetails(const std::string& base, uint64_t cgroup_id) {
  const std::string path = PolicyDir(base, cgroup_id, PolicyKind::kWxMemory) + "/" +
                           ManifestFor(PolicyKind::kWxMemory).canary_map;
  auto counts = ReadPerCpuCounters(path, TG_WX_CANARY_COUNTERS);
  if (!counts.ok()) return counts.error();
  return std::vector<uint64_t>(counts->begin() + TG_ACTIONS, counts->end());
}

// The first family outside the allow-list that every Linux build has (a family whose module
// is absent gets EAFNOSUPPORT from the kernel itself, which must never look like a denial;
// the counter check covers that too). -1 when all of them are allowed.
int ForbiddenFamily(uint64_t allowed) {
  for (int family : {AF_UNIX, AF_NETLINK, AF_INET6, AF_INET, AF_PACKET}) {
    if (((allowed >> family) & 1) == 0) return family;
  }
  return -1;
}

// The helper's attempts. Only plain system calls: it runs in a fork of a possibly
// multithreaded process. Each returns 0 on success or the errno.
// observe sees a socket() that created a socket (socketpair of most families fails after the
// sockets were made, and a failed call is not counted); outside the agent's own seccomp.
int AttemptSocket(int family) {
  const int fd = ::socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

int AttemptSocketpair(int family) {
  int sv[2];
  if (::socketpair(family, SOCK_DGRAM, 0, sv) != 0) return errno;
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}

// unix-notify: the notify socket's address as connect() takes it, built before the fork.
struct NotifyPeer {
  sockaddr_un addr{};
  socklen_t len = 0;  // 0: unix-notify is not planned
};

NotifyPeer MakeNotifyPeer(const std::string& notify_socket) {
  NotifyPeer p;
  tg_unix_notify abi{};
  if (notify_socket.empty() || !NotifySocketToAbi(notify_socket, abi).ok()) return p;
  p.addr.sun_family = AF_UNIX;
  std::memcpy(p.addr.sun_path, abi.path, sizeof(p.addr.sun_path));
  p.len = static_cast<socklen_t>(abi.len);
  return p;
}

// sd_notify's shape: a datagram socket connected to the notify socket (what libsystemd and
// go-systemd do before they send). Nothing is sent: the manager never sees the canary.
int AttemptNotifyConnect(const NotifyPeer& peer) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int err =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&peer.addr), peer.len) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Any other peer: a datagram socket of the helper's own, bound by autobind (an abstract name the
// kernel picks, so nothing on the host can collide), which a second socket connects to.
int AttemptOtherPeer() {
  const int peer = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (peer < 0) return errno;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t len = sizeof(sa_family_t);  // autobind
  int err = 0;
  if (::bind(peer, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      (len = sizeof(addr), ::getsockname(peer, reinterpret_cast<sockaddr*>(&addr), &len)) != 0) {
    err = errno;
  }
  const int fd = err == 0 ? ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
  if (err == 0 && fd < 0) err = errno;
  if (fd >= 0) {
    err = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0 ? 0 : errno;
    ::close(fd);
  }
  ::close(peer);
  return err;
}

// observe sees system call arguments, not memory objects: a W+X anonymous mapping. (Under
// systemd's MemoryDenyWriteExecute= seccomp refuses it: seen only with --observe-seccomp.)
int AttemptWxAnon() {
  const size_t len = 4096;
  void* p =
      ::mmap(nullptr, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno;
  ::munmap(p, len);
  return 0;
}

int AttemptExecMemfd() {
  const int fd = ::memfd_create("tunnelguard-canary", MFD_CLOEXEC);
  if (fd < 0) return errno;
  const size_t len = 4096;
  if (::ftruncate(fd, len) != 0) return errno;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
  const int err = p == MAP_FAILED ? errno : 0;
  if (p != MAP_FAILED) ::munmap(p, len);
  ::close(fd);
  return err;
}

// Opening our own /proc/self/mem for writing: the file_open hook (the ptrace check never sees
// a task's access to itself). Nothing is written.
int AttemptProcSelfMemWrite() {
  const int fd = ::open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// The two ptrace hooks, from a child G of the helper (both in the canary cgroup): G asks its
// parent to trace it (PTRACE_TRACEME: ptrace_traceme), and the helper opens G's /proc/PID/mem
// read-only, which the kernel allows only after an attach-mode access check
// (ptrace_access_check, as PTRACE_ATTACH/SEIZE ask it) — no ptrace() call, so seccomp filters
// without @debug (the shipped units' SystemCallFilter=@system-service) let it through; the kernel
// turns that check's refusal into EACCES. Nothing is attached or read.
void AttemptPtrace(int* traceme_errno, int* attach_errno) {
  int report[2];
  int hold[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return;
  if (::pipe2(hold, O_CLOEXEC) != 0) {
    ::close(report[0]);
    ::close(report[1]);
    return;
  }
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(report[0]);
    ::close(hold[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int err = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : errno;
    if (::write(report[1], &err, sizeof(err)) != static_cast<ssize_t>(sizeof(err))) ::_exit(1);
    char byte = 0;
    while (::read(hold[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(hold[0]);
  int err = 0;
  if (child > 0 && ::read(report[0], &err, sizeof(err)) == static_cast<ssize_t>(sizeof(err))) {
    *traceme_errno = err;
    // "/proc/<pid>/mem" without allocating (a fork of a possibly multithreaded process).
    char path[32] = "/proc/";
    char digits[12];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(child); v != 0 && n < 11; v /= 10) {
      digits[n++] = static_cast<char>('0' + v % 10);
    }
    size_t at = std::strlen(path);
    while (n > 0) path[at++] = digits[--n];
    std::memcpy(path + at, "/mem", 5);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    *attach_errno = fd < 0 ? errno : 0;
    if (fd >= 0) ::close(fd);
  }
  ::close(report[0]);
  ::close(hold[1]);  // G exits (a tracee in audit: its parent reaps it all the same)
  int status = 0;
  while (child > 0 && ::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

struct HelperResults {
  int family_errno = kNotAttempted;
  int wx_errno = kNotAttempted;
  int proc_mem_errno = kNotAttempted;
  int traceme_errno = kNotAttempted;
  int attach_errno = kNotAttempted;
  int notify_errno = kNotAttempted;  // unix-notify: connect to the notify socket
  int peer_errno = kNotAttempted;    // unix-notify: connect to another bound socket
};

// The helper's attempts, made in the canary cgroup (plain system calls only: a fork).
HelperResults Attempt(int family, bool family_socket, bool wx, bool wx_anon,
                      const NotifyPeer& notify) {
  HelperResults r;
  if (family >= 0) {
    r.family_errno = family_socket ? AttemptSocket(family) : AttemptSocketpair(family);
  }
  if (notify.len != 0) {
    r.notify_errno = AttemptNotifyConnect(notify);
    r.peer_errno = AttemptOtherPeer();
  }
  if (wx) r.wx_errno = wx_anon ? AttemptWxAnon() : AttemptExecMemfd();
  if (wx && !wx_anon) {  // observe sees system call arguments only: none of these
    r.proc_mem_errno = AttemptProcSelfMemWrite();
    AttemptPtrace(&r.traceme_errno, &r.attach_errno);
  }
  return r;
}

// Forks the helper, places it in `procs` (the canary cgroup's cgroup.procs) before it makes
// any attempt, and collects its results. The helper is a fork, not an exec: whatever seccomp
// filter this process runs under, it keeps across exec anyway, and the attempts are chosen to
// pass systemd's filters (canary.h).
Result<HelperResults> RunHelper(const std::string& procs, int family, bool family_socket, bool wx,
                                bool wx_anon, const NotifyPeer& notify) {
  int go[2];
  int back[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return FromErrno(errno, "canary: pipe");
  UniqueFd go_r(go[0]), go_w(go[1]);
  if (::pipe2(back, O_CLOEXEC) != 0) return FromErrno(errno, "canary: pipe");
  UniqueFd back_r(back[0]), back_w(back[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return FromErrno(errno, "canary: cannot fork the helper");
  if (pid == 0) {
    // The helper holds a copy of every fd of the agent (a fork, no exec): its own copies of the
    // pipes' other ends must go, or a read never sees EOF; and it must not outlive the agent
    // (killed with -9 mid-canary, the helper kept the agent's /metrics listening socket and
    // the next agent could not bind it — seen in vm.reliability).
    go_w.reset();
    back_r.reset();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the agent died before the line above
    char byte = 0;
    if (::read(go_r.get(), &byte, 1) != 1 || byte != 'g') ::_exit(1);
    const HelperResults r = Attempt(family, family_socket, wx, wx_anon, notify);
    const bool sent = ::write(back_w.get(), &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
    ::_exit(sent ? 0 : 1);
  }
  back_w.reset();
  go_r.reset();
  Status placed = Status::Ok();
  {
    UniqueFd f(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    const std::string text = std::to_string(pid);
    if (!f.valid() || ::write(f.get(), text.data(), text.size()) < 0) {
      placed = FromErrno(errno, "canary: cannot move the helper into " + procs);
    }
  }
  // A helper that is not in the canary cgroup must not attempt anything: its calls would
  // count as the tunnel's (or as an outsider's). Closing the pipe makes it exit.
  if (placed.ok() && ::write(go_w.get(), "g", 1) != 1) {
    placed = FromErrno(errno, "canary: cannot start the helper");
  }
  go_w.reset();
  HelperResults r;
  const bool got = ::read(back_r.get(), &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!placed.ok()) return placed.error();
  if (!got) return MakeError(ErrorKind::kInternal, "canary: the helper died before reporting");
  return r;
}

std::string Observed(int err, const Decisions& delta) {
  std::string call = err == 0 ? "succeeded" : std::string("failed with ") + ErrnoName(err);
  std::string out = call + "; canary counters: deny +" + std::to_string(delta.deny) +
                    ", would_deny +" + std::to_string(delta.would_deny);
  if (delta.denied_by_seccomp > 0) {
    out += ", denied_by_seccomp +" + std::to_string(delta.denied_by_seccomp);
  }
  return out;
}

Decisions Delta(const Decisions& before, const Decisions& after) {
  return {after.allow - before.allow, after.deny - before.deny,
          after.would_deny - before.would_deny, after.denied_by_seccomp - before.denied_by_seccomp,
          after.exempt_setup - before.exempt_setup};
}

// Enforce: the call failed with the policy's errno and the deny was the policy's own (its
// canary counter moved). Audit: the call was counted as would_deny (observe: or as systemd's
// seccomp refusal, which proves the observer saw it just as well).
bool Judge(Mode mode, int err, int policy_errno, const Decisions& delta) {
  if (mode == Mode::kEnforce) return err == policy_errno && delta.deny >= 1;
  return (delta.would_deny >= 1 || delta.denied_by_seccomp >= 1) && delta.deny == 0;
}

// A wx_memory check of one hook: enforce wants the errno and that hook's own canary counter to
// have moved (plus a deny in the totals); audit wants the counter moved and no deny.
bool JudgeDetail(Mode mode, int err, int policy_errno, uint64_t detail_delta,
                 const Decisions& delta) {
  if (mode == Mode::kEnforce) return err == policy_errno && detail_delta >= 1 && delta.deny >= 1;
  return detail_delta >= 1 && delta.deny == 0;
}

// Why a ptrace attempt can be refused before any BPF-LSM program runs, so that the canary cannot
// prove that hook from here ("" when nothing explains it): Yama, an LSM called before bpf, with
// ptrace_scope 3 (no attach at all) or 2 (attach needs CAP_SYS_PTRACE, which the shipped
// tunnelguard.service does not grant); for the ptrace() call itself, a seccomp filter on this
// process (that unit's SystemCallFilter=@system-service has no @debug, so ptrace() gets EPERM).
std::string PtraceRefusedEarlier(bool syscall) {
  std::ifstream status_file("/proc/self/status");
  std::string line;
  bool seccomp = false;
  bool cap_sys_ptrace = false;
  while (std::getline(status_file, line)) {
    if (line.rfind("Seccomp:", 0) == 0) seccomp = line.find('2') != std::string::npos;
    if (line.rfind("CapEff:", 0) == 0) {
      constexpr int kCapSysPtrace = 19;
      cap_sys_ptrace = (std::stoull(line.substr(7), nullptr, 16) >> kCapSysPtrace) & 1;
    }
  }
  std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
  int scope = 0;
  if (yama >> scope && (scope == 3 || (scope == 2 && !cap_sys_ptrace))) {
    return "Yama's ptrace_scope=" + std::to_string(scope) + " refuses it before BPF-LSM";
  }
  if (syscall && seccomp) {
    return "ptrace() is refused by this process's seccomp filter before any LSM";
  }
  return "";
}

// Why a policy that is pinned and attached did nothing, as far as the system can tell.
std::string LikelyCause(const std::string& canary_cgroup) {
  auto lsms = ActiveLsms();
  if (!lsms.ok()) {
    return "cannot read the active LSM list (" + lsms.error().message +
           "); the likely cause is bpf missing from it";
  }
  if (std::find(lsms->begin(), lsms->end(), "bpf") == lsms->end()) {
    return BpfNotListed(*lsms) + ": BPF-LSM programs attach and are never called; boot with lsm=" +
           LsmListWithBpf(*lsms) +
           " (NixOS: add \"bpf\" to security.lsm, or lsm=…,bpf to boot.kernelParams)";
  }
  return "bpf is an active LSM, yet the policy did not act on a process in " + canary_cgroup +
         "; see 'tunnelguard status' for links that are no longer attached";
}

// The canary cgroup, removed on every path. Removal waits briefly: a cgroup whose last task
// has just been reaped can still be busy for a moment.
class CanaryCgroup {
 public:
  static Result<CanaryCgroup> Create(const std::string& target) {
    CanaryCgroup c;
    c.path_ = target + "/" + kCanaryCgroupName;
    if (::mkdir(c.path_.c_str(), 0700) != 0) {
      // Left over by a canary that was killed: it holds no task of ours any more.
      if (errno != EEXIST || ::rmdir(c.path_.c_str()) != 0 || ::mkdir(c.path_.c_str(), 0700) != 0) {
        return FromErrno(errno, "canary: cannot create " + c.path_);
      }
    }
    c.owned_ = true;
    UniqueFd fd(::open(c.path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return FromErrno(errno, "canary: cannot open " + c.path_);
    auto id = CgroupId(fd.get());
    if (!id.ok()) return id.error();
    c.id_ = *id;
    return c;
  }
  CanaryCgroup(CanaryCgroup&& o) noexcept
      : path_(std::move(o.path_)), id_(o.id_), owned_(std::exchange(o.owned_, false)) {}
  CanaryCgroup& operator=(CanaryCgroup&&) = delete;
  ~CanaryCgroup() {
    if (!owned_) return;
    for (int i = 0; i < 100; ++i) {
      if (::rmdir(path_.c_str()) == 0 || errno != EBUSY) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    log::Warning("canary: could not remove {}: {}", path_, std::strerror(errno));
  }
  const std::string& path() const { return path_; }
  uint64_t id() const { return id_; }

 private:
  CanaryCgroup() = default;
  std::string path_;
  uint64_t id_ = 0;
  bool owned_ = false;
};

}  // namespace

namespace {

// One canary per target at a time (the CLI and the daemon may both run one): the canary
// cgroup id lives in the policies' configs. Held until the returned descriptor closes.
Result<UniqueFd> LockTarget(const std::string& base, const Cgroup& target) {
  const std::string target_dir = TargetDir(base, target.id);
  UniqueFd lock(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lock.valid()) return FromErrno(errno, "canary: nothing attached to " + target.path);
  if (::flock(lock.get(), LOCK_EX) != 0) {
    return FromErrno(errno, "canary: cannot lock " + target_dir);
  }
  return lock;
}

// The configs of the policies pinned for the target (at least one).
Result<std::vector<PinnedConfig>> ReadTargetConfigs(const std::string& base, const Cgroup& target) {
  std::vector<PinnedConfig> configs;
  for (PolicyKind kind : kAllPolicyKinds) {
    struct stat st {};
    if (::stat(PolicyDir(base, target.id, kind).c_str(), &st) != 0) continue;
    auto c = ReadConfig(base, target.id, kind);
    if (!c.ok()) return c.error();
    configs.push_back(std::move(*c));
  }
  if (configs.empty()) {
    return MakeError(ErrorKind::kNotFound, "canary: no policy pinned for " + target.path);
  }
  return configs;
}

// What the helper tries, from the pinned configs.
struct CanaryPlan {
  int family = -1;             // a family outside the allow-list; -1: every candidate allowed
  bool family_socket = false;  // observe sees socket() (seccomp-filtered in a sandbox) ...
  bool wx = false;
  bool wx_anon = false;  // observe: an anonymous W+X mmap; BPF-LSM: one attempt per hook
  bool observe = false;
  // unix-notify under BPF-LSM: its notify socket (observe cannot see AF_UNIX peers), else ""
  std::string notify_socket;
};

CanaryPlan PlanCanary(const std::vector<PinnedConfig>& configs) {
  CanaryPlan plan;
  for (const PinnedConfig& c : configs) {
    plan.observe = plan.observe || Observes(c);
    if (c.kind == PolicyKind::kAddressFamilies) {
      const bool notify = UnixNotifyOn(c.fam.allowed);
      // observe sees socket(), and unix-notify allows an AF_UNIX datagram socket()
      plan.family =
          ForbiddenFamily(c.fam.allowed | (notify && Observes(c) ? uint64_t{1} << AF_UNIX : 0));
      plan.family_socket = Observes(c);
      if (notify && !Observes(c)) plan.notify_socket = NotifySocketFromAbi(c.fam.notify);
    }
    if (c.kind == PolicyKind::kWxMemory) {
      plan.wx = true;
      plan.wx_anon = Observes(c);
    }
  }
  return plan;
}

// The canary's counters before its attempts (per config; wx_memory's by detail too).
struct Baseline {
  std::vector<Decisions> decisions;
  std::vector<uint64_t> wx_details;
  Decisions fam_peer;  // address_families: the peer hook's
};

// Records the canary cgroup in each config (its decisions then count as the canary's, not the
// tunnel's) and reads the counters the attempts will move.
Result<Baseline> PrepareConfigs(const std::string& base, uint64_t target_id,
                                std::vector<PinnedConfig>& configs, uint64_t canary_cgroup_id) {
  Baseline baseline;
  for (PinnedConfig& c : configs) {
    tg_canary_state state = c.canary();
    state.cgroup_id = canary_cgroup_id;
    if (auto st = UpdateCanaryState(base, target_id, c, state); !st.ok()) return st.error();
    c.canary() = state;
    auto d = ReadCanaryCounters(base, target_id, c.kind);
    if (!d.ok()) return d.error();
    baseline.decisions.push_back(*d);
    if (c.kind == PolicyKind::kAddressFamilies) {
      auto peer = ReadCanaryPeerCounters(base, target_id);
      if (!peer.ok()) return peer.error();
      baseline.fam_peer = *peer;
    }
    if (c.kind == PolicyKind::kWxMemory) {
      auto details = ReadCanaryDetails(base, target_id);
      if (!details.ok()) return details.error();
      baseline.wx_details = std::move(*details);
    }
  }
  return baseline;
}

CanaryCheck FamilyCheck(CanaryCheck check, const CanaryPlan& plan, int err,
                        const Decisions& delta) {
  if (plan.family < 0) {
    check.attempt = "none";
    check.observed = "every candidate family is allowed: nothing to deny";
    check.passed = true;
    return check;
  }
  std::string name = FamilyToName(plan.family);
  for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  check.attempt = std::string(plan.family_socket ? "socket" : "socketpair") + "(AF_" + name + ")";
  check.observed = Observed(err, delta);
  check.passed = Judge(check.mode, err, EAFNOSUPPORT, delta);
  return check;
}

// unix-notify: sd_notify's connect to the notify socket is allowed by the peer hook (its
// counter moved, the call succeeded), a connect to any other bound socket is refused (enforce:
// EPERM) or counted (audit) by it.
Result<std::vector<CanaryCheck>> NotifyChecks(const std::string& base, uint64_t target_id,
                                              const CanaryCheck& check, const CanaryPlan& plan,
                                              const HelperResults& results,
                                              const Decisions& peer_before) {
  auto after = ReadCanaryPeerCounters(base, target_id);
  if (!after.ok()) return after.error();
  const Decisions delta = Delta(peer_before, *after);
  CanaryCheck notify = check;
  notify.attempt = "connect(AF_UNIX, SOCK_DGRAM) to the notify socket " + plan.notify_socket;
  notify.observed =
      (results.notify_errno == 0 ? std::string("succeeded")
                                 : std::string("failed with ") + ErrnoName(results.notify_errno)) +
      "; canary peer counters: allow +" + std::to_string(delta.allow);
  notify.passed = results.notify_errno == 0 && delta.allow >= 1;
  if (results.notify_errno == ENOENT || results.notify_errno == ECONNREFUSED) {
    notify.observed += " (no socket is bound there: a Type=notify tunnel could not notify)";
  }
  CanaryCheck other = check;
  other.attempt = "connect(AF_UNIX, SOCK_DGRAM) to another bound socket";
  other.observed = Observed(results.peer_errno, delta);
  other.passed = Judge(other.mode, results.peer_errno, EPERM, delta);
  return std::vector<CanaryCheck>{notify, other};
}

// BPF-LSM's W^X: one check per hook, each judged on its own detail counter.
Result<std::vector<CanaryCheck>> WxHookChecks(const std::string& base, uint64_t target_id,
                                              const CanaryCheck& check,
                                              const HelperResults& results,
                                              const std::vector<uint64_t>& details_before,
                                              const Decisions& delta) {
  auto details = ReadCanaryDetails(base, target_id);
  if (!details.ok()) return details.error();
  struct HookAttempt {
    const char* attempt;
    int err;
    int policy_errno;
    uint32_t detail;
    bool ptrace;
    bool syscall;
  };
  const HookAttempt attempts[] = {
      {"mmap(PROT_READ|PROT_EXEC) of an unsealed memfd", results.wx_errno, EPERM,
       TG_WX_MMAP_WRITABLE_FILE, false, false},
      {"open(/proc/self/mem, O_RDWR)", results.proc_mem_errno, EPERM, TG_WX_PROC_MEM_WRITE, false,
       false},
      {"ptrace(PTRACE_TRACEME)", results.traceme_errno, EPERM, TG_WX_PTRACE_TRACEME, true, true},
      {"open(/proc/CHILD/mem, O_RDONLY) (attach-mode access check)", results.attach_errno, EACCES,
       TG_WX_PTRACE_ATTACH, true, false},
  };
  std::vector<CanaryCheck> checks;
  for (const HookAttempt& h : attempts) {
    CanaryCheck one = check;
    const uint64_t moved = (*details)[h.detail] - details_before[h.detail];
    one.attempt = h.attempt;
    one.observed =
        (h.err == 0 ? std::string("succeeded") : std::string("failed with ") + ErrnoName(h.err)) +
        "; canary " + WxDetailName(h.detail) + " +" + std::to_string(moved);
    one.passed =
        h.err != kNotAttempted && JudgeDetail(one.mode, h.err, h.policy_errno, moved, delta);
    if (!one.passed && h.ptrace && h.err != 0 && h.err != kNotAttempted && moved == 0) {
      // Refused before the hook could run: the hole is closed there, and the other checks of
      // this run prove BPF-LSM is called. Said, never hidden.
      if (const std::string why = PtraceRefusedEarlier(h.syscall); !why.empty()) {
        one.observed += " (not provable here: " + why + ")";
        one.passed = true;
      }
    }
    checks.push_back(std::move(one));
  }
  return checks;
}

// Each policy's checks, from what the helper saw and how the canary's counters moved.
Result<std::vector<CanaryCheck>> JudgeAttempts(const std::string& base, uint64_t target_id,
                                               const std::vector<PinnedConfig>& configs,
                                               const CanaryPlan& plan, const Baseline& baseline,
                                               const HelperResults& results) {
  std::vector<CanaryCheck> checks;
  for (size_t i = 0; i < configs.size(); ++i) {
    const PinnedConfig& c = configs[i];
    auto after = ReadCanaryCounters(base, target_id, c.kind);
    if (!after.ok()) return after.error();
    const Decisions delta = Delta(baseline.decisions[i], *after);
    CanaryCheck check;
    check.kind = c.kind;
    check.mode = ModeFromAbi(c.mode()).value_or(Mode::kEnforce);
    if (c.kind == PolicyKind::kAddressFamilies) {
      checks.push_back(FamilyCheck(check, plan, results.family_errno, delta));
      if (plan.notify_socket.empty()) continue;
      auto notify = NotifyChecks(base, target_id, check, plan, results, baseline.fam_peer);
      if (!notify.ok()) return notify.error();
      for (CanaryCheck& one : *notify) checks.push_back(std::move(one));
    } else if (plan.wx_anon) {
      check.attempt = "mmap(PROT_READ|PROT_WRITE|PROT_EXEC) anonymous";
      check.observed = Observed(results.wx_errno, delta);
      check.passed = Judge(check.mode, results.wx_errno, EPERM, delta);
      checks.push_back(std::move(check));
    } else {
      auto hooks = WxHookChecks(base, target_id, check, results, baseline.wx_details, delta);
      if (!hooks.ok()) return hooks.error();
      for (CanaryCheck& one : *hooks) checks.push_back(std::move(one));
    }
  }
  return checks;
}

// Why a canary that ran failed: no socket at unix-notify's address (a configuration error, the
// policy itself may be in force), observe missing the attempt, or the policy not in force.
std::string FailureCause(const CanaryPlan& plan, const HelperResults& results,
                         const std::string& canary_cgroup) {
  if (!plan.notify_socket.empty() &&
      (results.notify_errno == ENOENT || results.notify_errno == ECONNREFUSED)) {
    return "nothing is bound at the notify socket " + plan.notify_socket +
           " (connect: " + ErrnoName(results.notify_errno) +
           "): a Type=notify tunnel could not notify; give the manager's $NOTIFY_SOCKET with "
           "--notify-socket (config notify-socket)";
  }
  if (plan.observe) {
    return "the observe mechanism did not see the attempt from " + canary_cgroup +
           " (under systemd's seccomp filters a refused call is seen only with "
           "--observe-seccomp); see 'tunnelguard status'";
  }
  return LikelyCause(canary_cgroup);
}

// The run's time and verdict, in each policy's config (what status and /metrics show).
Status RecordCanaryResult(const std::string& base, uint64_t target_id,
                          const std::vector<PinnedConfig>& configs, bool passed) {
  const uint64_t now = BootTimeNs();
  for (const PinnedConfig& c : configs) {
    tg_canary_state state = c.canary();
    state.last_run_ns = now;
    state.last_result = passed ? TG_CANARY_PASSED : TG_CANARY_FAILED;
    if (auto st = UpdateCanaryState(base, target_id, c, state); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace

Result<CanaryReport> RunCanary(const std::string& base, const Cgroup& target) {
  const auto start = std::chrono::steady_clock::now();
  auto lock = LockTarget(base, target);
  if (!lock.ok()) return lock.error();
  auto configs = ReadTargetConfigs(base, target);
  if (!configs.ok()) return configs.error();
  const CanaryPlan plan = PlanCanary(*configs);

  CanaryReport report;
  {
    auto cg = CanaryCgroup::Create(target.path);
    if (!cg.ok()) return cg.error();
    auto baseline = PrepareConfigs(base, target.id, *configs, cg->id());
    if (!baseline.ok()) return baseline.error();
    auto results = RunHelper(cg->path() + "/cgroup.procs", plan.family, plan.family_socket, plan.wx,
                             plan.wx_anon, MakeNotifyPeer(plan.notify_socket));
    if (!results.ok()) return results.error();
    auto checks = JudgeAttempts(base, target.id, *configs, plan, *baseline, *results);
    if (!checks.ok()) return checks.error();
    report.checks = std::move(*checks);
    report.passed = std::all_of(report.checks.begin(), report.checks.end(),
                                [](const CanaryCheck& c) { return c.passed; });
    if (!report.passed) report.cause = FailureCause(plan, *results, cg->path());
  }  // the canary cgroup is removed here
  report.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (auto st = RecordCanaryResult(base, target.id, *configs, report.passed); !st.ok()) {
    return st.error();
  }
  if (report.passed) {
    log::Info("canary on {}: passed in {} ms", target.path,
              static_cast<double>(report.elapsed.count()) / 1000.0);
  } else {
    log::Error("canary on {}: FAILED, policies are not in force: {}", target.path, report.cause);
  }
  return report;
}

std::string FormatCanary(const CanaryReport& report) {
  std::string out;
  for (const CanaryCheck& c : report.checks) {
    out += "canary " + std::string(PolicyName(c.kind)) + " (" + std::string(ModeName(c.mode)) +
           "): " + c.attempt + " " + c.observed + ": " + (c.passed ? "passed" : "FAILED") + "\n";
  }
  return out;
}

}  // namespace tg
