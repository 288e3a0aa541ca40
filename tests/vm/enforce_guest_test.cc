// Enforcement in a real BPF-LSM kernel beyond the conformance table: exact counters under
// load in both modes, events that name the right process, real programs that keep working
// under W^X while a JIT-style program is denied, and the CLI's attach/status/detach round trip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_events.h"
#include "cli_runner.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

using ::tg::testing::CliResult;
using ::tg::testing::RunCli;

constexpr int kCalls = 10000;

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// Runs `op` kCalls times in a child in `cgroup`; returns how many calls gave `want`.
int Repeat(const std::string& cgroup, const std::function<int()>& op, int want, int calls) {
  return RunInChild(In(cgroup),
                    [&] {
                      int matched = 0;
                      for (int i = 0; i < calls; ++i) matched += op() == want ? 1 : 0;
                      return matched == calls ? 0 : 1;
                    }) == 0
             ? calls
             : -1;
}

class EnforceGuest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    std::string error;
    att_ = Attachment::Attach(Cgroups().target, Mode::kEnforce, Families({AF_INET, AF_INET6}),
                              /*wx=*/true, &error);
    ASSERT_TRUE(att_.has_value()) << error;
  }
  std::optional<Attachment> att_;
};

TEST_F(EnforceGuest, TenThousandDeniedSocketsAreTenThousandCountedInBothModes) {
  const auto unix_socket = [] { return OpSocket(AF_UNIX, SOCK_STREAM, 0); };
  const PolicyStatus s0 = att_->Read(PolicyKind::kAddressFamilies);
  ASSERT_EQ(Repeat(Cgroups().target, unix_socket, EAFNOSUPPORT, kCalls), kCalls);
  const PolicyStatus s1 = att_->Read(PolicyKind::kAddressFamilies);
  EXPECT_EQ(DetailOf(s1, "unix").deny - DetailOf(s0, "unix").deny, uint64_t{kCalls});
  EXPECT_EQ(s1.decisions.deny - s0.decisions.deny, uint64_t{kCalls});
  EXPECT_EQ(s1.decisions.would_deny, s0.decisions.would_deny);

  ASSERT_TRUE(att_->SetModeAll(Mode::kAudit));
  ASSERT_EQ(Repeat(Cgroups().target, unix_socket, 0, kCalls), kCalls);
  const PolicyStatus s2 = att_->Read(PolicyKind::kAddressFamilies);
  EXPECT_EQ(DetailOf(s2, "unix").would_deny - DetailOf(s1, "unix").would_deny, uint64_t{kCalls});
  EXPECT_EQ(s2.decisions.deny, s1.decisions.deny);
}

TEST_F(EnforceGuest, TenThousandWxMappingsAreTenThousandCountedInBothModes) {
  const auto wx = [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); };
  const PolicyStatus s0 = att_->Read(PolicyKind::kWxMemory);
  ASSERT_EQ(Repeat(Cgroups().target, wx, EPERM, kCalls), kCalls);
  const PolicyStatus s1 = att_->Read(PolicyKind::kWxMemory);
  EXPECT_EQ(DetailOf(s1, "mmap_wx").deny - DetailOf(s0, "mmap_wx").deny, uint64_t{kCalls});
  ASSERT_TRUE(att_->SetModeAll(Mode::kAudit));
  ASSERT_EQ(Repeat(Cgroups().target, wx, kOkWx, kCalls), kCalls);
  const PolicyStatus s2 = att_->Read(PolicyKind::kWxMemory);
  EXPECT_EQ(DetailOf(s2, "mmap_wx").would_deny - DetailOf(s1, "mmap_wx").would_deny,
            uint64_t{kCalls});
  EXPECT_EQ(s2.decisions.deny, s1.decisions.deny);
}

