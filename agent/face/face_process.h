// A face is this same binary started again (/proc/self/exe, so it is the agent's own
// version even after an upgrade replaced the file) as `tunnelguard __face ROLE`, with the
// descriptors it is handed at 3, 4, ... and nothing else of the agent's.
#ifndef TUNNELGUARD_AGENT_FACE_FACE_PROCESS_H_
#define TUNNELGUARD_AGENT_FACE_FACE_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"

namespace tg::face {

inline constexpr char kFaceCommand[] = "__face";
inline constexpr int kFirstHandedFd = 3;

class FaceProcess {
 public:
  // posix_spawn (safe in a threaded process): default signal handling, an empty signal mask,
  // `fds` at 3, 4, ... in order.
  static Result<FaceProcess> Spawn(const std::string& role, const std::vector<int>& fds);

  FaceProcess() = default;
  FaceProcess(FaceProcess&& other) noexcept;
  FaceProcess& operator=(FaceProcess&& other) noexcept;
  ~FaceProcess() { Kill(); }

  pid_t pid() const { return pid_; }
  // SIGKILL and reap; returns how it ended ("exited with 1", "killed by signal 9").
  std::string Kill();

 private:
  explicit FaceProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// A face started and ready: its process, and the agent's end of their socketpair of `type`
// (SOCK_STREAM, SOCK_SEQPACKET), whose other end the face gets after `fds`. A face that does
// not say kReady within `timeout` is killed; the error names the role and how it ended.
struct StartedFace {
  FaceProcess process;
  UniqueFd channel;
};
Result<StartedFace> StartFace(const std::string& role, int type, std::vector<int> fds,
                              std::chrono::milliseconds timeout, int stop_fd);

// After a face failed to start: 1 s before the next try, doubling up to 30 s.
inline constexpr std::chrono::milliseconds kFirstRetry{1000};
std::chrono::milliseconds NextRetry(std::chrono::milliseconds previous);

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_FACE_PROCESS_H_
