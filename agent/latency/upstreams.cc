#include "agent/latency/upstreams.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

#include "bpf/latency.h"

namespace tg {
namespace {

constexpr std::string_view kExample =
    "expected name=addr:port[,name=addr:port...], e.g. "
    "--upstream web=127.0.0.1:80,websecure=[::1]:443";

Error Bad(std::string_view item, std::string_view problem) {
  return MakeError(ErrorKind::kInvalidArgument, "--upstream '" + std::string(item) +
                                                    "': " + std::string(problem) + " (" +
                                                    std::string(kExample) + ")");
}

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<UpstreamAddress> ParseAddress(std::string_view item, std::string_view endpoint) {
  std::string_view host, port;
  if (!endpoint.empty() && endpoint.front() == '[') {
    const auto close = endpoint.find(']');
    if (close == std::string_view::npos) return Bad(item, "missing ']' after the IPv6 address");
    host = endpoint.substr(1, close - 1);
    const std::string_view rest = endpoint.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Bad(item, "missing ':port' after ']'");
    port = rest.substr(1);
  } else {
    const auto colon = endpoint.rfind(':');
    if (colon == std::string_view::npos) return Bad(item, "missing ':port'");
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Bad(item, "an IPv6 address needs brackets, like [::1]:80");
    }
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return Bad(item, "port '" + std::string(port) + "' is not a number in 1..65535");
  }
  UpstreamAddress a;
  a.port = static_cast<uint16_t>(value);
  const std::string h(host);
  if (::inet_pton(AF_INET, h.c_str(), a.addr.data()) == 1) {
    a.family = AF_INET;
    a.text = h + ":" + std::to_string(value);
  } else if (::inet_pton(AF_INET6, h.c_str(), a.addr.data()) == 1) {
    a.family = AF_INET6;
    a.text = "[" + h + "]:" + std::to_string(value);
  } else {
    return Bad(item, "'" + h + "' is not a numeric IPv4 or IPv6 address (no host names)");
  }
  return a;
}

}  // namespace

Result<std::vector<Upstream>> ParseUpstreams(std::string_view list) {
  std::vector<Upstream> out;
  size_t total = 0;
  size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const std::string_view item = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? list.size() + 1 : comma + 1;
    if (item.empty()) return Bad(list, "empty item");
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return Bad(item, "missing 'name='");
    const std::string_view name = item.substr(0, eq);
    if (!ValidName(name)) return Bad(item, "the name may use only letters, digits, '_', '-', '.'");
    auto addr = ParseAddress(item, item.substr(eq + 1));
    if (!addr.ok()) return addr.error();
    Upstream* up = nullptr;
    for (auto& u : out) {
      if (u.name == name) up = &u;
    }
    for (const auto& u : out) {
      for (const auto& a : u.addresses) {
        if (a.family == addr->family && a.addr == addr->addr && a.port == addr->port) {
          return Bad(item, "address " + a.text + " is already listed for '" + u.name + "'");
        }
      }
    }
    if (up == nullptr) {
      if (out.size() == TG_LAT_MAX_UPSTREAMS) {
        return Bad(item, "more than " + std::to_string(TG_LAT_MAX_UPSTREAMS) + " upstream names");
      }
      out.push_back(Upstream{std::string(name), {}});
      up = &out.back();
    }
    if (++total > TG_LAT_MAX_ADDRS) {
      return Bad(item, "more than " + std::to_string(TG_LAT_MAX_ADDRS) + " addresses");
    }
    up->addresses.push_back(std::move(addr.value()));
  }
  return out;
}

std::string JoinAddresses(const Upstream& upstream) {
  std::string s;
  for (const auto& a : upstream.addresses) {
    if (!s.empty()) s += ",";
    s += a.text;
  }
  return s;
}

std::vector<Upstream> PerAddress(const std::vector<Upstream>& upstreams) {
  std::vector<Upstream> out;
  for (const Upstream& u : upstreams) {
    for (const UpstreamAddress& a : u.addresses) out.push_back(Upstream{u.name, {a}});
  }
  return out;
}

}  // namespace tg
