// The confined face's two promises, checked in a child process of the test: after
// ConfineFace() it holds no capability and its system calls are the allow-list's only; and the
// frames between face and agent carry exactly what was sent, refusing what is over the limit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "agent/base/unique_fd.h"
#include "agent/face/api_calls.h"
#include "agent/face/confine.h"
#include "agent/face/frames.h"
#include "subprocess.h"

namespace tg::face {
namespace {

using std::chrono::milliseconds;

// Forks a child that confines itself and then runs `body(out)`, `out` being the write end of a
// pipe made before confinement (the confined child cannot open anything); the read end goes
// to *from_child. The child exits with body's result (100: ConfineFace failed).
pid_t SpawnConfined(int (*body)(int out), int* from_child) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    if (!ConfineFace(parent).ok()) ::_exit(100);
    ::_exit(body(pipe_fds[1]));
  }
  ::close(pipe_fds[1]);
  *from_child = pipe_fds[0];
  return child;
}

// Runs `check` confined; returns its exit code, the number of the first failed expectation
// (0: all held), with what it wrote in *report.
int RunConfined(int (*check)(int out), std::string* report) {
  int from_child = -1;
  const pid_t child = SpawnConfined(check, &from_child);
  if (child < 0) return -1;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(from_child, buf, sizeof(buf))) > 0) report->append(buf, n);
  ::close(from_child);
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

// The calls a face never needs fail with EPERM (the capability sets are read from outside,
// by the next test, since the confined child cannot open /proc/self/status).
int CapsAndCallsAfterConfinement(int out) {
  auto denied = [](long rc) { return rc < 0 && errno == EPERM; };
  if (!denied(::open("/etc/hostname", O_RDONLY))) return 1;
  if (!denied(::socket(AF_INET, SOCK_STREAM, 0))) return 2;
  if (!denied(::kill(::getppid(), 0))) return 3;
  if (::kill(::getpid(), 0) != 0) return 4;  // its own pid: allowed (abort() needs it)
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  if (!denied(::execv("/bin/true", argv))) return 5;
  if (!denied(::fork())) return 6;
  const char ok[] = "calls-denied";
  return ::write(out, ok, sizeof(ok) - 1) == sizeof(ok) - 1 ? 0 : 7;
}

TEST(ConfineFace, DeniesOpenSocketExecForkAndSignalsToOthers) {
  std::string report;
  EXPECT_EQ(RunConfined(CapsAndCallsAfterConfinement, &report), 0)
      << "1 open, 2 socket, 3 kill(parent), 4 kill(self), 5 execv, 6 fork, 7 write, "
         "100 ConfineFace failed";
  EXPECT_EQ(report, "calls-denied");
}

int PauseUntilKilled(int out) {
  const char ready = 'r';
  if (::write(out, &ready, 1) != 1) return 1;
  for (;;) ::pause();
}

TEST(ConfineFace, LeavesNoCapabilityAndSetsNoNewPrivsAndSeccomp) {
  int from_child = -1;
  const pid_t child = SpawnConfined(PauseUntilKilled, &from_child);
  ASSERT_GT(child, 0);
  char ready = 0;
  ASSERT_EQ(::read(from_child, &ready, 1), 1) << "the confined child did not start";
  ::close(from_child);
  auto fields = testing::ProcStatus(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_EQ(fields[set], "0000000000000000") << set;
  }
  EXPECT_EQ(fields["NoNewPrivs"], "1");
  EXPECT_EQ(fields["Seccomp"], "2");  // filter mode
  std::printf("confined child: CapEff %s, NoNewPrivs %s, Seccomp %s (this test: CapEff %s)\n",
              fields["CapEff"].c_str(), fields["NoNewPrivs"].c_str(), fields["Seccomp"].c_str(),
              testing::ProcStatus(::getpid())["CapEff"].c_str());
}

