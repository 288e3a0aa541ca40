#include "exporter/metrics_server.h"

#include <arpa/inet.h>
#include <prometheus/exposer.h>

#include <exception>

namespace tg::exporter {

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& listen) {
  auto bad = [&listen](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad metrics address '" + listen + "': " + why +
                         "; use ADDR:PORT, e.g. 127.0.0.1:9612 or [::1]:9612");
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) return bad("no port");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) {
    return bad("the port is not a number");
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return bad("the port is above 65535");
  unsigned char buf[sizeof(struct in6_addr)];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1) {
      return bad("not an IPv6 address");
    }
  } else if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
    return bad("not an IPv4 address (write IPv6 as [ADDR])");
  }
  return std::make_pair(host, port);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen) {
  auto addr = ParseListenAddress(listen);
  if (!addr.ok()) return addr.error();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->host_ = addr->first;
  try {
    // One worker thread: scrapes are rare and each one reads the BPF maps directly.
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "cannot listen on " + listen + " (" + e.what() +
                         "; is the port in use?); choose another with --metrics-listen");
  }
  const auto ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? addr->second : ports.front();
  return server;
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::Register(const std::shared_ptr<prometheus::Collectable>& collectable) {
  exposer_->RegisterCollectable(collectable);
}

std::string MetricsServer::url() const {
  return "http://" + host_ + ":" + std::to_string(port_) + "/metrics";
}

}  // namespace tg::exporter
