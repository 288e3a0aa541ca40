// VM smoke test: BPF-LSM really enforces in a stock Debian kernel, and a guest booted without
// `bpf` in lsm= is caught as the silent no-op it is. Runs as root INSIDE the guest
// (tests/vm/run-in-vm.sh); this host's kernel refuses lsm_cgroup programs.
//
//   tg_vm_smoke                 the guest booted with bpf in lsm=: enforcement is expected
//   tg_vm_smoke --expect-noop   the guest booted without it: attach must succeed and
//                               nothing may be enforced (what a real deployment would face)
//
// Each mode checks /sys/kernel/security/lsm first, so a mode given to the wrong boot fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/target/cgroup.h"
#include "agent/target/lsm_probe.h"
#include "test_support.h"

namespace tg {
namespace {

bool g_expect_noop = false;  // set by --expect-noop in main()

std::vector<std::string> ActiveLsms() {
  std::ifstream in("/sys/kernel/security/lsm");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> lsms;
  std::stringstream ss(line);
  for (std::string name; std::getline(ss, name, ',');) lsms.push_back(name);
  return lsms;
}

bool BpfLsmActive() {
  for (const auto& name : ActiveLsms()) {
    if (name == "bpf") return true;
  }
  return false;
}

// What one socket() call returned in a fresh process: 0 on success, else its errno.
struct SocketAttempt {
  std::string setup_error;  // non-empty when the process could not join the cgroup
  int err = 0;
};

// Forks a process that joins `cgroup_dir` (stays where the test runs when empty), calls
// socket(family, type, 0) once and reports the outcome over a pipe. A separate process is
// what the hook judges: lsm_cgroup decides by the calling task's cgroup.
SocketAttempt TrySocket(const std::string& cgroup_dir, int family, int type) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {"pipe: " + std::string(std::strerror(errno)), 0};
  const pid_t pid = ::fork();
  if (pid < 0) return {"fork: " + std::string(std::strerror(errno)), 0};
  if (pid == 0) {
    // Child: only async-signal-safe calls. Reports {stage, errno}: stage 0 = joining the
    // cgroup failed, 1 = socket() ran.
    int report[2] = {1, 0};
    if (!cgroup_dir.empty()) {
      const std::string procs = cgroup_dir + "/cgroup.procs";
      const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) report[0] = 0, report[1] = errno;
      if (fd >= 0) ::close(fd);
    }
    if (report[0] == 1) {
      const int s = ::socket(family, type | SOCK_CLOEXEC, 0);
      report[1] = s < 0 ? errno : 0;
      if (s >= 0) ::close(s);
    }
    (void)!::write(fds[1], report, sizeof(report));
    ::_exit(0);
  }
  ::close(fds[1]);
  int report[2] = {0, 0};
  const ssize_t n = ::read(fds[0], report, sizeof(report));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (n != static_cast<ssize_t>(sizeof(report))) return {"child gave no report", 0};
  if (report[0] == 0) {
    return {"cannot join " + cgroup_dir + ": " + std::strerror(report[1]), 0};
  }
  return {"", report[1]};
}

class BpfLsmSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE(std::getenv("TG_VM_KERNEL") != nullptr,
               "runs only inside the VM guest: tests/vm/run-in-vm.sh");
    TG_REQUIRE_ROOT();
    auto mount = FindCgroup2Mount();
    ASSERT_TRUE(mount.ok()) << mount.error().message;
    child_ = *mount + "/tg-smoke-" + std::to_string(::getpid());
    grandchild_ = child_ + "/inner";
    ASSERT_EQ(::mkdir(child_.c_str(), 0755), 0) << child_ << ": " << std::strerror(errno);
    ASSERT_EQ(::mkdir(grandchild_.c_str(), 0755), 0) << grandchild_;
  }
  void TearDown() override {
    // The probe (and its link) must be gone before the cgroups can be removed; each test
    // owns its probe, so it is destroyed by now. Emptied cgroups are removable at once.
    if (!grandchild_.empty()) ::rmdir(grandchild_.c_str());
    if (!child_.empty()) ::rmdir(child_.c_str());
  }

  // Loads the probe (denying AF_UNIX) and attaches it to the child cgroup.
  void LoadAndAttach(std::optional<LsmProbe>& probe) {
    auto loaded = LsmProbe::Load(AF_UNIX);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    probe.emplace(std::move(loaded).value());
    auto cg = OpenCgroup(child_);
    ASSERT_TRUE(cg.ok()) << cg.error().message;
    const Status attached = probe->Attach(cg->fd.get());
    ASSERT_TRUE(attached.ok()) << attached.error().message;
  }

  std::string child_, grandchild_;
};

