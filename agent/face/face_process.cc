#include "agent/face/face_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "agent/base/unique_fd.h"
#include "agent/face/frames.h"

namespace tg::face {
namespace {

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

// posix_spawn's file actions and attributes, released on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

Result<FaceProcess> FaceProcess::Spawn(const std::string& role, const std::vector<int>& fds) {
  // Copies above every target number first, so placing one never overwrites another's source
  // (dup2 onto itself would also keep close-on-exec set).
  std::vector<UniqueFd> high;
  for (int fd : fds) {
    high.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, kFirstHandedFd + 64));
    if (!high.back().valid()) return FromErrno(errno, "face: duplicating a descriptor");
  }
  SpawnSetup setup;
  for (size_t i = 0; i < high.size(); ++i) {
    posix_spawn_file_actions_adddup2(&setup.actions, high[i].get(),
                                     kFirstHandedFd + static_cast<int>(i));
  }
  // Nothing of the terminal: stdin and stdout are /dev/null; stderr stays the agent's (the
  // journal), where the face's own error lines go.
  posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
  // A stop signal to the whole group or cgroup (Ctrl-C, systemctl stop) is the agent's to
  // handle: the face stays blocked against it and ends with the agent (its channel closes,
  // and PDEATHSIG). Every other signal has its default action.
  sigset_t stops, defaults;
  sigemptyset(&stops);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stops, sig);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&setup.attr, &stops);
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  const std::string agent = std::to_string(::getpid());
  std::string arg0 = "tunnelguard", command = kFaceCommand, role_arg = role;
  std::string agent_arg = agent;
  char* argv[] = {arg0.data(), command.data(), role_arg.data(), agent_arg.data(), nullptr};
  // Only what the face's logging reads (JOURNAL_STREAM: journald's priority prefixes).
  std::vector<std::string> env_strings;
  if (const char* journal = ::getenv("JOURNAL_STREAM")) {
    env_strings.push_back(std::string("JOURNAL_STREAM=") + journal);
  }
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  if (int rc = ::posix_spawn(&pid, "/proc/self/exe", &setup.actions, &setup.attr, argv, env.data());
      rc != 0) {
    return FromErrno(rc, "starting the " + role + " face (posix_spawn /proc/self/exe)");
  }
  return FaceProcess(pid);
}

FaceProcess::FaceProcess(FaceProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

FaceProcess& FaceProcess::operator=(FaceProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

std::string FaceProcess::Kill() {
  if (pid_ <= 0) return "not running";
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return DescribeWait(status);
}

Result<StartedFace> StartFace(const std::string& role, int type, std::vector<int> fds,
                              std::chrono::milliseconds timeout, int stop_fd) {
  int pair[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair) != 0) {
    return FromErrno(errno, "socketpair for the " + role + " face");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  fds.push_back(theirs.get());
  auto process = FaceProcess::Spawn(role, fds);
  if (!process.ok()) return process.error();
  theirs.reset();  // the face's end lives in the face only: its exit is our EOF
  auto ready = ReceiveByte(ours.get(), timeout, stop_fd);
  if (!ready.ok() || *ready != kReady) {
    const std::string how = process->Kill();
    return MakeError(ErrorKind::kInternal,
                     "the " + role + " face did not start (" + how + "; its own message is above)");
  }
  return StartedFace{std::move(*process), std::move(ours)};
}

std::chrono::milliseconds NextRetry(std::chrono::milliseconds previous) {
  return std::min(std::chrono::milliseconds(30000), std::max(kFirstRetry, previous * 2));
}

}  // namespace tg::face
