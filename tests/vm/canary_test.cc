// The canary (agent/enforce/canary.h) in a real BPF-LSM kernel: it passes in enforce and audit, its
// attempts never reach the tunnel's own counters, it still reaches the LSM under systemd's
// seccomp filters (as the shipped units run it), `attach` runs it, and — booted without `bpf`
// in lsm= (the vm.canary_no_bpf_lsm entries, --gtest_filter=NoBpfLsm.*) — it catches the
// silent no-op on its own, with the pre-check skipped.
#include "agent/enforce/canary.h"

#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "agent/enforce/policy_status.h"
#include "agent/target/cgroup.h"
#include "bpf/policy_families.h"
#include "cli_runner.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

const uint64_t kInet = Families({AF_INET, AF_INET6});

TEST(Canary, PassesInEnforceAndAuditAndIsCountedApart) {
  TG_REQUIRE_ROOT();
  std::string error;
  auto a = Attachment::Attach(Cgroups().target, Mode::kEnforce, kInet, true, &error);
  ASSERT_TRUE(a) << error;
  auto target = OpenCgroup(Cgroups().target);
  ASSERT_TRUE(target.ok()) << target.error().message;

  auto enforce = RunCanary(kBpffsDir, *target);
  ASSERT_TRUE(enforce.ok()) << enforce.error().message;
  EXPECT_TRUE(enforce->passed) << FormatCanary(*enforce) << enforce->cause;
  // One check for the families, one per W^X hook (mmap_file, file_open, ptrace_traceme,
  // ptrace_access_check), each proven by its own detail counter.
  ASSERT_EQ(enforce->checks.size(), 5u) << FormatCanary(*enforce);
  EXPECT_EQ(enforce->checks[0].attempt, "socketpair(AF_UNIX)");
  EXPECT_EQ(enforce->checks[2].attempt, "open(/proc/self/mem, O_RDWR)");
  for (const CanaryCheck& c : enforce->checks) {
    EXPECT_EQ(c.observed.find("not provable"), std::string::npos) << c.observed;
  }
  std::printf("%s", FormatCanary(*enforce).c_str());
  std::printf("canary detection time (enforce): %.1f ms\n",
              static_cast<double>(enforce->elapsed.count()) / 1000.0);

  ASSERT_TRUE(a->SetModeAll(Mode::kAudit));
  auto audit = RunCanary(kBpffsDir, *target);
  ASSERT_TRUE(audit.ok()) << audit.error().message;
  EXPECT_TRUE(audit->passed) << FormatCanary(*audit) << audit->cause;
  EXPECT_EQ(audit->checks.size(), 5u) << FormatCanary(*audit);
  std::printf("%s", FormatCanary(*audit).c_str());

  for (PolicyKind k : kAllPolicyKinds) {
    const PolicyStatus s = a->Read(k);
    // The tunnel's counters saw none of it; the canary's saw both runs.
    EXPECT_EQ(s.decisions.deny, 0u) << PolicyName(k);
    EXPECT_EQ(s.decisions.would_deny, 0u) << PolicyName(k);
    EXPECT_GE(s.canary.deny, 1u) << PolicyName(k);
    EXPECT_GE(s.canary.would_deny, 1u) << PolicyName(k);
    EXPECT_EQ(s.canary_result, "passed");
    EXPECT_GE(s.canary_age_seconds, 0.0);
  }
  EXPECT_FALSE(Exists(Cgroups().target + "/" + kCanaryCgroupName));
}

TEST(Canary, PicksAFamilyOutsideTheAllowList) {
  TG_REQUIRE_ROOT();
  std::string error;
  auto a = Attachment::Attach(Cgroups().target, Mode::kEnforce,
                              Families({AF_UNIX, AF_INET, AF_INET6}), false, &error);
  ASSERT_TRUE(a) << error;
  auto target = OpenCgroup(Cgroups().target);
  ASSERT_TRUE(target.ok());
  auto r = RunCanary(kBpffsDir, *target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->passed) << FormatCanary(*r);
  ASSERT_EQ(r->checks.size(), 1u);
  EXPECT_EQ(r->checks[0].attempt, "socketpair(AF_NETLINK)");
}