TEST_F(BpfLsmSmoke, DeniesInsideTheCgroupAndItsDescendantsOnly) {
  if (g_expect_noop) GTEST_SKIP() << "this boot has no bpf in lsm= (--expect-noop)";
  ASSERT_TRUE(BpfLsmActive()) << "bpf missing from /sys/kernel/security/lsm; boot with "
                                 "bpf in lsm= or pass --expect-noop";
  std::optional<LsmProbe> probe;
  ASSERT_NO_FATAL_FAILURE(LoadAndAttach(probe));

  // Outside the cgroup (where the test runs): allowed, and the program is not even called.
  SocketAttempt outside = TrySocket("", AF_UNIX, SOCK_STREAM);
  ASSERT_EQ(outside.setup_error, "");
  EXPECT_EQ(outside.err, 0) << "outside the cgroup: " << std::strerror(outside.err);
  EXPECT_EQ(probe->denied(), 0u);
  EXPECT_EQ(probe->allowed(), 0u);

  SocketAttempt inside = TrySocket(child_, AF_UNIX, SOCK_STREAM);
  ASSERT_EQ(inside.setup_error, "");
  EXPECT_EQ(inside.err, EPERM) << "inside the cgroup: " << ErrnoName(inside.err);

  SocketAttempt inet = TrySocket(child_, AF_INET, SOCK_DGRAM);
  ASSERT_EQ(inet.setup_error, "");
  EXPECT_EQ(inet.err, 0) << "AF_INET inside the cgroup: " << ErrnoName(inet.err);

  SocketAttempt nested = TrySocket(grandchild_, AF_UNIX, SOCK_DGRAM);
  ASSERT_EQ(nested.setup_error, "");
  EXPECT_EQ(nested.err, EPERM) << "in a child of the cgroup: " << ErrnoName(nested.err);

  // Two AF_UNIX denials (child, grandchild) and one AF_INET allowed; nothing else ran there.
  EXPECT_EQ(probe->denied(), 2u);
  EXPECT_EQ(probe->allowed(), 1u);
}

TEST_F(BpfLsmSmoke, WithoutBpfInLsmListAttachSucceedsAndNothingIsEnforced) {
  if (!g_expect_noop) GTEST_SKIP() << "this boot has bpf in lsm= (no --expect-noop)";
  ASSERT_FALSE(BpfLsmActive()) << "--expect-noop, yet bpf is in /sys/kernel/security/lsm";
  std::optional<LsmProbe> probe;
  // The silent no-op: load and attach both succeed, which is why no caller may trust them.
  ASSERT_NO_FATAL_FAILURE(LoadAndAttach(probe));

  SocketAttempt inside = TrySocket(child_, AF_UNIX, SOCK_STREAM);
  ASSERT_EQ(inside.setup_error, "");
  EXPECT_EQ(inside.err, 0) << "inside the cgroup: " << ErrnoName(inside.err);
  SocketAttempt nested = TrySocket(grandchild_, AF_UNIX, SOCK_DGRAM);
  ASSERT_EQ(nested.setup_error, "");
  EXPECT_EQ(nested.err, 0) << "in a child of the cgroup: " << ErrnoName(nested.err);
  // The program never ran: a canary reading these counters sees the no-op.
  EXPECT_EQ(probe->denied(), 0u);
  EXPECT_EQ(probe->allowed(), 0u);
}

}  // namespace
}  // namespace tg

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--expect-noop") {
      tg::g_expect_noop = true;
    } else {
      std::fprintf(stderr, "unknown argument: %s (only --expect-noop and gtest flags)\n", argv[i]);
      return 2;
    }
  }
  return RUN_ALL_TESTS();
}
