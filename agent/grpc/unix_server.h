// The API's unix socket, with peers known by their kernel credentials.
//
// The agent accepts on its own socket and reads each connection's SO_PEERCRED before a
// connection is handed to gRPC (AddInsecureChannelFromFd). gRPC names such a peer "fd:<N>",
// so a handler can look up who is calling (PeerRegistry::Lookup). The socket file is 0660,
// owned by root and, where the group exists, by group `tunnelguard`: the kernel refuses
// everyone else at connect().
#ifndef TUNNELGUARD_AGENT_GRPC_UNIX_SERVER_H_
#define TUNNELGUARD_AGENT_GRPC_UNIX_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/api/agent_api.h"
#include "agent/api/defaults.h"
#include "agent/base/result.h"
#include "agent/base/unique_fd.h"

namespace tg::grpcapi {

// Connection fd -> the kernel's credentials of its peer, filled at accept().
class PeerRegistry {
 public:
  void Register(int fd, const daemon::Caller& caller);
  // The caller of a request, from gRPC's "fd:<N>" peer name.
  std::optional<daemon::Caller> Lookup(const grpc::ServerContext& context) const;

 private:
  mutable std::mutex mu_;
  std::map<int, daemon::Caller> peers_;  // an fd number is reused only after its close
};

// Limits that keep one client from costing the agent unbounded memory or threads.
inline constexpr int kMaxMessageBytes = 1 << 20;
inline constexpr int kMaxServerThreads = 16;
// Each event stream holds a server thread for as long as it is open (the synchronous API), so
// streams get at most half the threads: status, stats and mode calls always find one free.
// Without this, 16 `tunnelctl events --follow` made every other call fail with "Server
// Threadpool Exhausted" (tests/e2e/reliability_test.cc).
inline constexpr int kMaxEventStreams = kMaxServerThreads / 2;

// Creates the API socket (and its directory), born 0660, given to group `tunnelguard` where
// it exists, listening, non-blocking. A live agent already on the path is an error; a stale
// socket file is replaced. The agent accepts on it and reads each peer's SO_PEERCRED; the
// confined API face (agent/face/api_face.h) speaks gRPC on the connections.
Result<UniqueFd> ListenApiSocket(const std::string& path);

}  // namespace tg::grpcapi

#endif  // TUNNELGUARD_AGENT_GRPC_UNIX_SERVER_H_