// The shipped tunnelguard.service runs the agent with RestrictAddressFamilies=AF_UNIX AF_INET
// AF_INET6 and MemoryDenyWriteExecute=yes; the canary's attempts must still reach the LSM.
TEST(Canary, PassesUnderSystemdSeccompFilters) {
  TG_REQUIRE_ROOT();
  std::string error;
  auto a = Attachment::Attach(Cgroups().target, Mode::kEnforce, kInet, true, &error);
  ASSERT_TRUE(a) << error;
  ChildOptions o;
  o.systemd_filter = true;
  o.seccomp_families = Families({AF_UNIX, AF_INET, AF_INET6});
  const int rc = RunInChild(o, [] {
    auto target = OpenCgroup(Cgroups().target);
    if (!target.ok()) return 2;
    auto r = RunCanary(kBpffsDir, *target);
    if (!r.ok()) return 3;
    return r->passed ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

// The shipped tunnelguard.service's SystemCallFilter=@system-service has no @debug: ptrace()
// itself is refused (EPERM) before any LSM. The attach-mode check is still proven (through a
// child's /proc/PID/mem), and PTRACE_TRACEME, which has no other door, says why it cannot be
// proven instead of failing the canary — or passing silently.
TEST(Canary, PtraceRefusedBySeccompIsSaidAndTheRestProven) {
  TG_REQUIRE_ROOT();
  std::string error;
  auto a = Attachment::Attach(Cgroups().target, Mode::kEnforce, kInet, true, &error);
  ASSERT_TRUE(a) << error;
  const int rc = RunInChild(ChildOptions{}, [] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) != 0 ||
        seccomp_load(ctx) != 0) {
      return 10;
    }
    seccomp_release(ctx);
    auto target = OpenCgroup(Cgroups().target);
    if (!target.ok()) return 11;
    auto r = RunCanary(kBpffsDir, *target);
    if (!r.ok()) return 12;
    std::printf("%s", FormatCanary(*r).c_str());
    if (!r->passed || r->checks.size() != 5) return 1;
    const CanaryCheck& traceme = r->checks[3];
    const CanaryCheck& attach = r->checks[4];
    if (traceme.observed.find("not provable here: ptrace() is refused by this process's "
                              "seccomp filter") == std::string::npos) {
      return 2;
    }
    if (attach.observed.find("failed with EACCES; canary ptrace_attach +1") == std::string::npos) {
      return 3;
    }
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// unix-notify: the canary proves the notify-only rule on the peer hook's own counters — a
// datagram connect to the notify socket allowed, one to another socket refused — besides its
// socketpair(AF_UNIX); with nothing bound at the notify address it fails and says why.
TEST(Canary, UnixNotifyProvesTheNotifyOnlyRule) {
  TG_REQUIRE_ROOT();
  const std::string name = "tg-canary-notify-" + std::to_string(::getpid());
  const BoundDgram notify(name);
  ASSERT_TRUE(notify.bound());
  const uint64_t families = kInet | (uint64_t{1} << TG_FAM_UNIX_NOTIFY_BIT);
  std::string error;
  auto a = Attachment::Attach(Cgroups().target, Mode::kEnforce, families, false, &error,
                              std::nullopt, "@" + name);
  ASSERT_TRUE(a) << error;
  auto target = OpenCgroup(Cgroups().target);
  ASSERT_TRUE(target.ok());
  for (Mode mode : {Mode::kEnforce, Mode::kAudit}) {
    ASSERT_TRUE(a->SetModeAll(mode));
    auto r = RunCanary(kBpffsDir, *target);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::printf("%s", FormatCanary(*r).c_str());
    EXPECT_TRUE(r->passed) << FormatCanary(*r) << r->cause;
    ASSERT_EQ(r->checks.size(), 3u) << FormatCanary(*r);
    EXPECT_EQ(r->checks[0].attempt, "socketpair(AF_UNIX)");
    EXPECT_EQ(r->checks[1].attempt, "connect(AF_UNIX, SOCK_DGRAM) to the notify socket @" + name);
    EXPECT_NE(r->checks[1].observed.find("succeeded; canary peer counters: allow +1"),
              std::string::npos)
        << r->checks[1].observed;
    EXPECT_EQ(r->checks[2].attempt, "connect(AF_UNIX, SOCK_DGRAM) to another bound socket");
    EXPECT_NE(r->checks[2].observed.find(mode == Mode::kEnforce ? "failed with EPERM; canary "
                                                                  "counters: deny +1"
                                                                : "succeeded; canary counters: "
                                                                  "deny +0, would_deny +1"),
              std::string::npos)
        << r->checks[2].observed;
  }
  const PolicyStatus s = a->Read(PolicyKind::kAddressFamilies);
  EXPECT_EQ(s.decisions.deny, 0u) << "the canary never counts as the tunnel";
  EXPECT_EQ(s.decisions.would_deny, 0u);
  EXPECT_EQ(s.notify_socket, "@" + name);

  a.reset();  // the same policy with nothing bound at its notify address
  ASSERT_TRUE(a = Attachment::Attach(Cgroups().target, Mode::kEnforce, families, false, &error,
                                     std::nullopt, "@" + name + "-unbound"))
      << error;
  auto r = RunCanary(kBpffsDir, *target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->passed) << FormatCanary(*r);
  ASSERT_EQ(r->checks.size(), 3u) << FormatCanary(*r);
  EXPECT_FALSE(r->checks[1].passed);
  EXPECT_NE(r->checks[1].observed.find("(no socket is bound there: a Type=notify tunnel could "
                                       "not notify)"),
            std::string::npos)
      << r->checks[1].observed;
  EXPECT_TRUE(r->checks[2].passed) << r->checks[2].observed;
  EXPECT_NE(r->cause.find("nothing is bound at the notify socket @" + name + "-unbound"),
            std::string::npos)
      << r->cause;
}

TEST(Canary, AttachRunsItAndStatusShowsIt) {
  TG_REQUIRE_ROOT();
  const CliResult r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("canary passed in "), std::string::npos) << r.out;
  const CliResult s = RunCli(TG_CLI_PATH, {"status", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const auto j = nlohmann::json::parse(s.out);
  for (const auto& p : j["targets"][0]["policies"]) {
    EXPECT_EQ(p["canary"]["result"], "passed") << p.dump();
    EXPECT_EQ(p["decisions"]["deny"], 0) << p.dump();
  }
  // On demand (or from a timer): the same proof.
  const CliResult c = RunCli(TG_CLI_PATH, {"canary", "--cgroup", Cgroups().target});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("canary passed in "), std::string::npos) << c.out;
  EXPECT_EQ(RunCli(TG_CLI_PATH, {"detach", "--all"}).exit_code, 0);
}

TEST(NoBpfLsm, AttachRefusesWithThePlainReason) {
  TG_REQUIRE_ROOT();
  const CliResult r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("bpf is not in the active LSM list ("), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(kBpffsDir));
}

TEST(NoBpfLsm, CanaryCatchesTheSilentNoOpWithoutThePreCheck) {
  TG_REQUIRE_ROOT();
  const CliResult r =
      RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target, "--no-lsm-precheck"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("canary failed: policies are not in force: bpf is not in the active LSM "
                       "list ("),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(",bpf (NixOS: "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
  const CliResult s = RunCli(TG_CLI_PATH, {"status", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const auto j = nlohmann::json::parse(s.out);
  ASSERT_EQ(j["targets"].size(), 1u);
  for (const auto& p : j["targets"][0]["policies"]) {
    EXPECT_EQ(p["canary"]["result"], "failed") << p.dump();
  }
  // The library call the daemon makes periodically says the same.
  auto target = OpenCgroup(Cgroups().target);
  ASSERT_TRUE(target.ok());
  auto again = RunCanary(kBpffsDir, *target);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->passed);
  for (const CanaryCheck& c : again->checks) EXPECT_FALSE(c.passed) << c.observed;
  EXPECT_EQ(RunCli(TG_CLI_PATH, {"detach", "--all"}).exit_code, 0);
  EXPECT_FALSE(Exists(kBpffsDir));
}

// Without bpf among the LSMs, audit still works: through the observe mechanism.
TEST(NoBpfLsm, AuditFallsBackToObserveAndCountsExactly) {
  TG_REQUIRE_ROOT();
  const CliResult r =
      RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target, "--mode", "audit"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("with observe"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("canary passed"), std::string::npos) << r.out;
  EXPECT_EQ(RunInChild(In(Cgroups().target),
                       [] {
                         for (int i = 0; i < 1000; ++i) {
                           const int s = ::socket(AF_UNIX, SOCK_DGRAM, 0);
                           if (s < 0) return 1;
                           ::close(s);
                         }
                         return 0;
                       }),
            0);
  const auto j = nlohmann::json::parse(RunCli(TG_CLI_PATH, {"status", "--json"}).out);
  const auto& p = j["targets"][0]["policies"][0];
  EXPECT_EQ(p["mechanism"], "observe");
  EXPECT_EQ(p["details"]["unix"]["would_deny"], 1000) << p.dump();
  // Debian's stock kernels have every watched call's exit tracepoint: nothing falls back to
  // the host-wide sys_exit hook (the agent mounts tracefs when the guest has not).
  EXPECT_EQ(p["observe"]["hooks"]["exit_tracepoint"],
            nlohmann::json::array({"socket", "socketpair"}))
      << p.dump();
  EXPECT_TRUE(p["observe"]["hooks"]["sys_exit"].empty()) << p.dump();
  EXPECT_EQ(RunCli(TG_CLI_PATH, {"detach", "--all"}).exit_code, 0);
}

}  // namespace
}  // namespace tg::testing