TEST_F(EnforceGuest, ConcurrentDenialsAcrossCpusAreCountedExactly) {
  // 4 processes on 2 vCPUs, each 2,500 denied sockets and 2,500 denied W+X mmaps.
  const PolicyStatus f0 = att_->Read(PolicyKind::kAddressFamilies);
  const PolicyStatus w0 = att_->Read(PolicyKind::kWxMemory);
  std::vector<pid_t> pids;
  for (int p = 0; p < 4; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int r = RunInChild(In(Cgroups().target), [] {
        int bad = 0;
        for (int i = 0; i < kCalls / 4; ++i) {
          bad += OpSocket(AF_PACKET, SOCK_RAW, 0) == EAFNOSUPPORT ? 0 : 1;
          bad += OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC) == EPERM ? 0 : 1;
        }
        return bad == 0 ? 0 : 1;
      });
      ::_exit(r);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const PolicyStatus f1 = att_->Read(PolicyKind::kAddressFamilies);
  const PolicyStatus w1 = att_->Read(PolicyKind::kWxMemory);
  EXPECT_EQ(DetailOf(f1, "packet").deny - DetailOf(f0, "packet").deny, uint64_t{kCalls});
  EXPECT_EQ(DetailOf(w1, "mmap_wx").deny - DetailOf(w0, "mmap_wx").deny, uint64_t{kCalls});
}

TEST_F(EnforceGuest, EventsNameTheProcessAndDropsAreCountedNotLost) {
  std::vector<PolicyEvent> events;
  auto stream = EventStream::Open(kBpffsDir, att_->cgroup_id(),
                                  [&](const PolicyEvent& e) { events.push_back(e); });
  ASSERT_TRUE(stream.ok()) << stream.error().message;
  ASSERT_TRUE(stream->Poll(0).ok());  // drain whatever earlier tests left
  events.clear();

  // One denial from a named process in a child cgroup.
  const std::string child = Cgroups().target + "/events";
  ASSERT_EQ(::mkdir(child.c_str(), 0755), 0);
  ChildOptions o = In(child);
  o.comm = "tg-evt-probe";
  int pid = 0;
  EXPECT_EQ(RunInChild(
                o, [] { return OpSocket(AF_PACKET, SOCK_RAW, 0); }, &pid),
            EAFNOSUPPORT);
  o.comm = "tg-evt-jit";
  int jit_pid = 0;
  EXPECT_EQ(RunInChild(
                o, [] { return OpJit(/*flip=*/false); }, &jit_pid),
            EPERM);
  ASSERT_TRUE(stream->Poll(100).ok());
  struct stat st {};
  ASSERT_EQ(::stat(child.c_str(), &st), 0);
  ::rmdir(child.c_str());

  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].policy, PolicyKind::kAddressFamilies);
  EXPECT_EQ(events[0].action, Action::kDeny);
  EXPECT_EQ(events[0].detail, "packet");
  EXPECT_EQ(events[0].pid, static_cast<uint32_t>(pid));
  EXPECT_EQ(events[0].tid, static_cast<uint32_t>(pid));
  EXPECT_EQ(events[0].comm, "tg-evt-probe");
  EXPECT_EQ(events[0].uid, 0u);
  EXPECT_EQ(events[0].cgroup_id, st.st_ino);  // the child cgroup, not the target
  EXPECT_EQ(events[0].arg0, static_cast<uint64_t>(SOCK_RAW));
  EXPECT_EQ(events[1].policy, PolicyKind::kWxMemory);
  EXPECT_EQ(events[1].detail, "mmap_wx");
  EXPECT_EQ(events[1].pid, static_cast<uint32_t>(jit_pid));
  EXPECT_EQ(events[1].comm, "tg-evt-jit");

  // Overflow the ring buffer with nobody reading: every denial is either an event read
  // afterwards or a counted drop; the counters stay exact either way.
  const PolicyStatus before = att_->Read(PolicyKind::kAddressFamilies);
  ASSERT_EQ(
      Repeat(
          Cgroups().target, [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); }, EAFNOSUPPORT, kCalls),
      kCalls);
  events.clear();
  while (true) {
    auto n = stream->Poll(0);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
  }
  const PolicyStatus after = att_->Read(PolicyKind::kAddressFamilies);
  const uint64_t dropped = after.events_dropped - before.events_dropped;
  EXPECT_GT(dropped, 0u) << "a 256 KiB ring cannot hold 10,000 events";
  EXPECT_EQ(events.size() + dropped, uint64_t{kCalls});
  EXPECT_EQ(DetailOf(after, "netlink").deny - DetailOf(before, "netlink").deny, uint64_t{kCalls});
  std::printf("TG-NOTE events: %zu read, %llu dropped of %d denials\n", events.size(),
              static_cast<unsigned long long>(dropped), kCalls);
}

