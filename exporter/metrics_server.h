// The /metrics endpoint: a small single-threaded HTTP/1.1 server (epoll) serving Collectables
// that read their numbers at scrape time. Default port 9612 — listed "FREE" in Prometheus's
// published default port allocations (the exporters' range 9100–9999 is otherwise allocated),
// and clear of cloudflared's 20241–20245.
//
// Why not prometheus-cpp's Exposer (civetweb 1.15): civetweb gives each accepted connection a
// worker thread until its request arrives or `request_timeout_ms` passes, and queues the rest
// first in, first out, so N connections that send nothing delay a scrape by N / num_threads
// timeouts whatever the options say (measured: num_threads=4, request_timeout_ms=1000, 100 idle
// or byte-a-second connections: the next scrape took 23.6 s; with the agent's old 1 thread and
// the default 30 s timeout, one idle connection cost 29 s). Here a connection costs a buffer,
// not a thread: every connection has a deadline for its whole request (a trickle does not
// extend it), its whole response, and the oldest connection still sending its request is
// closed when the cap is reached, so a scrape is never queued behind a hostile connection.
#ifndef TUNNELGUARD_EXPORTER_METRICS_SERVER_H_
#define TUNNELGUARD_EXPORTER_METRICS_SERVER_H_

#include <prometheus/collectable.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/latency/histogram.h"
#include "exporter/exposition.h"

namespace tg::exporter {

inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:9612";

// What one client may cost the server.
struct MetricsServerLimits {
  int max_connections = 256;        // beyond it, the oldest connection is closed
  size_t max_request_bytes = 8192;  // the request line and headers (a GET has no body)
  std::chrono::milliseconds request_deadline{2000};    // from accept to the whole request
  std::chrono::milliseconds response_deadline{10000};  // to write the whole response
};

// A metrics scrape: the exposition in the format the request negotiated, produced on demand
// (in this process from its collectables, or by the privileged agent for the confined metrics
// face); nullopt when it failed, answered with 503 rather than an empty page that would read
// as "no series".
using ScrapeFn = std::function<std::optional<std::string>(Exposition)>;

// A listening socket for "ADDR:PORT" ("[::1]:9612" for IPv6; port 0 picks a free one), and the
// port it got. A busy or malformed address is an error naming it and the flag to change it.
struct MetricsListener {
  UniqueFd fd;
  std::string host;
  int port = 0;
  std::string url() const;  // http://ADDR:PORT/metrics
};
Result<MetricsListener> ListenMetrics(const std::string& listen);

// Serves /metrics on `listen_fd` on the calling thread until `stop_fd` (an eventfd; -1: none)
// becomes readable or the loop fails. The metrics face runs this as its whole life.
void ServeMetrics(int listen_fd, int stop_fd, const ScrapeFn& scrape,
                  const MetricsServerLimits& limits = {});

// ServeMetrics on a thread of this process, over the collectables registered with it.
class MetricsServer {
 public:
  // Listens on "ADDR:PORT" ("[::1]:9612" for IPv6; port 0 picks a free one). A busy or
  // malformed address is an error that names it and the flag to change it.
  // Histograms get classic buckets at `classic_bounds` (ExportBoundsSeconds).
  static Result<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, const MetricsServerLimits& limits = {},
      std::vector<double> classic_bounds = ExportBoundsSeconds(0));
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The collectable must outlive its registration or be removed first; the server keeps a
  // weak reference, as prometheus-cpp does.
  void Register(const std::shared_ptr<prometheus::Collectable>& collectable);

  int port() const { return listener_.port; }
  std::string url() const { return listener_.url(); }

 private:
  MetricsServer() = default;
  // The exposition of every registered collectable.
  std::optional<std::string> Scrape(Exposition format);

  MetricsServerLimits limits_;
  std::vector<double> classic_bounds_;
  MetricsListener listener_;
  UniqueFd stop_fd_;  // eventfd that wakes the loop on destruction
  std::mutex mu_;     // guards collectables_ (Register may run while the loop scrapes)
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
  std::thread thread_;
};

// Splits "ADDR:PORT" / "[V6]:PORT"; errors name the value and the expected form.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_METRICS_SERVER_H_
