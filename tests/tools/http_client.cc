// tg-http-client: a keep-alive HTTP/1.1 client that behaves like cloudflared's origin pool and
// measures itself — the ground truth tunnelguard's figures are compared with, and the demo's
// stand-in tunnel.
//
//   tg-http-client --port P [--host 127.0.0.1|::1] [--cgroup DIR] [--path /]
//                  [--requests N] [--connections K]          N requests over K connections
//                  [--duration S] [--rate R]                 or: run S seconds at R req/s total
//                  [--churn N] [--linger0]                   or: N connect+close, no requests
//                  [--churn-request]                         with --churn: one request each
//                  [--syncnt N]                              SYN retries (connect-timeout tests)
//                  [--realtime]                              SCHED_FIFO: timings free of run-queue
//                  waits
// It moves itself into --cgroup (cgroup.procs) before opening any socket. Each request's time
// runs from just before the request is written to the first byte of the response (the same two
// events tunnelguard times in the kernel). Prints one JSON object on stdout:
//   {"requests":n,"connections":k,"connect_failures":{"refused":..,"timeout":..,"other":..},
//    "resets":r,"request_seconds":{"p50":..,"p90":..,"p99":..,"max":..},
//    "connect_seconds":{"p50":..,"p99":..}}
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net_util.h"
#include "tool_flags.h"

namespace {

using tg::tools::NowNs;

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  std::string cgroup;
  long requests = 1;
  int connections = 1;
  int64_t duration_ns = 0;
  double rate = 0;
  long churn = 0;
  bool linger0 = false;
  bool churn_request = false;
  int syncnt = 0;
  bool realtime = false;
};

struct Stats {
  std::mutex mu;
  std::vector<int64_t> request_ns, connect_ns;
  long refused = 0, timeout = 0, other = 0, resets = 0;
};

// Connects; on failure returns -1 and counts the reason.
int Connect(const Config& cfg, const tg::tools::Endpoint& ep, Stats& stats, int64_t* took_ns) {
  const int fd = ::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (cfg.syncnt > 0) ::setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &cfg.syncnt, sizeof(cfg.syncnt));
  const int64_t t0 = NowNs();
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
    const int err = errno;
    ::close(fd);
    std::lock_guard lock(stats.mu);
    if (err == ECONNREFUSED) {
      ++stats.refused;
    } else if (err == ETIMEDOUT) {
      ++stats.timeout;
    } else {
      ++stats.other;
    }
    return -1;
  }
  *took_ns = NowNs() - t0;
  return fd;
}

// One request on a keep-alive connection; returns the time to the first response byte, or -1
// when the connection failed (then it must be closed).
int64_t Request(int fd, const std::string& request, std::string& buf, Stats& stats) {
  const int64_t t0 = NowNs();
  if (!tg::tools::WriteAll(fd, request.data(), request.size())) return -1;
  char chunk[16384];
  int64_t first = -1;
  buf.clear();
  size_t header_end = std::string::npos;
  size_t need = 0;
  while (true) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == ECONNRESET) {
        std::lock_guard lock(stats.mu);
        ++stats.resets;
      }
      return -1;
    }
    if (first < 0) first = NowNs() - t0;
    buf.append(chunk, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      size_t length = 0;
      std::string headers = buf.substr(0, header_end);
      std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
      const auto cl = headers.find("content-length:");
      if (cl != std::string::npos) length = std::stoul(headers.substr(cl + 15));
      need = header_end + 4 + length;
    }
    if (buf.size() >= need) return first;
  }
}

void Worker(const Config& cfg, const tg::tools::Endpoint& ep, long count, int64_t deadline,
            int64_t interval_ns, Stats& stats) {
  const std::string request = "GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.host +
                              "\r\nUser-Agent: tg-http-client\r\n\r\n";
  std::vector<int64_t> mine;
  std::string buf;
  int fd = -1;
  int64_t next = NowNs();
  for (long i = 0; deadline > 0 ? NowNs() < deadline : i < count; ++i) {
    if (interval_ns > 0) {
      const int64_t wait = next - NowNs();
      if (wait > 0) {
        timespec ts{static_cast<time_t>(wait / 1000000000), static_cast<long>(wait % 1000000000)};
        ::nanosleep(&ts, nullptr);
      }
      next += interval_ns;
    }
    if (fd < 0) {
      int64_t took = 0;
      fd = Connect(cfg, ep, stats, &took);
      if (fd < 0) continue;
      std::lock_guard lock(stats.mu);
      stats.connect_ns.push_back(took);
    }
    const int64_t t = Request(fd, request, buf, stats);
    if (t < 0) {
      ::close(fd);
      fd = -1;
      continue;
    }
    mine.push_back(t);
  }
  if (fd >= 0) ::close(fd);
  std::lock_guard lock(stats.mu);
  stats.request_ns.insert(stats.request_ns.end(), mine.begin(), mine.end());
}

