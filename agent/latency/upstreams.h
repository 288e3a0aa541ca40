// Upstreams: the named TCP endpoints (Traefik's entry points) whose traffic latency measures.
// "web=127.0.0.1:80,websecure=127.0.0.1:443": a name may repeat to give it more addresses.
#ifndef TUNNELGUARD_AGENT_UPSTREAMS_H_
#define TUNNELGUARD_AGENT_UPSTREAMS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/base/result.h"

namespace tg {

// Traefik's conventional entry points, on IPv4 and IPv6 loopback.
inline constexpr std::string_view kDefaultUpstreams =
    "web=127.0.0.1:80,web=[::1]:80,websecure=127.0.0.1:443,websecure=[::1]:443";

struct UpstreamAddress {
  int family = 0;                  // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};  // network byte order; IPv4 in the first 4 bytes
  uint16_t port = 0;               // host byte order
  std::string text;                // "127.0.0.1:80", "[::1]:80"
};

struct Upstream {
  std::string name;
  std::vector<UpstreamAddress> addresses;
};

// Parses a comma-separated `name=addr:port` list. Errors name the offending item and say what
// a correct one looks like. Names are [A-Za-z0-9_.-]+ (they become metric label values).
Result<std::vector<Upstream>> ParseUpstreams(std::string_view list);

// "127.0.0.1:80,[::1]:80"
std::string JoinAddresses(const Upstream& upstream);

// One upstream per address, each with its name, in order (what latency measures apart).
std::vector<Upstream> PerAddress(const std::vector<Upstream>& upstreams);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_UPSTREAMS_H_
