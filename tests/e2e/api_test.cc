// The gRPC API through the real agent and the real tunnelctl, as different users: the socket's
// mode keeps outsiders out, group members read, only root changes modes.
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "subprocess.h"
#include "test_agent.h"
#include "test_support.h"
#include "tunnelguard/v1/agent.grpc.pb.h"

namespace tg {
namespace {

using std::chrono::milliseconds;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::WaitFor;

constexpr char kCtl[] = TUNNELCTL_BINARY;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    if (::getgrnam("tunnelguard") == nullptr) {
      ASSERT_EQ(RunCommand("groupadd --system tunnelguard").first, 0);
      created_group_ = true;
    }
    gid_ = ::getgrnam("tunnelguard")->gr_gid;
    socket_ = dir_.path() + "/api/tunnelguard.sock";
    agent_.emplace(testing::TestAgent::Options{
        .dir = dir_.path(), .args = {"--cgroup", "/tg-api-test-absent"}, .socket = socket_});
    ASSERT_TRUE(WaitFor([&] { return RunCommand(Ctl("status")).first == 0; }, milliseconds(10000)));
  }
  void TearDown() override {
    agent_.reset();
    if (created_group_) RunCommand("groupdel tunnelguard");
  }
  std::string Ctl(const std::string& args) const {
    return std::string(kCtl) + " --socket " + socket_ + " " + args;
  }
  // Runs tunnelctl as `uid`, with `gid` as its only group.
  std::pair<int, std::string> CtlAs(int uid, int gid, const std::string& args) const {
    return RunCommand("setpriv --reuid " + std::to_string(uid) + " --regid " + std::to_string(gid) +
                      " --groups " + std::to_string(gid) + " " + Ctl(args));
  }

  TempDir dir_;
  std::string socket_;
  std::optional<testing::TestAgent> agent_;
  bool created_group_ = false;
  gid_t gid_ = 0;
};

TEST_F(ApiTest, SocketIsGroupReadableOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, gid_);
}

TEST_F(ApiTest, PermissionMatrix) {
  constexpr int kOutsider = 61234;
  constexpr int kMember = 61235;
  // An outsider: refused by the socket's mode, told which group to join.
  auto [out_rc, out] = CtlAs(kOutsider, kOutsider, "status");
  EXPECT_EQ(out_rc, 4) << out;
  EXPECT_NE(out.find("join the 'tunnelguard' group"), std::string::npos) << out;

  // A group member reads, but may not change a mode: PERMISSION_DENIED from the agent, which
  // knows the caller from SO_PEERCRED.
  auto [mem_rc, mem] = CtlAs(kMember, static_cast<int>(gid_), "status");
  EXPECT_EQ(mem_rc, 0) << mem;
  EXPECT_NE(mem.find("target"), std::string::npos) << mem;
  auto [mode_rc, mode] = CtlAs(kMember, static_cast<int>(gid_), "mode wx_memory audit");
  EXPECT_EQ(mode_rc, 4) << mode;
  EXPECT_NE(mode.find("needs root (you are uid 61235)"), std::string::npos) << mode;

  // Root passes the permission check (the agent then answers for the policy itself).
  auto [root_rc, root] = RunCommand(Ctl("mode wx_memory audit"));
  EXPECT_EQ(root.find("needs root"), std::string::npos) << root;
}

TEST_F(ApiTest, ClearErrorsWhenTheAgentIsGone) {
  agent_->process().Signal(SIGTERM);
  ASSERT_TRUE(agent_->process().Wait(milliseconds(5000)).has_value());
  auto [rc, out] = RunCommand(Ctl("status"));
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("agent is not running"), std::string::npos) << out;
}

TEST_F(ApiTest, SecondAgentOnTheSameSocketRefusesToStart) {
  auto [rc, out] =
      RunCommand(std::string(TG_BINARY) +
                 " run --cgroup /x --metrics-listen 127.0.0.1:0 --grpc-socket " + socket_);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("another agent is already serving"), std::string::npos) << out;
}

TEST_F(ApiTest, StatusJsonHasTheDocumentedFields) {
  auto [rc, out] = RunCommand(Ctl("status --json"));
  ASSERT_EQ(rc, 0) << out;
  for (const char* field : {"\"version\"", "\"target\"", "\"cgroup\"", "\"target_present\"",
                            "\"uptime_seconds\"", "\"features\""}) {
    EXPECT_NE(out.find(field), std::string::npos) << field << " in " << out;
  }
}

}  // namespace
}  // namespace tg

namespace tg {
namespace {

// SetMode writes the configured modes while GetStatus reads them on other gRPC threads: every
// call answers, and the mode reported at the end is the last one set. (Meant to run against a
// TSan-built agent too; tools/tsan.sh says why it does not yet.)
TEST_F(ApiTest, ModeSwitchesAndStatusReadsRunConcurrently) {
  auto channel = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  auto stub = tunnelguard::v1::Agent::NewStub(channel);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, read_failures{0};
  std::thread reader([&] {
    while (!stop) {
      grpc::ClientContext ctx;
      tunnelguard::v1::GetStatusResponse r;
      read_failures += stub->GetStatus(&ctx, {}, &r).ok() ? 0 : 1;
      ++reads;
    }
  });
  int failures = 0;
  std::string last;
  for (int i = 0; i < 300; ++i) {
    last = i % 2 == 0 ? "enforce" : "audit";
    grpc::ClientContext ctx;
    tunnelguard::v1::SetModeRequest req;
    req.set_policy("wx_memory");
    req.set_mode(last);
    tunnelguard::v1::SetModeResponse resp;
    failures += stub->SetMode(&ctx, req, &resp).ok() ? 0 : 1;
  }
  stop = true;
  reader.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(read_failures, 0) << reads << " reads";
  grpc::ClientContext ctx;
  tunnelguard::v1::GetStatusResponse r;
  ASSERT_TRUE(stub->GetStatus(&ctx, {}, &r).ok());
  bool seen = false;
  for (const auto& p : r.policies()) {
    if (p.name() != "wx_memory") continue;
    seen = true;
    EXPECT_EQ(p.mode(), last);
  }
  EXPECT_TRUE(seen) << r.DebugString();
  agent_->process().Signal(SIGTERM);
  EXPECT_EQ(agent_->process().Wait(milliseconds(10000)), 0) << "the agent did not stop cleanly";
}

}  // namespace
}  // namespace tg
