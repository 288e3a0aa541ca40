// The address_families policy's systemd set-up exemption (bpf/policy_families.bpf.c,
// tg_fam_setup_exempt) is tight: exempt is only a task whose parent is the service manager and
// that either (systemd <= 254) has not exec'd since the fork and runs the manager's own
// executable, or (systemd >= 255) has exec'd once, systemd-executor next to the manager's
// executable, was forked by the manager as it runs now and holds CAP_SYS_ADMIN. In this guest
// PID 1 is busybox (guest-init.sh), not systemd, and the test cannot make PID 1 fork for it, so
// the positive cases against the real PID 1 are vm.systemd_e2e's (Debian 12 and 13); here the
// negatives against PID 1, and each condition alone with the test process itself posing as the
// manager (its pid written into the pinned config; "systemd-executor" a hard link of this binary
// next to it), for lsm_cgroup and lsm_global.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "agent/base/unique_fd.h"
#include "agent/enforce/pin_layout.h"
#include "bpf/policy_families.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

// fork+exec of this binary with this variable set: the new image makes one AF_UNIX socket
// before main() and exits with its outcome (0 or the errno).
constexpr char kProbeEnv[] = "TG_SETUP_EXEMPT_PROBE";

[[maybe_unused]] const bool kProbeMode = [] {
  if (std::getenv(kProbeEnv) == nullptr) return false;
  ::_exit(OpSocket(AF_UNIX, SOCK_DGRAM, 0));
}();

// With this set, the new image first execs the named file (with kProbeEnv): a second exec.
constexpr char kExecEnv[] = "TG_SETUP_EXEMPT_EXEC";
// With this set (the manager's pid), the new image is a tunnel leaving an orphan behind: it forks
// and exits; the orphan waits until the manager (a subreaper) has adopted it, then execs
// kExecEnv's file with kProbeEnv.
constexpr char kOrphanEnv[] = "TG_SETUP_EXEMPT_ORPHAN_OF";

[[noreturn]] void ExecProbe(const char* path) {
  ::setenv(kProbeEnv, "1", 1);
  ::execl(path, "probe", static_cast<char*>(nullptr));
  ::_exit(127);
}

[[maybe_unused]] const bool kExecMode = [] {
  const char* next = std::getenv(kExecEnv);
  if (next == nullptr) return false;
  const std::string path = next;
  ::unsetenv(kExecEnv);
  if (const char* manager = std::getenv(kOrphanEnv); manager != nullptr) {
    const pid_t want = static_cast<pid_t>(std::atoi(manager));
    ::unsetenv(kOrphanEnv);
    if (::fork() != 0) ::_exit(0);
    for (int i = 0; i < 5000 && ::getppid() != want; ++i) ::usleep(1000);
    if (::getppid() != want) ::_exit(125);
  }
  ExecProbe(path.c_str());
}();

int UnixSocket() { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }

std::string SelfExe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A hard link of this binary named `name` in `dir` (removed on destruction): the same image
// under systemd-executor's name, so it can probe like kProbeMode.
class ExecutorLink {
 public:
  ExecutorLink(const std::string& dir, const std::string& name) : path_(dir + "/" + name) {
    (void)::unlink(path_.c_str());
    ok_ = ::link(SelfExe().c_str(), path_.c_str()) == 0;
  }
  ~ExecutorLink() { (void)::unlink(path_.c_str()); }
  ExecutorLink(const ExecutorLink&) = delete;
  ExecutorLink& operator=(const ExecutorLink&) = delete;
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool ok_ = false;
};

std::string SelfDir() {
  const std::string exe = SelfExe();
  return exe.substr(0, exe.rfind('/'));
}