// Execs `argv` in a child in the target cgroup; returns its exit code and output.
CliResult ExecInTarget(const std::string& binary, const std::vector<std::string>& args) {
  return RunCli(binary, args, [] {
    const int fd = ::open((Cgroups().target + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && ::write(fd, "0", 1) == 1;
    if (fd >= 0) ::close(fd);
    return ok;
  });
}

TEST_F(EnforceGuest, RealProgramsKeepWorkingUnderWxWhileAJitIsDenied) {
  const PolicyStatus w0 = att_->Read(PolicyKind::kWxMemory);
  // Static busybox: a shell running a pipeline and applets.
  CliResult sh =
      ExecInTarget("/bin/busybox", {"sh", "-c", "echo hello | tr a-z A-Z; ls / >/dev/null"});
  EXPECT_EQ(sh.exit_code, 0) << sh.err;
  EXPECT_EQ(sh.out, "HELLO\n");
  // Dynamically linked programs: ld.so, libc, libstdc++, libbpf, libsystemd, libseccomp.
  CliResult cli = ExecInTarget(TG_CLI_PATH, {"version"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out.rfind("tunnelguard ", 0), 0u) << cli.out;
  // curl: libcurl with OpenSSL 3 initialised, reading a file:// URL (the guest has no network).
  TG_REQUIRE(Exists("/usr/bin/curl"), "curl not in the guest (tests/vm/enforce_vm.cmake FILES)");
  CliResult curl = ExecInTarget("/usr/bin/curl", {"-sS", "file:///proc/sys/kernel/osrelease"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_FALSE(curl.out.empty());
  // python3: the interpreter, importing ssl (OpenSSL) and ctypes (libffi) and calling through
  // ctypes. (A ctypes *callback* needs libffi's writable+executable trampoline memory, which
  // W^X denies by design, as systemd's MemoryDenyWriteExecute= does for anonymous memory.)
  TG_REQUIRE(Exists("/usr/bin/python3.11"), "python3 not in the guest (enforce_vm.cmake FILES)");
  CliResult py = ExecInTarget(
      "/usr/bin/python3.11",
      {"-c",
       "import ssl, ctypes; ssl.create_default_context(); print(ctypes.CDLL(None).getpid() > 0)"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, "True\n") << py.err;
  CliResult self = ExecInTarget("/proc/self/exe", {"--gtest_list_tests"});
  EXPECT_EQ(self.exit_code, 0) << self.err;
  EXPECT_NE(self.out.find("EnforceGuest."), std::string::npos);
  const PolicyStatus w1 = att_->Read(PolicyKind::kWxMemory);
  EXPECT_EQ(w1.decisions.deny, w0.decisions.deny) << "an ordinary program was denied";
  EXPECT_GT(DetailOf(w1, "mmap").allow, DetailOf(w0, "mmap").allow) << "loader mmaps counted";

  // The JIT really works where no policy applies...
  EXPECT_EQ(RunInChild(In(Cgroups().outside), [] { return OpJit(false); }), 42);
  EXPECT_EQ(RunInChild(In(Cgroups().outside), [] { return OpJit(true); }), 42);
  // ...and is denied in the cgroup, W+X at once or written then flipped to exec.
  EXPECT_EQ(RunInChild(In(Cgroups().target), [] { return OpJit(false); }), EPERM);
  EXPECT_EQ(RunInChild(In(Cgroups().target), [] { return OpJit(true); }), EPERM);
}

TEST(EnforceCli, AttachStatusDetachRoundTrip) {
  TG_REQUIRE_ROOT();
  const std::string& target = Cgroups().target;
  CliResult a = RunCli(TG_CLI_PATH, {"attach", "--cgroup", target, "--mode", "audit", "--families",
                                     "inet,inet6,netlink"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("address_families: audit on " + target +
                       " with lsm_cgroup, allowed "
                       "families: inet,inet6,netlink"),
            std::string::npos)
      << a.out;

  // A second attach of the same policy adopts the pinned links (no double attach).
  CliResult again = RunCli(TG_CLI_PATH, {"attach", "--cgroup", target, "--mode", "audit",
                                         "--families", "inet,inet6,netlink"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("address_families: adopted the pinned links"), std::string::npos)
      << again.out;

  // Audit: allowed to happen, counted as would_deny.
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), 0);
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); }), 0);
  EXPECT_EQ(RunInChild(In(target), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
            kOkWx);

  CliResult s = RunCli(TG_CLI_PATH, {"status", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const auto j = nlohmann::json::parse(s.out);
  ASSERT_EQ(j["targets"].size(), 1u) << s.out;
  const auto& t = j["targets"][0];
  EXPECT_EQ(t["cgroup"], target);
  ASSERT_EQ(t["policies"].size(), 2u);
  for (const auto& p : t["policies"]) {
    EXPECT_EQ(p["mode"], "audit");
    EXPECT_EQ(p["mechanism"], "lsm_cgroup");
    EXPECT_EQ(p["active"], true);
    EXPECT_EQ(p["decisions"]["deny"], 0);
    EXPECT_EQ(p["decisions"]["would_deny"], 1) << p.dump();
  }
  EXPECT_EQ(t["policies"][0]["name"], "address_families");
  EXPECT_EQ(t["policies"][0]["allowed_families"], "inet,inet6,netlink");
  EXPECT_EQ(t["policies"][0]["details"]["unix"]["would_deny"], 1);
  EXPECT_EQ(t["policies"][0]["details"]["netlink"]["allow"], 1);
  EXPECT_EQ(t["policies"][0]["decisions"]["allow"], 1);
  EXPECT_EQ(t["policies"][1]["name"], "wx_memory");
  EXPECT_EQ(t["policies"][1]["details"]["mmap_wx"]["would_deny"], 1);
  EXPECT_TRUE(j.contains("events_dropped"));

  CliResult text = RunCli(TG_CLI_PATH, {"status"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("address_families audit   lsm_cgroup active"), std::string::npos)
      << text.out;

  CliResult d = RunCli(TG_CLI_PATH, {"detach", "--cgroup", target});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_FALSE(Exists(kBpffsDir)) << "detach left pins behind";
  // Detached means detached: the family is no longer even counted.
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_PACKET, SOCK_RAW, 0); }), 0);

  // Enforce through the CLI, then detach --all.
  CliResult e = RunCli(TG_CLI_PATH, {"attach", "--cgroup", target, "--wx-memory", "off"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }), EAFNOSUPPORT);
  EXPECT_EQ(RunInChild(In(target), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
            kOkWx)
      << "--wx-memory off attaches no memory policy";
  CliResult all = RunCli(TG_CLI_PATH, {"detach", "--all"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_FALSE(Exists(kBpffsDir));
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }), 0);
}

TEST(EnforceCli, BadInputsInAKernelThatEnforces) {
  TG_REQUIRE_ROOT();
  CliResult r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", "/sys/fs/cgroup/no-such"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no such cgroup"), std::string::npos) << r.err;
  r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target, "--families", "ipx6"});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target, "--bpffs-dir", "/tmp/x"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("bpffs is not mounted"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(kBpffsDir));
  EXPECT_FALSE(Exists("/tmp/x"));
}

}  // namespace
}  // namespace tg::testing
