// Enforcement on this host's kernel, which refuses every trampoline program (lsm_cgroup
// included): attach must say so plainly, exit non-zero and leave nothing behind; and every
// bad input must give its own one-line message — all through the real CLI binary.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"
#include "agent/target/cgroup.h"
#include "agent/target/lsm_probe.h"
#include "cli_runner.h"
#include "test_support.h"

namespace tg {
namespace {

using ::tg::testing::CliResult;
using ::tg::testing::RunCli;

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

class EnforceHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    auto m = FindCgroup2Mount();
    ASSERT_TRUE(m.ok()) << m.error().message;
    cgroup_ = *m + "/tg-enforce-test-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << cgroup_;
    bpffs_ = std::string("/sys/fs/bpf/tg-enforce-test-") + std::to_string(::getpid());
  }
  void TearDown() override {
    if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
  }
  CliResult Cli(std::vector<std::string> args, const std::function<bool()>& hook = {}) {
    return RunCli(TG_CLI_PATH, args, hook);
  }
  // One line on stderr, starting with "tunnelguard: ".
  static void ExpectOneLine(const CliResult& r) {
    EXPECT_EQ(r.err.find("tunnelguard: "), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  }
  std::string cgroup_, bpffs_;
};

TEST_F(EnforceHostTest, AttachSaysEnforcementUnavailableAndLeavesNoPins) {
  TG_REQUIRE(!LsmProbe::Load(AF_UNIX).ok(), "this kernel loads lsm_cgroup: VM tests cover it");
  const CliResult r = Cli({"attach", "--cgroup", cgroup_, "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err,
            "tunnelguard: enforcement unavailable: kernel refused lsm_cgroup program: "
            "EPERM; lsm_global: kernel refused lsm program: EPERM (--mode audit works without "
            "BPF-LSM, through the observe mechanism)\n");
  EXPECT_FALSE(Exists(bpffs_)) << "attach left " << bpffs_ << " behind";
  EXPECT_EQ(r.out, "");
}

TEST_F(EnforceHostTest, LibraryAttachReportsTheSameCause) {
  TG_REQUIRE(!LsmProbe::Load(AF_UNIX).ok(), "this kernel loads lsm_cgroup: VM tests cover it");
  auto cg = OpenCgroup(cgroup_);
  ASSERT_TRUE(cg.ok()) << cg.error().message;
  AttachRequest req;
  req.bpffs_dir = bpffs_;
  req.policies = {{PolicyKind::kAddressFamilies, Mode::kEnforce, 0b110},
                  {PolicyKind::kWxMemory, Mode::kEnforce, 0}};
  auto r = AttachPolicies(*cg, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsupported);
  EXPECT_EQ(r.error().sys_errno, EPERM);
  EXPECT_EQ(r.error().message,
            "enforcement unavailable: kernel refused lsm_cgroup program: EPERM; lsm_global: "
            "kernel refused lsm program: EPERM (--mode audit works without BPF-LSM, through the "
            "observe mechanism)");
  EXPECT_FALSE(Exists(bpffs_));
}

TEST_F(EnforceHostTest, NoSuchCgroup) {
  const CliResult r = Cli({"attach", "--cgroup", "/no-such-tg-cgroup", "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLine(r);
  EXPECT_NE(r.err.find("no such cgroup: /no-such-tg-cgroup"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("give a directory under the cgroup2 mount"), std::string::npos);
  EXPECT_FALSE(Exists(bpffs_));
}

TEST_F(EnforceHostTest, CgroupV1Path) {
  TG_REQUIRE(Exists("/sys/fs/cgroup/pids/cgroup.procs"), "no cgroup v1 hierarchy here");
  const CliResult r = Cli({"attach", "--cgroup", "/sys/fs/cgroup/pids", "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLine(r);
  EXPECT_NE(r.err.find("is a cgroup v1 directory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("use the same cgroup under the cgroup2 mount"), std::string::npos);
  EXPECT_FALSE(Exists(bpffs_));
}

TEST_F(EnforceHostTest, RootCgroupIsRefused) {
  auto mount = FindCgroup2Mount();
  ASSERT_TRUE(mount.ok());
  const CliResult r = Cli({"attach", "--cgroup", *mount, "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLine(r);
  EXPECT_NE(r.err.find("refusing to attach to the root cgroup"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(bpffs_));
}

TEST_F(EnforceHostTest, UnknownFamilyListsTheValidOnes) {
  const CliResult r = Cli({"attach", "--cgroup", cgroup_, "--families", "inet,inet7"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLine(r);
  EXPECT_NE(r.err.find("unknown address family 'inet7'; valid families: unix, inet,"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("vsock"), std::string::npos);
}

TEST_F(EnforceHostTest, UnknownMode) {
  const CliResult r = Cli({"attach", "--cgroup", cgroup_, "--mode", "permissive"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "tunnelguard: unknown mode 'permissive'; use --mode enforce or --mode audit\n");
}

TEST_F(EnforceHostTest, UnknownWxValue) {
  const CliResult r = Cli({"attach", "--cgroup", cgroup_, "--wx-memory", "maybe"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "tunnelguard: unknown --wx-memory value 'maybe'; use deny or off\n");
}

TEST_F(EnforceHostTest, BpffsDirNotOnBpffs) {
  const CliResult r = Cli({"attach", "--cgroup", cgroup_, "--bpffs-dir", "/tmp/tg-not-bpffs"});
  EXPECT_EQ(r.exit_code, 3);
  ExpectOneLine(r);
  EXPECT_NE(r.err.find("bpffs is not mounted at /tmp"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists("/tmp/tg-not-bpffs"));
}

TEST_F(EnforceHostTest, BpffsNotMounted) {
  // A private mount namespace where /sys/fs/bpf is unmounted: the user's real situation on a
  // system that never mounted bpffs, without touching the host's mounts.
  const CliResult r = Cli({"attach", "--cgroup", cgroup_}, [] {
    return ::unshare(CLONE_NEWNS) == 0 &&
           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           (::umount2("/sys/fs/bpf", MNT_DETACH) == 0 || errno == EINVAL);  // EINVAL: not mounted
  });
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err,
            "tunnelguard: bpffs is not mounted at /sys/fs/bpf (/sys/fs/bpf/tunnelguard "
            "would not be on a bpf filesystem); mount it with 'mount -t bpf bpf "
            "/sys/fs/bpf' or pass --bpffs-dir under a bpffs mount\n");
}

TEST_F(EnforceHostTest, NotRoot) {
  auto drop = [] { return ::setgid(65534) == 0 && ::setuid(65534) == 0; };
  for (const char* cmd : {"attach", "detach", "status"}) {
    std::vector<std::string> args = {cmd};
    if (std::string(cmd) != "status") args.insert(args.end(), {"--cgroup", cgroup_});
    const CliResult r = Cli(args, drop);
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_EQ(r.err.rfind("tunnelguard: must run as root", 0), 0u) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("re-run with sudo"), std::string::npos);
  }
}

TEST_F(EnforceHostTest, DetachOfAnUnattachedCgroupSaysSo) {
  const CliResult r = Cli({"detach", "--cgroup", cgroup_, "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "tunnelguard: nothing attached to " + cgroup_ + "\n");
}

TEST_F(EnforceHostTest, StatusWithNothingAttached) {
  const CliResult r = Cli({"status", "--json", "--bpffs-dir", bpffs_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["targets"].empty());
  EXPECT_EQ(j["events_dropped"], 0);
}

}  // namespace
}  // namespace tg
