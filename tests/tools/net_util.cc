#include "net_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace tg::tools {

std::optional<Endpoint> MakeEndpoint(const std::string& host, int port) {
  Endpoint e;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&e.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    e.len = sizeof(sockaddr_in);
    e.family = AF_INET;
    return e;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    e.len = sizeof(sockaddr_in6);
    e.family = AF_INET6;
    return e;
  }
  return std::nullopt;
}

std::optional<Endpoint> MakeUnixEndpoint(const std::string& path) {
  Endpoint e;
  auto* un = reinterpret_cast<sockaddr_un*>(&e.addr);
  if (path.size() >= sizeof(un->sun_path)) return std::nullopt;
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
  e.len = sizeof(sockaddr_un);
  e.family = AF_UNIX;
  return e;
}

bool JoinCgroup(const std::string& dir) {
  const int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const std::string pid = std::to_string(::getpid());
  const bool ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
  const int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

std::optional<int64_t> ParseDuration(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || v < 0) return std::nullopt;
  const std::string unit(end);
  double scale = 1e9;
  if (unit == "ns") {
    scale = 1;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "s" || unit.empty()) {
    scale = 1e9;
  } else {
    return std::nullopt;
  }
  return static_cast<int64_t>(std::llround(v * scale));
}

double QuantileOfSorted(const std::vector<int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return 0.0;
  const auto n = static_cast<double>(sorted_ns.size());
  auto rank = static_cast<size_t>(std::ceil(q * n));
  if (rank < 1) rank = 1;
  if (rank > sorted_ns.size()) rank = sorted_ns.size();
  return static_cast<double>(sorted_ns[rank - 1]) * 1e-9;
}

bool WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace tg::tools