// Runs `op` in an orphan of `cgroup`: a grandchild whose parent (a child in the cgroup) has
// exited, once the kernel has reparented it to PID 1 (this process is no subreaper). Returns
// op's outcome, -2 when it was never reparented, -1 on a set-up failure. With `exec_after`,
// the orphan instead execs it (argv) and -3 is returned once it has run to its end.
int RunAsOrphan(const std::string& cgroup, const std::function<int()>& op,
                const std::vector<const char*>& exec_after = {}) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const int child = RunInChild(In(cgroup), [&] {
    const pid_t g = ::fork();
    if (g != 0) return g > 0 ? 0 : 1;  // the child exits at once: its child is an orphan
    ::close(fds[0]);
    for (int i = 0; i < 5000 && ::getppid() != 1; ++i) ::usleep(1000);
    int r = ::getppid() == 1 ? 0 : -2;
    if (r == 0 && exec_after.empty()) r = op();
    if (r == 0 && !exec_after.empty()) {
      r = -3;
      if (::write(fds[1], &r, sizeof(r)) != sizeof(r)) ::_exit(1);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      std::vector<char*> argv;
      for (const char* a : exec_after) argv.push_back(const_cast<char*>(a));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());  // fds[1] stays open in the new image until it exits
      ::_exit(127);
    }
    if (::write(fds[1], &r, sizeof(r)) != sizeof(r)) ::_exit(1);
    ::_exit(0);
  });
  ::close(fds[1]);
  int r = -1;
  if (child != 0 || ::read(fds[0], &r, sizeof(r)) != sizeof(r)) r = -1;
  char drain[64];
  while (::read(fds[0], drain, sizeof(drain)) > 0) {
  }  // EOF: the orphan (or what it exec'd) has exited
  ::close(fds[0]);
  return r;
}

class SetupExempt : public ::testing::TestWithParam<Mechanism> {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    auto cg = OpenCgroup(Cgroups().target);
    ASSERT_TRUE(cg.ok()) << cg.error().message;
    AttachRequest req;
    req.bpffs_dir = kBpffsDir;
    req.mechanism = GetParam();
    req.policies.push_back(
        {PolicyKind::kAddressFamilies, Mode::kEnforce, Families({AF_INET, AF_INET6})});
    auto r = AttachPolicies(*cg, req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    cgroup_id_ = cg->id;
    attached_ = true;
    ASSERT_TRUE(r->setup.has_value());
    setup_ = *r->setup;
  }
  void TearDown() override {
    if (attached_) (void)DetachTarget(kBpffsDir, cgroup_id_);
  }

  PolicyStatus Read() const {
    auto t = ReadTargetStatus(kBpffsDir, cgroup_id_);
    if (t.ok() && !t->policies.empty()) return t->policies[0];
    return {};
  }
  // Poses `tgid` as the service manager in the pinned config (the exe check needs no value:
  // the kernel compares the caller's executable with its parent's).
  void SetManager(uint32_t tgid) {
    const std::string path = PolicyDir(kBpffsDir, cgroup_id_, PolicyKind::kAddressFamilies) + "/" +
                             ManifestFor(PolicyKind::kAddressFamilies).config_map;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    ASSERT_TRUE(fd.valid()) << path;
    const uint32_t key = 0;
    tg_fam_config cfg{};
    ASSERT_EQ(bpf_map_lookup_elem(fd.get(), &key, &cfg), 0);
    cfg.setup.tgid = tgid;
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &key, &cfg, BPF_EXIST), 0);
  }

  uint64_t cgroup_id_ = 0;
  bool attached_ = false;
  SetupExemption setup_;
};

TEST_P(SetupExempt, TiedToPid1AndReportedByStatus) {
  EXPECT_EQ(setup_.manager_tgid, 1u) << FormatSetupExemption(setup_);
  EXPECT_EQ(setup_.manager_exe, "/bin/busybox");  // guest-init.sh's interpreter
  EXPECT_NE(setup_.manager_exe_ino, 0u);
  const PolicyStatus s = Read();
  ASSERT_TRUE(s.setup.has_value());
  EXPECT_EQ(s.setup->manager_tgid, 1u);
  EXPECT_EQ(s.setup->manager_exe_ino, setup_.manager_exe_ino);
  EXPECT_EQ(FormatSetupExemption(*s.setup), "pid 1 /bin/busybox (ino " +
                                                std::to_string(setup_.manager_exe_ino) +
                                                "), no systemd-executor");
}

