#include "agent/grpc/unix_server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/base/log.h"

namespace tg::grpcapi {
namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "socket path too long (" + std::to_string(path.size()) + " bytes, at most " +
                         std::to_string(sizeof(addr.sun_path) - 1) + "): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// True when something accepts connections on `path` right now.
bool SocketIsLive(const sockaddr_un& addr) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd.valid() &&
         ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

void PeerRegistry::Register(int fd, const daemon::Caller& caller) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_[fd] = caller;
}

std::optional<daemon::Caller> PeerRegistry::Lookup(const grpc::ServerContext& context) const {
  const std::string peer = context.peer();
  if (peer.rfind("fd:", 0) != 0) return std::nullopt;
  int fd = -1;
  try {
    fd = std::stoi(peer.substr(3));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(fd);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

Result<UniqueFd> ListenApiSocket(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.error();
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::create_directories(dir, ec) && ec) {
    return FromErrno(ec.value(), "cannot create the API socket's directory " + dir.string());
  }
  if (SocketIsLive(*addr)) {
    return MakeError(ErrorKind::kInvalidArgument, "another agent is already serving on " + path +
                                                      "; stop it or choose another --grpc-socket");
  }
  ::unlink(path.c_str());  // a stale socket file from a crash

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return FromErrno(errno, "socket");
  // The file is born 0660: no window in which others could connect.
  const mode_t old_umask = ::umask(0117);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) return FromErrno(bind_errno, "cannot create the API socket " + path);
  // Group members may read. Under the shipped unit (Group=tunnelguard) the socket is born
  // with that group; elsewhere we give it away, which needs CAP_CHOWN. Failing that is safe
  // (root only), so it is a warning with the fix, not a reason to stop.
  struct stat st {};
  if (const group* g = ::getgrnam(kSocketGroup);
      g != nullptr && ::stat(path.c_str(), &st) == 0 && st.st_gid != g->gr_gid &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
    log::Warning(
        "cannot give {} to group {} ({}): only root can use tunnelctl; run the agent "
        "with Group={}",
        path, kSocketGroup, std::strerror(errno), kSocketGroup);
  }
  if (::listen(fd.get(), 64) != 0) return FromErrno(errno, "listen on " + path);
  return fd;
}

}  // namespace tg::grpcapi
