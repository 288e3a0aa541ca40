// Least privilege as the running agent shows it: /metrics and the gRPC API are parsed by child
// processes (the metrics and API faces) with no capability, no_new_privs, a seccomp filter
// and only their sockets and channels to the agent, while the agent keeps the capabilities BPF
// needs; a face that dies is replaced and scrapes and calls go on.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>

#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using testing::HttpGet;
using testing::ProcStatus;
using testing::TempDir;
using testing::TestAgent;
using testing::TestCgroup;
using testing::WaitFor;

// The agent's child started as `tunnelguard __face ROLE …` (0: none).
pid_t FaceOf(pid_t agent, const std::string& role) {
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  while (dirent* e = ::readdir(proc.get())) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || ProcStatus(pid)["PPid"] != std::to_string(agent)) continue;
    std::string cmdline = testing::ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("__face " + role + " ") != std::string::npos) return pid;
  }
  return 0;
}

// fd number -> what it is (readlink of /proc/PID/fd/N).
std::map<int, std::string> OpenFds(pid_t pid) {
  std::map<int, std::string> fds;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return fds;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    const ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    fds[std::atoi(e->d_name)] = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
  }
  return fds;
}

class LeastPrivilegeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    cgroup_ = std::make_unique<TestCgroup>("tg-privsep-test");
    ASSERT_TRUE(cgroup_->ok());
    agent_ = std::make_unique<TestAgent>(
        TestAgent::Options{.dir = dir_.path(), .args = {"--cgroup", cgroup_->path()}});
    ASSERT_GT(port_ = agent_->WaitForMetrics(), 0) << agent_->log();
    ASSERT_TRUE(WaitFor([&] { return (face_ = FaceOf(agent_->pid(), "metrics")) > 0; },
                        milliseconds(10000)))
        << "no metrics face under the agent\n"
        << agent_->log();
    // Serving: a call answered (a face found before that may still be starting).
    ASSERT_TRUE(WaitFor([&] { return Ctl("status").first == 0; }, milliseconds(20000)))
        << agent_->log();
    ASSERT_GT(api_face_ = FaceOf(agent_->pid(), "api"), 0) << "no API face under the agent\n"
                                                           << agent_->log();
  }
  // `tunnelctl ARGS` against this agent: exit code and output.
  std::pair<int, std::string> Ctl(const std::string& args) const {
    return testing::RunCommand(std::string(TUNNELCTL_BINARY) + " --socket " + agent_->socket() +
                               " " + args);
  }
  TempDir dir_;
  std::unique_ptr<TestCgroup> cgroup_;
  std::unique_ptr<TestAgent> agent_;
  int port_ = 0;
  pid_t face_ = 0, api_face_ = 0;
};

TEST_F(LeastPrivilegeTest, TheProcessThatParsesHttpHoldsNoCapabilityAndNoBpfObject) {
  auto face = ProcStatus(face_);
  auto agent = ProcStatus(agent_->pid());
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_EQ(face[set], "0000000000000000") << "face " << set;
  }
  EXPECT_EQ(face["NoNewPrivs"], "1");
  EXPECT_EQ(face["Seccomp"], "2");
  EXPECT_NE(agent["CapEff"], "0000000000000000") << "the agent itself keeps what BPF needs";
  // Descriptors: stdio, the listening socket (3), the channel (4), and its own eventfd and
  // epoll; nothing of the agent's (no BPF map, program or link).
  for (const auto& [fd, what] : OpenFds(face_)) {
    EXPECT_EQ(what.find("bpf"), std::string::npos) << "fd " << fd << " is " << what;
    if (fd == 0 || fd == 1) {
      EXPECT_EQ(what, "/dev/null") << "fd " << fd;
    } else if (fd == 3 || fd == 4) {
      EXPECT_EQ(what.rfind("socket:", 0), 0u) << "fd " << fd << " is " << what;
    } else if (fd > 4) {
      EXPECT_TRUE(what == "anon_inode:[eventfd]" || what == "anon_inode:[eventpoll]")
          << "fd " << fd << " is " << what;
    }
  }
  const auto body = HttpGet(port_, "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_NE(body->find("tunnelguard_build_info"), std::string::npos);
  std::printf("CapEff: agent %s, metrics face %s (NoNewPrivs %s, Seccomp %s)\n",
              agent["CapEff"].c_str(), face["CapEff"].c_str(), face["NoNewPrivs"].c_str(),
              face["Seccomp"].c_str());
}

