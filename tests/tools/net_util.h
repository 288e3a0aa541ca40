// Small socket helpers shared by the test client and the delay server (not part of the agent).
#ifndef TUNNELGUARD_TESTS_TOOLS_NET_UTIL_H_
#define TUNNELGUARD_TESTS_TOOLS_NET_UTIL_H_

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tg::tools {

// A numeric IPv4/IPv6 address and port as a sockaddr.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = 0;
};
std::optional<Endpoint> MakeEndpoint(const std::string& host, int port);
// A unix stream socket's path as a sockaddr (nullopt when it is too long).
std::optional<Endpoint> MakeUnixEndpoint(const std::string& path);

// Moves the calling process into the cgroup directory `dir`; false (errno set) when refused.
bool JoinCgroup(const std::string& dir);

// "10ms", "250us", "1.5s", "3" (seconds) -> nanoseconds.
std::optional<int64_t> ParseDuration(const std::string& text);

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Nearest-rank quantile of sorted samples (the same definition tunnelguard uses).
double QuantileOfSorted(const std::vector<int64_t>& sorted_ns, double q);

// Writes all of `data`; false on error.
bool WriteAll(int fd, const char* data, size_t len);

}  // namespace tg::tools

#endif  // TUNNELGUARD_TESTS_TOOLS_NET_UTIL_H_