// Against the real PID 1 (busybox): nothing this test starts gets the exemption.
TEST_P(SetupExempt, NothingTheTunnelStartsIsExemptAgainstPid1) {
  const PolicyStatus s0 = Read();
  // (a) a direct fork of a process that is not the manager (parent check; its exe differs too).
  EXPECT_EQ(RunInChild(In(Cgroups().target), UnixSocket), EAFNOSUPPORT);
  // (b) an orphan reparented to PID 1 that never exec'd: parent and exec-id conditions hold,
  // only the executable (this test's, not busybox) keeps it out.
  EXPECT_EQ(RunAsOrphan(Cgroups().target, UnixSocket), EAFNOSUPPORT);
  // (c) that orphan exec'ing PID 1's own executable: parent and executable now match, only the
  // exec (self_exec_id bumped) keeps it out. busybox's `ip link` opens an AF_NETLINK socket.
  EXPECT_EQ(RunAsOrphan(Cgroups().target, nullptr, {"/bin/busybox", "ip", "link"}), -3);
  const PolicyStatus s1 = Read();
  EXPECT_EQ(DetailOf(s1, "unix").deny - DetailOf(s0, "unix").deny, 2u);
  EXPECT_GE(DetailOf(s1, "netlink").deny - DetailOf(s0, "netlink").deny, 1u);
  EXPECT_EQ(s1.decisions.exempt_setup, s0.decisions.exempt_setup);
}

// With this process posing as the manager: its direct fork is exempt (so the negatives above are
// not vacuous) and each condition alone denies.
TEST_P(SetupExempt, EachConditionAloneDeniesWithThisProcessAsManager) {
  ASSERT_NO_FATAL_FAILURE(SetManager(static_cast<uint32_t>(::getpid())));
  const PolicyStatus s0 = Read();
  // Exempt: parent is the manager, no exec since the fork, the manager's executable.
  EXPECT_EQ(RunInChild(In(Cgroups().target), UnixSocket), 0);
  EXPECT_EQ(RunInChild(In(Cgroups().target), [] { return OpSocketpairUnix(); }), 0);
  const PolicyStatus s1 = Read();
  EXPECT_EQ(DetailOf(s1, "unix").exempt_setup - DetailOf(s0, "unix").exempt_setup, 3u);
  EXPECT_EQ(s1.decisions.deny, s0.decisions.deny);
  // Parent: a grandchild (fork of a fork), same executable, no exec.
  EXPECT_EQ(RunInChild(In(Cgroups().target), [] { return RunInChild({}, UnixSocket); }),
            EAFNOSUPPORT);
  // Exec: the child execs this same binary (same executable, parent still the manager).
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [] {
                         ::setenv(kProbeEnv, "1", 1);
                         ::execl("/proc/self/exe", "tg_vm_enforce", static_cast<char*>(nullptr));
                         return 127;
                       }),
            EAFNOSUPPORT);
  // Off (tgid 0: an agent outside the init pid namespace): the direct fork is denied too.
  ASSERT_NO_FATAL_FAILURE(SetManager(0));
  EXPECT_EQ(RunInChild(In(Cgroups().target), UnixSocket), EAFNOSUPPORT);
  const PolicyStatus s2 = Read();
  EXPECT_EQ(s2.decisions.exempt_setup, s1.decisions.exempt_setup);
  EXPECT_EQ(DetailOf(s2, "unix").deny - DetailOf(s1, "unix").deny, 3u);
}

// systemd >= 255's shape against the real PID 1: an orphan of the tunnel (it forked before the
// test's child exited, after this test binary's exec) reparented to PID 1 execs
// /bin/systemd-executor, next to PID 1's /bin/busybox. Parent, one exec, the executor's name and
// directory, CAP_SYS_ADMIN all hold; only its exec id (the test's, not PID 1's) keeps it out.
TEST_P(SetupExempt, AnOrphanExecingTheExecutorIsDeniedAgainstPid1) {
  ExecutorLink executor("/bin", "systemd-executor");
  ASSERT_TRUE(executor.ok()) << "cannot link " << executor.path() << ": " << std::strerror(errno);
  const PolicyStatus s0 = Read();
  ::setenv(kProbeEnv, "1", 1);
  const int r = RunAsOrphan(Cgroups().target, nullptr, {executor.path().c_str()});
  ::unsetenv(kProbeEnv);
  EXPECT_EQ(r, -3);
  const PolicyStatus s1 = Read();
  EXPECT_EQ(DetailOf(s1, "unix").deny - DetailOf(s0, "unix").deny, 1u);
  EXPECT_EQ(s1.decisions.exempt_setup, s0.decisions.exempt_setup);
  auto st = ReadTargetStatus(kBpffsDir, cgroup_id_);
  ASSERT_TRUE(st.ok() && !st->policies.empty() && st->policies[0].setup.has_value());
  EXPECT_EQ(st->policies[0].setup->executor_exe, "/bin/systemd-executor");
}