TEST_F(LeastPrivilegeTest, TheProcessThatParsesGrpcHoldsNoCapabilityAndNoBpfObject) {
  // A call first, so the face holds a client connection while it is inspected.
  auto [rc, out] = Ctl("status --json");
  ASSERT_EQ(rc, 0) << out << agent_->log();
  EXPECT_NE(out.find("\"version\""), std::string::npos) << out;
  auto face = ProcStatus(api_face_);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_EQ(face[set], "0000000000000000") << "API face " << set;
  }
  EXPECT_EQ(face["NoNewPrivs"], "1");
  EXPECT_EQ(face["Seccomp"], "2");
  // stdio, the control channel (3), client connections and the call sockets (sockets), and
  // gRPC's own pollers and wakeups; no file, no BPF object of the agent's.
  for (const auto& [fd, what] : OpenFds(api_face_)) {
    EXPECT_EQ(what.find("bpf"), std::string::npos) << "fd " << fd << " is " << what;
    if (fd == 0 || fd == 1) {
      EXPECT_EQ(what, "/dev/null") << "fd " << fd;
    } else if (fd >= 3) {
      EXPECT_TRUE(what.rfind("socket:", 0) == 0 || what.rfind("anon_inode:", 0) == 0 ||
                  what.rfind("pipe:", 0) == 0)
          << "fd " << fd << " is " << what;
    }
  }
  std::printf("CapEff: API face %s (NoNewPrivs %s, Seccomp %s)\n", face["CapEff"].c_str(),
              face["NoNewPrivs"].c_str(), face["Seccomp"].c_str());
  // Streams and calls side by side go through it too: a follower, then a stats call.
  testing::Subprocess follower = testing::Subprocess::Start(
      {TUNNELCTL_BINARY, "--socket", agent_->socket(), "events", "--follow"},
      {{}, dir_.path() + "/follow.log", ""});
  auto [src, stats] = Ctl("stats --json --histogram");
  EXPECT_EQ(src, 0) << stats;
  EXPECT_NE(stats.find("\"upstreams\""), std::string::npos) << stats;
  EXPECT_EQ(::kill(follower.pid(), 0), 0) << testing::ReadFile(dir_.path() + "/follow.log");
}

TEST_F(LeastPrivilegeTest, AnApiFaceThatDiesIsReplacedAndCallsGoOn) {
  ASSERT_EQ(::kill(api_face_, SIGKILL), 0);
  pid_t next = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        next = FaceOf(agent_->pid(), "api");
        return next > 0 && next != api_face_ && Ctl("status").first == 0;
      },
      milliseconds(30000)))
      << agent_->log();
  EXPECT_NE(agent_->log().find("API face (pid " + std::to_string(api_face_) +
                               ") killed by signal 9; starting a new one"),
            std::string::npos)
      << agent_->log();
  EXPECT_EQ(ProcStatus(next)["CapEff"], "0000000000000000");
}

TEST_F(LeastPrivilegeTest, AFaceThatDiesIsReplacedAndScrapesGoOn) {
  ASSERT_EQ(::kill(face_, SIGKILL), 0);
  pid_t next = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        next = FaceOf(agent_->pid(), "metrics");
        return next > 0 && next != face_ && HttpGet(port_, "/metrics").has_value();
      },
      milliseconds(20000)))
      << agent_->log();
  EXPECT_NE(agent_->log().find("metrics face (pid " + std::to_string(face_) +
                               ") killed by signal 9; starting a new one"),
            std::string::npos)
      << agent_->log();
  EXPECT_EQ(ProcStatus(next)["CapEff"], "0000000000000000");
}

TEST_F(LeastPrivilegeTest, TheFaceLeavesWithTheAgentNotBeforeIt) {
  // A stop signal to the whole group (Ctrl-C, systemctl stop) is the agent's: the face holds it
  // pending, blocked, and stays up until the agent goes.
  ASSERT_EQ(::kill(face_, SIGTERM), 0);
  const auto pending = std::stoull(ProcStatus(face_)["ShdPnd"], nullptr, 16);
  EXPECT_NE(pending & (1ull << (SIGTERM - 1)), 0u) << "SIGTERM not pending in the face";
  EXPECT_EQ(::kill(face_, 0), 0) << "SIGTERM ended the face";
  agent_->process().Signal(SIGTERM);
  ASSERT_EQ(agent_->process().Wait(milliseconds(20000)), 0) << agent_->log();
  EXPECT_TRUE(WaitFor([&] { return ::kill(face_, 0) != 0; }, milliseconds(10000)))
      << "the metrics face outlived the agent";
}

}  // namespace
}  // namespace tg
