// The /metrics endpoint: prometheus-cpp's Exposer (civetweb) serving Collectables that read
// their numbers at scrape time. Default port 9612 — listed "FREE" in Prometheus's published
// default port allocations (the exporters' range 9100–9999 is otherwise allocated), and clear
// of cloudflared's 20241–20245.
#ifndef TUNNELGUARD_EXPORTER_METRICS_SERVER_H_
#define TUNNELGUARD_EXPORTER_METRICS_SERVER_H_

#include <prometheus/collectable.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/base/result.h"

namespace prometheus {
class Exposer;
}

namespace tg::exporter {

inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:9612";

class MetricsServer {
 public:
  // Listens on "ADDR:PORT" ("[::1]:9612" for IPv6; port 0 picks a free one). A busy or
  // malformed address is an error that names it and the flag to change it.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen);
  ~MetricsServer();

  // The collectable must outlive its registration or be removed first; the server keeps a
  // weak reference, as prometheus-cpp does.
  void Register(const std::shared_ptr<prometheus::Collectable>& collectable);

  int port() const { return port_; }
  std::string url() const;  // http://ADDR:PORT/metrics

 private:
  MetricsServer() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string host_;
  int port_ = 0;
};

// Splits "ADDR:PORT" / "[V6]:PORT"; errors name the value and the expected form.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_METRICS_SERVER_H_
