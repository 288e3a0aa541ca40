#include "tunnelctl/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/base/unique_fd.h"

namespace tg::ctl {

std::variant<Client, CtlError> Client::Connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return CtlError{kExitUsage, "socket path too long: " + socket_path};
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ECONNREFUSED) {
      return CtlError{kExitNotRunning,
                      "the tunnelguard agent is not running (nothing listens on " + socket_path +
                          "); start it with 'systemctl start tunnelguard' or 'tunnelguard run'"};
    }
    if (e == EACCES || e == EPERM) {
      return CtlError{kExitPermission,
                      "permission denied on " + socket_path +
                          ": join the 'tunnelguard' group (usermod -aG tunnelguard $USER, then "
                          "log in again) or run as root"};
    }
    return CtlError{kExitFailure, "cannot connect to " + socket_path + ": " + std::strerror(e)};
  }
  Client c(socket_path);
  c.stub_ = tunnelguard::v1::Agent::NewStub(
      grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()));
  return c;
}

CtlError Client::Explain(const grpc::Status& status, const std::string& call) const {
  switch (status.error_code()) {
    case grpc::StatusCode::UNIMPLEMENTED:
      return {kExitVersionSkew, call + ": the agent does not know this call (version skew: " +
                                    "tunnelctl and tunnelguard differ; install matching versions)"};
    case grpc::StatusCode::PERMISSION_DENIED:
      return {kExitPermission, call + ": " + status.error_message()};
    case grpc::StatusCode::UNAVAILABLE:
      return {kExitNotRunning,
              call + ": the agent on " + path_ + " stopped answering: " + status.error_message()};
    case grpc::StatusCode::INVALID_ARGUMENT:
      return {kExitUsage, call + ": " + status.error_message()};
    default:
      return {kExitFailure, call + ": " + status.error_message()};
  }
}

}  // namespace tg::ctl
