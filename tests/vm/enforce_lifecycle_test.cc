// Lifecycle edges in a real BPF-LSM kernel: the events command, a target cgroup that
// disappears under an attachment, and a guest booted without `bpf` among its LSMs (run only by
// the vm.enforce_no_bpf_lsm entries, with --gtest_filter=NoBpfLsm.*).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "agent/enforce/policy_status.h"
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

TEST(Lifecycle, EventsCommandStreamsDenialsAsJsonLines) {
  TG_REQUIRE_ROOT();
  const std::string& target = Cgroups().target;
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"attach", "--cgroup", target}).exit_code, 0);
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::execl(TG_CLI_PATH, TG_CLI_PATH, "events", "--cgroup", target.c_str(), "--json", nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  // No fixed sleeps (the guest runs several times slower than the host, and how much varies):
  // the ring buffer keeps the event until the command reads it, so deny first, then wait for
  // the command to print it, and only then stop it.
  ChildOptions o = In(target);
  o.comm = "tg-evt-cli";
  int denied_pid = 0;
  EXPECT_EQ(RunInChild(
                o, [] { return OpSocket(AF_PACKET, SOCK_RAW, 0); }, &denied_pid),
            EAFNOSUPPORT);
  std::string text;
  const std::string needle = "\"pid\":" + std::to_string(denied_pid);
  for (int waited_ms = 0; text.find(needle) == std::string::npos && waited_ms < 30000;) {
    pollfd pfd{out[0], POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) {
      char buf[4096];
      const ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    } else {
      waited_ms += 100;
    }
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  text += ReadAll(out[0]);
  ::close(out[0]);
  EXPECT_EQ(RunCli(TG_CLI_PATH, {"detach", "--cgroup", target}).exit_code, 0);

  std::istringstream lines(text);
  std::string line;
  int matched = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["pid"] != denied_pid) continue;
    ++matched;
    EXPECT_EQ(j["policy"], "address_families");
    EXPECT_EQ(j["action"], "deny");
    EXPECT_EQ(j["detail"], "packet");
    EXPECT_EQ(j["comm"], "tg-evt-cli");
  }
  EXPECT_EQ(matched, 1) << text;
}

TEST(Lifecycle, StatusSaysInactiveWhenTheCgroupIsGoneAndDetachCleansUp) {
  TG_REQUIRE_ROOT();
  const std::string doomed = Cgroups().mount + "/tg-doomed";
  ASSERT_EQ(::mkdir(doomed.c_str(), 0755), 0);
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"attach", "--cgroup", doomed}).exit_code, 0);
  ASSERT_EQ(::rmdir(doomed.c_str()), 0);
  // cgroup removal is asynchronous in the kernel (percpu_ref kill, then release work).
  nlohmann::json p;
  for (int i = 0; i < 50; ++i) {
    const CliResult s = RunCli(TG_CLI_PATH, {"status", "--json"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    const auto j = nlohmann::json::parse(s.out);
    ASSERT_EQ(j["targets"].size(), 1u);
    p = j["targets"][0]["policies"][0];
    if (p["active"] == false && j["targets"][0]["cgroup"].is_null()) break;
    ::usleep(100 * 1000);
  }
  EXPECT_EQ(p["active"], false) << p.dump();
  EXPECT_NE(p.value("problem", "").find("no longer attached"), std::string::npos) << p.dump();
  const CliResult d = RunCli(TG_CLI_PATH, {"detach", "--all"});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_FALSE(Exists(kBpffsDir));
}

TEST(NoBpfLsm, AttachRefusesInsteadOfEnforcingNothing) {
  TG_REQUIRE_ROOT();
  const CliResult r = RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err.rfind("tunnelguard: enforcement unavailable: bpf is not in the active LSM "
                        "list (",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find(",bpf (--mode audit works without BPF-LSM"), std::string::npos)
      << "the fix: lsm=…,bpf, and what still works";
  EXPECT_FALSE(Exists(kBpffsDir));
}

}  // namespace
}  // namespace tg::testing
