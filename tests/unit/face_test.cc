// The confined face's two promises, checked in a child process of the test: after
// ConfineFace() it holds no capability and its system calls are the allow-list's only; and the
// frames between face and agent carry exactly what was sent, refusing what is over the limit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "agent/base/unique_fd.h"
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

}  // namespace
}  // namespace tg::face
