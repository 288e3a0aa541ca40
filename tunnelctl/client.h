// A tunnelguard.v1 client on the agent's unix socket, with the errors a user can act on:
// agent not running, permission denied (which group to join), version skew.
#ifndef TUNNELGUARD_TUNNELCTL_CLIENT_H_
#define TUNNELGUARD_TUNNELCTL_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "agent/base/result.h"
#include "tunnelguard/v1/agent.grpc.pb.h"

namespace tg::ctl {

// Exit codes of tunnelctl (README): 0 ok, 1 the call failed, 2 usage, 3 agent not running,
// 4 permission denied, 5 version skew.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRunning = 3;
inline constexpr int kExitPermission = 4;
inline constexpr int kExitVersionSkew = 5;

struct CtlError {
  int exit_code = kExitFailure;
  std::string message;
};

class Client {
 public:
  // Checks that the socket accepts us before any RPC, so errors say what is wrong.
  static std::variant<Client, CtlError> Connect(const std::string& socket_path);

  tunnelguard::v1::Agent::Stub& stub() { return *stub_; }
  // Turns a failed RPC into a message and an exit code.
  CtlError Explain(const grpc::Status& status, const std::string& call) const;

 private:
  explicit Client(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::unique_ptr<tunnelguard::v1::Agent::Stub> stub_;
};

}  // namespace tg::ctl

#endif  // TUNNELGUARD_TUNNELCTL_CLIENT_H_
