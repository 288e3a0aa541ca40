#include "exporter/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>

#include "agent/base/event_fd.h"
#include "agent/base/log.h"

namespace tg::exporter {
namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  UniqueFd fd;
  Clock::time_point accepted;
  Clock::time_point deadline;  // for the request until it is complete, then for the response
  std::string in;
  std::string out;  // empty until the request is complete
  size_t sent = 0;
};

std::string HttpResponse(int code, std::string_view reason, std::string_view content_type,
                         const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (code == 405) r += "Allow: GET\r\n";
  r += "Connection: close\r\n\r\n";
  return r + body;
}

// The value of header `name` (lower case) in a request head; empty when absent.
std::string_view HeaderValue(std::string_view head, std::string_view name) {
  for (size_t line = head.find("\r\n"); line != std::string_view::npos;) {
    const size_t start = line + 2;
    const size_t end = std::min(head.find("\r\n", start), head.size());
    const std::string_view field = head.substr(start, end - start);
    line = end < head.size() ? end : std::string_view::npos;
    const size_t colon = field.find(':');
    if (colon != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < colon && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(field[i])) == name[i];
    }
    if (!same) continue;
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    return value;
  }
  return {};
}

// The answer to a complete request head: /metrics by GET, nothing else.
template <typename ScrapeFn>
std::string Answer(std::string_view head, ScrapeFn&& scrape) {
  const std::string_view line = head.substr(0, head.find("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
    return HttpResponse(400, "Bad Request", "text/plain", "malformed request line\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  if (path != "/metrics") {
    return HttpResponse(404, "Not Found", "text/plain", "not found; the metrics are at /metrics\n");
  }
  if (method != "GET") return HttpResponse(405, "Method Not Allowed", "text/plain", "use GET\n");
  const Exposition format = NegotiateExposition(HeaderValue(head, "accept"));
  const std::optional<std::string> body = scrape(format);
  if (!body) {
    return HttpResponse(503, "Service Unavailable", "text/plain",
                        "the agent did not produce the metrics; see its log\n");
  }
  return HttpResponse(200, "OK", ContentType(format), *body);
}

Result<UniqueFd> Listen(const std::string& host, int port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (!host.empty() && host.front() == '[') {
    family = AF_INET6;
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return FromErrno(errno, "cannot create the metrics socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(fd.get(), 128) != 0) {
    const int err = errno;
    return MakeError(ErrorKind::kInvalidArgument,
                     "cannot listen on " + host + ":" + std::to_string(port) + " (" +
                         std::strerror(err) +
                         "; is the port in use?); choose another with --metrics-listen");
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// The connections of the loop, each with its deadline; the oldest goes first when full.
class Connections {
 public:
  Connections(int epoll_fd, const MetricsServerLimits& limits)
      : epoll_fd_(epoll_fd), limits_(limits) {}

  // Accepts what is pending and reads each new connection at once: a client that sent its
  // request with its connect (Prometheus, curl) is answered before any later connection can
  // push it out.
  template <typename ScrapeFn>
  void Accept(int listen_fd, ScrapeFn&& scrape) {
    for (;;) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if ((errno == EMFILE || errno == ENFILE) && !conns_.empty()) {
          CloseOldest();  // out of descriptors: make room rather than spin
          continue;
        }
        return;  // EAGAIN, or a peer that already left
      }
      if (static_cast<int>(conns_.size()) >= limits_.max_connections) CloseOldest();
      const auto now = Clock::now();
      Connection& c = conns_[fd];
      c.fd.reset(fd);
      c.accepted = now;
      c.deadline = now + limits_.request_deadline;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conns_.erase(fd);
        continue;
      }
      Serve(fd, scrape);
    }
  }

  template <typename ScrapeFn>
  void Serve(int fd, ScrapeFn&& scrape) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Connection& c = it->second;
    if (c.out.empty() && !Read(c, scrape)) {
      conns_.erase(it);
      return;
    }
    if (!c.out.empty() && !Write(c)) conns_.erase(it);
  }

  // Closes every connection past its deadline; returns the time to the next one (-1: none).
  int Expire() {
    const auto now = Clock::now();
    std::erase_if(conns_, [now](const auto& kv) { return kv.second.deadline <= now; });
    auto next = Clock::time_point::max();
    for (const auto& [fd, c] : conns_) next = std::min(next, c.deadline);
    if (next == Clock::time_point::max()) return -1;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
  }

 private:
  // The oldest connection still sending its request goes first (one that is being answered
  // has proved it is a client), else the oldest of all.
  void CloseOldest() {
    auto older = [](const auto& a, const auto& b) {
      const bool a_answered = !a.second.out.empty(), b_answered = !b.second.out.empty();
      if (a_answered != b_answered) return !a_answered;
      return a.second.accepted < b.second.accepted;
    };
    auto oldest = std::min_element(conns_.begin(), conns_.end(), older);
    if (oldest != conns_.end()) conns_.erase(oldest);
  }

  // Reads what has arrived; false when the connection is to be closed. A complete request
  // turns into a response to write.
  template <typename ScrapeFn>
  bool Read(Connection& c, ScrapeFn&& scrape) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c.in.append(buf, static_cast<size_t>(n));
      if (const auto end = c.in.find("\r\n\r\n"); end != std::string::npos) {
        c.out = Answer(std::string_view(c.in).substr(0, end), scrape);
      } else if (c.in.size() > limits_.max_request_bytes) {
        c.out = HttpResponse(
            431, "Request Header Fields Too Large", "text/plain",
            "request head over " + std::to_string(limits_.max_request_bytes) + " bytes\n");
      }
      if (!c.out.empty()) {
        c.deadline = Clock::now() + limits_.response_deadline;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = c.fd.get();
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd.get(), &ev);
        return true;
      }
    }
  }

  // Writes what the socket takes; false when done (or failed): the connection is closed.
  static bool Write(Connection& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n =
          ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c.sent += static_cast<size_t>(n);
    }
    return false;
  }

  int epoll_fd_;
  MetricsServerLimits limits_;
  std::map<int, Connection> conns_;
};

}  // namespace

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