void Churn(const Config& cfg, const tg::tools::Endpoint& ep, Stats& stats) {
  const std::string request = "GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.host +
                              "\r\nUser-Agent: tg-http-client\r\n\r\n";
  std::string buf;
  for (long i = 0; i < cfg.churn; ++i) {
    int64_t took = 0;
    const int fd = Connect(cfg, ep, stats, &took);
    if (fd < 0) continue;
    if (cfg.churn_request) {
      // Short connections as a tunnel without keep-alive makes them: one request, the whole
      // response read, then close.
      const int64_t t = Request(fd, request, buf, stats);
      if (t >= 0) stats.request_ns.push_back(t);
    }
    if (cfg.linger0) {
      const linger abort_now{1, 0};  // RST instead of FIN: no TIME_WAIT, no port exhaustion
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof(abort_now));
    }
    ::close(fd);
    stats.connect_ns.push_back(took);
  }
}

std::string Quantiles(std::vector<int64_t>& v, bool full) {
  std::sort(v.begin(), v.end());
  char out[256];
  using tg::tools::QuantileOfSorted;
  if (full) {
    std::snprintf(out, sizeof(out), "{\"p50\":%.9f,\"p90\":%.9f,\"p99\":%.9f,\"max\":%.9f}",
                  QuantileOfSorted(v, 0.5), QuantileOfSorted(v, 0.9), QuantileOfSorted(v, 0.99),
                  QuantileOfSorted(v, 1.0));
  } else {
    std::snprintf(out, sizeof(out), "{\"p50\":%.9f,\"p99\":%.9f}", QuantileOfSorted(v, 0.5),
                  QuantileOfSorted(v, 0.99));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app("Self-timing keep-alive HTTP client; prints a JSON summary.", "tg-http-client");
  tg::tools::ConfigureApp(app);
  tg::tools::AddClientFlags(app, cfg);
  app.add_option("--requests", cfg.requests, "requests in all (split over the connections)");
  app.add_option("--connections", cfg.connections, "keep-alive connections (at least 1)");
  tg::tools::AddDuration(app, "--duration", cfg.duration_ns, "stop after this long");
  app.add_option("--rate", cfg.rate, "requests per second in all (0: as fast as possible)");
  app.add_option("--churn", cfg.churn, "open and close N connections instead");
  app.add_flag("--churn-request", cfg.churn_request, "with --churn: one request per connection");
  app.add_flag("--linger0", cfg.linger0, "close with RST (SO_LINGER 0)");
  app.add_option("--syncnt", cfg.syncnt, "TCP_SYNCNT of each connect");
  app.add_flag("--realtime", cfg.realtime, "run as SCHED_FIFO (needs CAP_SYS_NICE)");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  cfg.connections = std::max(1, cfg.connections);
  if (cfg.port <= 0) return tg::tools::UsageError(app, "--port is required");
  const auto ep = tg::tools::MakeEndpoint(cfg.host, cfg.port);
  if (!ep) return tg::tools::UsageError(app, "--host must be a numeric address");
  ::signal(SIGPIPE, SIG_IGN);
  if (!cfg.cgroup.empty()) {
    std::ofstream procs(cfg.cgroup + "/cgroup.procs");
    procs << ::getpid() << std::flush;
    if (!procs) {
      std::fprintf(stderr, "tg-http-client: cannot join cgroup %s: %s\n", cfg.cgroup.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  if (cfg.realtime) {
    // SCHED_FIFO (inherited by the worker threads): the client wakes as soon as a response
    // arrives even on a busy machine, so its own timings measure the network turnaround and
    // not its scheduler's queue. Needs CAP_SYS_NICE.
    const sched_param param{.sched_priority = 10};
    // Without CAP_SYS_NICE (some containers) it runs on, saying so: its timings then include
    // its own wake-up delays, which only matter on a busy machine.
    if (::sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
      std::fprintf(stderr, "tg-http-client: --realtime unavailable (%s); timing as a normal task\n",
                   std::strerror(errno));
    }
  }
  Stats stats;
  if (cfg.churn > 0) {
    Churn(cfg, *ep, stats);
  } else {
    const int64_t deadline = cfg.duration_ns > 0 ? NowNs() + cfg.duration_ns : 0;
    const int64_t interval =
        cfg.rate > 0 ? static_cast<int64_t>(1e9 * cfg.connections / cfg.rate) : 0;
    std::vector<std::thread> threads;
    for (int k = 0; k < cfg.connections; ++k) {
      const long n = cfg.requests / cfg.connections + (k < cfg.requests % cfg.connections ? 1 : 0);
      threads.emplace_back(Worker, std::cref(cfg), std::cref(*ep), n, deadline, interval,
                           std::ref(stats));
    }
    for (auto& t : threads) t.join();
  }
  std::printf(
      "{\"requests\":%zu,\"connections\":%zu,\"connect_failures\":{\"refused\":%ld,"
      "\"timeout\":%ld,\"other\":%ld},\"resets\":%ld,\"request_seconds\":%s,"
      "\"connect_seconds\":%s}\n",
      stats.request_ns.size(), stats.connect_ns.size(), stats.refused, stats.timeout, stats.other,
      stats.resets, Quantiles(stats.request_ns, true).c_str(),
      Quantiles(stats.connect_ns, false).c_str());
  return 0;
}