TEST(FaceFrames, CarryBytesAndFramesExactlyAndRefuseOversizedOnes) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd a(pair[0]), b(pair[1]);
  ASSERT_TRUE(SendByte(a.get(), kScrapeText, milliseconds(1000)).ok());
  auto byte = ReceiveByte(b.get(), milliseconds(1000));
  ASSERT_TRUE(byte.ok());
  EXPECT_EQ(*byte, kScrapeText);
  std::string big(300000, 'x');
  big[12345] = '\0';
  std::thread writer([&] { EXPECT_TRUE(SendFrame(b.get(), big, milliseconds(5000)).ok()); });
  auto frame = ReceiveFrame(a.get(), milliseconds(5000));
  writer.join();
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(*frame, big);
  // A header announcing more than the limit is refused before anything is allocated.
  const unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(::write(b.get(), huge, 4), 4);
  auto refused = ReceiveFrame(a.get(), milliseconds(1000));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("over the limit"), std::string::npos);
  // Nothing arriving: a timeout, not a hang; the other side closing: kNotFound.
  EXPECT_FALSE(ReceiveByte(a.get(), milliseconds(50)).ok());
  b.reset();
  auto closed = ReceiveByte(a.get(), milliseconds(1000));
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().kind, ErrorKind::kNotFound);
}

TEST(ApiCalls, RoundTripAndRefuseAnythingButOneWellFormedCall) {
  ApiCall call;
  call.method = ApiMethod::kSetMode;
  call.policy = "wx_memory";
  call.mode_or_action = "audit";
  call.target = "cloudflared.service";
  auto back = DecodeCall(EncodeCall(call));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->method, ApiMethod::kSetMode);
  EXPECT_EQ(back->policy, "wx_memory");
  EXPECT_EQ(back->mode_or_action, "audit");
  EXPECT_EQ(back->target, "cloudflared.service");
  EXPECT_FALSE(back->include_histogram);
  call.method = ApiMethod::kStats;
  call.include_histogram = true;
  ASSERT_TRUE(DecodeCall(EncodeCall(call)).ok());
  EXPECT_TRUE(DecodeCall(EncodeCall(call))->include_histogram);

  const std::string good = EncodeCall(call);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeCall(good.substr(0, cut)).ok()) << "truncated at " << cut;
  }
  EXPECT_FALSE(DecodeCall(good + "x").ok()) << "trailing bytes";
  std::string unknown = good;
  unknown[0] = 'Z';
  EXPECT_FALSE(DecodeCall(unknown).ok());
  std::string flag = good;
  flag[1] = 2;
  EXPECT_FALSE(DecodeCall(flag).ok());
  // A string longer than any name: not a call (and nothing past the limit is read).
  std::string long_string = std::string(1, 'S') + '\0' + "\xff\xff";
  long_string += std::string(70000, 'a');
  const auto refused = DecodeCall(long_string);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("API face sent a malformed call"), std::string::npos);

  ApiReply reply{5, "no such policy", ""};
  auto r = DecodeReply(EncodeReply(reply));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, 5);
  EXPECT_EQ(r->message, "no such policy");
  reply = {0, "", std::string("\0\1payload", 9)};
  r = DecodeReply(EncodeReply(reply));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->payload, reply.payload);
  EXPECT_FALSE(DecodeReply("").ok());
  EXPECT_FALSE(DecodeReply(std::string("\x63\0\0\0\0", 5)).ok()) << "code 99";
}

TEST(ApiCalls, DescriptorsTravelOneAtATimeWithTheirId) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd a(pair[0]), b(pair[1]);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
  ASSERT_TRUE(SendDescriptor(a.get(), 0x1122334455667788ull, w.get(), milliseconds(1000)).ok());
  auto got = ReceiveDescriptor(b.get(), milliseconds(1000));
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, 0x1122334455667788ull);
  ASSERT_EQ(::write(got->fd.get(), "x", 1), 1) << "the received descriptor is the pipe's end";
  char c = 0;
  ASSERT_EQ(::read(r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
  // A message without a descriptor, or with two, is not one: refused, descriptors closed.
  ASSERT_EQ(::send(a.get(), "12345678", 8, 0), 8);
  EXPECT_EQ(ReceiveDescriptor(b.get(), milliseconds(1000)).error().kind,
            ErrorKind::kInvalidArgument);
  int two[2] = {r.get(), w.get()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(two))] = {};
  char data[8] = {};
  iovec iov{data, sizeof(data)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(two));
  std::memcpy(CMSG_DATA(cm), two, sizeof(two));
  ASSERT_EQ(::sendmsg(a.get(), &msg, 0), 8);
  EXPECT_EQ(ReceiveDescriptor(b.get(), milliseconds(1000)).error().kind,
            ErrorKind::kInvalidArgument);
  a.reset();
  EXPECT_EQ(ReceiveDescriptor(b.get(), milliseconds(1000)).error().kind, ErrorKind::kNotFound);
}

}  // namespace
}  // namespace tg::face
