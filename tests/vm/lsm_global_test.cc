// The lsm_global mechanism (global lsm/ programs filtered with bpf_current_task_under_cgroup),
// forced with --mechanism lsm-global on kernels that also have lsm_cgroup: a conformance
// subset (target, a child cgroup created after attach, outside), exact counters, the canary,
// adoption and a mode change, and detach.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

nlohmann::json Policy(const std::string& name) {
  const auto j = nlohmann::json::parse(RunCli(TG_CLI_PATH, {"status", "--json"}).out);
  for (const auto& p : j["targets"][0]["policies"]) {
    if (p["name"] == name) return p;
  }
  return {};
}

TEST(LsmGlobal, ForcedMechanismEnforcesAuditsAndCounts) {
  TG_REQUIRE_ROOT();
  const GuestCgroups& cg = Cgroups();
  const CliResult a =
      RunCli(TG_CLI_PATH, {"attach", "--cgroup", cg.target, "--mechanism", "lsm-global"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.out.find("with lsm_global"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("canary passed"), std::string::npos) << a.out;
  ASSERT_EQ(::mkdir(cg.child.c_str(), 0755), 0);

  for (const std::string& where : {cg.target, cg.child}) {
    EXPECT_EQ(RunInChild(In(where), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), EAFNOSUPPORT)
        << where;
    EXPECT_EQ(RunInChild(In(where), [] { return OpSocketpairUnix(); }), EAFNOSUPPORT);
    EXPECT_EQ(RunInChild(In(where), [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); }),
              EAFNOSUPPORT);
    EXPECT_EQ(RunInChild(In(where), [] { return OpSocket(AF_INET, SOCK_DGRAM, 0); }), 0);
    EXPECT_EQ(RunInChild(In(where), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
              EPERM);
    EXPECT_EQ(RunInChild(In(where),
                         [] { return OpMprotect(PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC); }),
              EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpMemfdDoubleMap(); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpShmat(SHM_EXEC); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpJit(true); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpProcSelfMemWrite(); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpPtracePokeText(false); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpPtraceTraceme(); }), EPERM);
    EXPECT_EQ(RunInChild(In(where), [] { return OpProcSelfMemRead(); }), 0);
  }
  EXPECT_EQ(RunInChild(In(cg.outside), [] { return OpPtracePokeText(false); }), 0);
  EXPECT_EQ(RunInChild(In(cg.outside), [] { return OpPtraceTraceme(); }), 0);
  EXPECT_EQ(RunInChild(In(cg.outside), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), 0);
  EXPECT_EQ(
      RunInChild(In(cg.outside), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
      kOkWx);

  auto fam = Policy("address_families");
  EXPECT_EQ(fam["mechanism"], "lsm_global");
  EXPECT_EQ(fam["active"], true) << fam.dump();
  EXPECT_EQ(fam["details"]["unix"]["deny"], 4) << fam.dump();  // socket + socketpair, x2
  EXPECT_EQ(fam["details"]["netlink"]["deny"], 2) << fam.dump();
  auto wx = Policy("wx_memory");
  EXPECT_EQ(wx["mechanism"], "lsm_global");
  EXPECT_EQ(wx["details"]["mmap_wx"]["deny"], 2) << wx.dump();
  EXPECT_EQ(wx["details"]["shmat_exec"]["deny"], 2) << wx.dump();
  EXPECT_EQ(wx["details"]["proc_mem_write"]["deny"], 2) << wx.dump();
  EXPECT_EQ(wx["details"]["ptrace_attach"]["deny"], 2) << wx.dump();
  EXPECT_EQ(wx["details"]["ptrace_traceme"]["deny"], 2) << wx.dump();

  // Adopted and switched to audit in place: the forbidden acts happen and are counted.
  const CliResult audit = RunCli(TG_CLI_PATH, {"attach", "--cgroup", cg.target, "--mechanism",
                                               "lsm-global", "--mode", "audit"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("adopted the pinned links"), std::string::npos) << audit.out;
  EXPECT_EQ(RunInChild(In(cg.target),
                       [] {
                         for (int i = 0; i < 1000; ++i) {
                           if (OpSocket(AF_UNIX, SOCK_DGRAM, 0) != 0) return 1;
                           if (OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC) != kOkWx) return 2;
                         }
                         return 0;
                       }),
            0);
  fam = Policy("address_families");
  EXPECT_EQ(fam["details"]["unix"]["would_deny"], 1000) << fam.dump();
  wx = Policy("wx_memory");
  EXPECT_EQ(wx["details"]["mmap_wx"]["would_deny"], 1000) << wx.dump();

  ASSERT_EQ(RunCli(TG_CLI_PATH, {"detach", "--cgroup", cg.target}).exit_code, 0);
  EXPECT_EQ(RunInChild(In(cg.target), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), 0);
  ::rmdir(cg.child.c_str());
}

}  // namespace
}  // namespace tg::testing