// systemd >= 255's shape with this process as the manager: its child exec'ing
// systemd-executor next to this binary is exempt; each condition alone denies.
TEST_P(SetupExempt, ExecutorConditionsWithThisProcessAsManager) {
  ExecutorLink executor(SelfDir(), "systemd-executor");
  ASSERT_TRUE(executor.ok()) << "cannot link " << executor.path() << ": " << std::strerror(errno);
  ExecutorLink other(SelfDir(), "systemd-executox");  // same length, another name
  ASSERT_TRUE(other.ok());
  SetManager(static_cast<uint32_t>(::getpid()));
  const std::string path = executor.path();
  const PolicyStatus s0 = Read();
  // Exempt: parent is the manager, one exec since the fork, of systemd-executor, privileged.
  EXPECT_EQ(RunInChild(In(Cgroups().target), [&]() -> int { ExecProbe(path.c_str()); }), 0);
  const PolicyStatus s1 = Read();
  EXPECT_EQ(DetailOf(s1, "unix").exempt_setup - DetailOf(s0, "unix").exempt_setup, 1u);
  EXPECT_EQ(s1.decisions.deny, s0.decisions.deny);
  // Two execs: the executor exec'ing itself again (what the service's exec is, too).
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [&] {
                         ::setenv(kExecEnv, path.c_str(), 1);
                         ::execl(path.c_str(), "exec", static_cast<char*>(nullptr));
                         return 127;
                       }),
            EAFNOSUPPORT);
  // Parent: a grandchild exec'ing the executor.
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [&] { return RunInChild({}, [&]() -> int { ExecProbe(path.c_str()); }); }),
            EAFNOSUPPORT);
  // Name: a file of the same length and directory under another name.
  const std::string other_path = other.path();
  EXPECT_EQ(RunInChild(In(Cgroups().target), [&]() -> int { ExecProbe(other_path.c_str()); }),
            EAFNOSUPPORT);
  // Privilege: without CAP_SYS_ADMIN (dropped from the bounding set before the exec).
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [&]() -> int {
                         if (::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0) return 124;
                         ExecProbe(path.c_str());
                       }),
            EAFNOSUPPORT);
  // Exec id: the tunnel (the child after its exec) leaves an orphan that this manager, a
  // subreaper, adopts; it execs the executor: parent, one exec, name, privilege all hold.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  const std::string manager = std::to_string(::getpid());
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [&] {
                         ::setenv(kExecEnv, path.c_str(), 1);
                         ::setenv(kOrphanEnv, manager.c_str(), 1);
                         ::execl("/proc/self/exe", "tunnel", static_cast<char*>(nullptr));
                         return 127;
                       }),
            0);
  int status = 0;
  const pid_t orphan = ::waitpid(-1, &status, 0);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
  ASSERT_GT(orphan, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), EAFNOSUPPORT);
  const PolicyStatus s2 = Read();
  EXPECT_EQ(s2.decisions.exempt_setup, s1.decisions.exempt_setup);
  EXPECT_EQ(DetailOf(s2, "unix").deny - DetailOf(s1, "unix").deny, 5u);
}

INSTANTIATE_TEST_SUITE_P(Mechanisms, SetupExempt,
                         ::testing::Values(Mechanism::kLsmCgroup, Mechanism::kLsmGlobal),
                         [](const ::testing::TestParamInfo<Mechanism>& i) {
                           return i.param == Mechanism::kLsmCgroup ? std::string("LsmCgroup")
                                                                   : std::string("LsmGlobal");
                         });

}  // namespace
}  // namespace tg::testing
