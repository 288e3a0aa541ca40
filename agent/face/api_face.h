// The gRPC API from a confined process. The agent creates the socket (0660, group tunnelguard),
// accepts each connection and reads its peer's credentials (SO_PEERCRED), then hands the
// connection to the face, `tunnelguard __face api AGENT_PID`, which alone speaks HTTP/2 and
// parses protobuf, with no capability, no descriptor but its control channel and the
// connections it is handed, and a seccomp allow-list. For each call the face asks the agent in
// the fixed form of api_calls.h, naming the connection the call came on; the agent answers
// from its own record of who is on that connection, so SetMode's "root only" is checked on the
// kernel's word. A face that exits, stalls or sends a malformed control message is replaced
// (its clients see their connection close); a malformed call is refused and logged; a face
// that fails to start is retried (1 s to 30 s), while the agent goes on enforcing.
//
// What a face taken over by its input could still do: make the calls any client could, and
// attribute a call to another client connection that is open at that moment (so a SetMode
// while root's `tunnelctl mode` is connected). It cannot open files, sockets or processes, and
// reads no BPF object.
#ifndef TUNNELGUARD_AGENT_FACE_API_FACE_H_
#define TUNNELGUARD_AGENT_FACE_API_FACE_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/api/agent_api.h"
#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/face/face_process.h"
#include "agent/grpc/service.h"

namespace tg::face {

class ApiFace {
 public:
  // Creates the socket (ListenApiSocket's errors: a live agent on it, a path that cannot be
  // made), starts the face and serves calls with `service` until destroyed.
  static Result<std::unique_ptr<ApiFace>> Start(const std::string& path,
                                                grpcapi::AgentService* service);
  ~ApiFace();
  ApiFace(const ApiFace&) = delete;
  ApiFace& operator=(const ApiFace&) = delete;

  pid_t pid() const;  // the face's current process

 private:
  // A client connection handed to the current face: our copy tells when the client has gone.
  struct Client {
    UniqueFd fd;
    daemon::Caller caller;
  };

  ApiFace() = default;
  Status SpawnFace();
  void Host();      // accepts, takes calls, replaces a failed face
  void Accept();    // each pending connection: its credentials, to the face
  bool TakeCall();  // false when the face is to be replaced
  void Serve(std::optional<daemon::Caller> caller, UniqueFd call);  // one call, own thread
  void Replace(const std::string& why);  // ends the current face and its clients (logged)
  void ForgetGoneClients();              // guarded by mu_

  std::string path_;
  grpcapi::AgentService* service_ = nullptr;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd: the destructor wakes Host() and the calls
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;  // guards face_, control_, clients_
  FaceProcess face_;
  UniqueFd control_;  // SOCK_SEQPACKET with the current face
  std::map<uint64_t, Client> clients_;
  uint64_t next_client_ = 1;
  std::chrono::milliseconds retry_delay_{0};
  std::mutex calls_mu_;
  std::condition_variable calls_done_;
  int calls_ = 0;  // calls being served (each on its own thread); guarded by calls_mu_
  std::thread host_;
};

// `tunnelguard __face api AGENT_PID`: fd 3 is the control channel to the agent.
int ApiFaceMain(pid_t agent);

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_API_FACE_H_