std::string MetricsListener::url() const {
  return "http://" + host + ":" + std::to_string(port) + "/metrics";
}

Result<MetricsListener> ListenMetrics(const std::string& listen) {
  auto addr = ParseListenAddress(listen);
  if (!addr.ok()) return addr.error();
  auto fd = Listen(addr->first, addr->second);
  if (!fd.ok()) return fd.error();
  MetricsListener l;
  l.port = BoundPort(fd->get());
  l.fd = std::move(*fd);
  l.host = addr->first;
  return l;
}

void ServeMetrics(int listen_fd, int stop_fd, const ScrapeFn& scrape,
                  const MetricsServerLimits& limits) {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) {
    log::Error("/metrics: epoll_create1: {}; no more scrapes are served", std::strerror(errno));
    return;
  }
  for (int fd : {listen_fd, stop_fd}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  Connections conns(epoll_fd.get(), limits);
  epoll_event events[64];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd.get(), events, 64, conns.Expire());
    if (n < 0 && errno != EINTR) {
      log::Error("/metrics: epoll_wait: {}; no more scrapes are served", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd) return;
      if (fd == listen_fd) {
        conns.Accept(fd, scrape);
      } else {
        conns.Serve(fd, scrape);
      }
    }
  }
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                            const MetricsServerLimits& limits,
                                                            std::vector<double> classic_bounds) {
  auto listener = ListenMetrics(listen);
  if (!listener.ok()) return listener.error();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->limits_ = limits;
  server->classic_bounds_ = std::move(classic_bounds);
  server->listener_ = std::move(*listener);
  server->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->stop_fd_.valid()) return FromErrno(errno, "eventfd");
  server->thread_ = std::thread([raw = server.get()] {
    ServeMetrics(
        raw->listener_.fd.get(), raw->stop_fd_.get(),
        [raw](Exposition format) { return raw->Scrape(format); }, raw->limits_);
  });
  return server;
}

MetricsServer::~MetricsServer() {
  SignalEventFd(stop_fd_.get());
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> MetricsServer::Scrape(Exposition format) {
  std::vector<std::shared_ptr<prometheus::Collectable>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(collectables_, [](const auto& w) { return w.expired(); });
    for (const auto& w : collectables_) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
  }
  return SerializeCollectables(live, format, classic_bounds_);
}

void MetricsServer::Register(const std::shared_ptr<prometheus::Collectable>& collectable) {
  std::lock_guard<std::mutex> lock(mu_);
  collectables_.push_back(collectable);
}

}  // namespace tg::exporter
