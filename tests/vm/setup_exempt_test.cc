// The address_families policy's systemd set-up exemption (bpf/policy_families.bpf.c,
// tg_fam_setup_exempt) is tight: exempt is only a task whose parent is the service manager, that
// has not exec'd since the fork and that runs the manager's own executable. In this guest PID 1
// is busybox (guest-init.sh), not systemd, and the test cannot make PID 1 fork for it, so the
// positive case against the real PID 1 is vm.systemd_e2e's; here the negatives against PID 1,
// and each condition alone with the test process itself posing as the manager (its pid written
// into the pinned config), for lsm_cgroup and lsm_global.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

int UnixSocket() { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }

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
  EXPECT_EQ(FormatSetupExemption(*s.setup),
            "pid 1 /bin/busybox (ino " + std::to_string(setup_.manager_exe_ino) + ")");
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

INSTANTIATE_TEST_SUITE_P(Mechanisms, SetupExempt,
                         ::testing::Values(Mechanism::kLsmCgroup, Mechanism::kLsmGlobal),
                         [](const ::testing::TestParamInfo<Mechanism>& i) {
                           return i.param == Mechanism::kLsmCgroup ? std::string("LsmCgroup")
                                                                   : std::string("LsmGlobal");
                         });

}  // namespace
}  // namespace tg::testing
