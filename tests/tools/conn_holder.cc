// tg-conn-holder: opens many keep-alive HTTP/1.1 connections at once and holds them open while
// trickling requests over them round-robin — a tunnel with a large idle pool, for the
// footprint benchmark (bench/run.sh section 2). One thread, epoll, non-blocking sockets.
//
//   tg-conn-holder --port P [--host 127.0.0.1|::1] [--cgroup DIR] [--path /]
//                  --connections N [--rate R] [--duration S] [--ready-file F]
// It raises its own RLIMIT_NOFILE to fit N, moves itself into --cgroup before opening any
// socket, opens the N connections (at most 512 connects in flight), writes "N\n" to
// --ready-file (the number open) once they are all established or failed, then sends R
// requests per second in total (one at a time per connection) for S seconds, and prints:
//   {"connections_requested":N,"connections_open":k,"connect_failures":f,"requests":n,
//    "closed_by_peer":c,"open_at_end":m}
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "net_util.h"
#include "tool_flags.h"

namespace {

using tg::tools::NowNs;

struct Conn {
  int fd = -1;
  enum State { kConnecting, kIdle, kWaiting, kDead } state = kConnecting;
  std::string buf;
};

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  std::string cgroup;
  std::string ready_file;
  int connections = 0;
  double rate = 0;
  int64_t duration_ns = 1000000000;
};

// True once `buf` holds a whole response (headers + Content-Length bytes of body).
bool ResponseComplete(const std::string& buf) {
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string headers = buf.substr(0, end);
  std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
  size_t length = 0;
  const auto cl = headers.find("content-length:");
  if (cl != std::string::npos) length = std::stoul(headers.substr(cl + 15));
  return buf.size() >= end + 4 + length;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app("Opens many keep-alive HTTP connections and holds them open.", "tg-conn-holder");
  tg::tools::ConfigureApp(app);
  tg::tools::AddClientFlags(app, cfg);
  app.add_option("--ready-file", cfg.ready_file, "gets the number open once all are connected");
  app.add_option("--connections", cfg.connections, "connections to hold (required, at least 1)");
  app.add_option("--rate", cfg.rate, "requests per second in all");
  tg::tools::AddDuration(app, "--duration", cfg.duration_ns, "how long to hold them");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  if (cfg.port <= 0 || cfg.connections <= 0)
    return tg::tools::UsageError(app, "--port and --connections are required");
  const auto ep = tg::tools::MakeEndpoint(cfg.host, cfg.port);
  if (!ep) return tg::tools::UsageError(app, "--host must be a numeric address");
  ::signal(SIGPIPE, SIG_IGN);

  const rlim_t want = static_cast<rlim_t>(cfg.connections) + 64;
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < want) {
    lim.rlim_cur = want;
    lim.rlim_max = std::max(lim.rlim_max, want);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      std::fprintf(stderr, "tg-conn-holder: cannot raise RLIMIT_NOFILE to %lu: %s\n",
                   static_cast<unsigned long>(want), std::strerror(errno));
      return 1;
    }
  }
  if (!cfg.cgroup.empty()) {
    std::ofstream procs(cfg.cgroup + "/cgroup.procs");
    procs << ::getpid() << std::flush;
    if (!procs) {
      std::fprintf(stderr, "tg-conn-holder: cannot join cgroup %s: %s\n", cfg.cgroup.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }

  const int ep_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep_fd < 0) return 1;
  std::vector<Conn> conns(static_cast<size_t>(cfg.connections));
  long failures = 0, requests = 0, closed_by_peer = 0;
  int in_flight = 0, open = 0;
  size_t next_to_open = 0;
  constexpr int kMaxConnecting = 512;
  std::vector<epoll_event> events(1024);
  auto kill_conn = [&](size_t i) {
    ::epoll_ctl(ep_fd, EPOLL_CTL_DEL, conns[i].fd, nullptr);
    ::close(conns[i].fd);
    conns[i].fd = -1;
    conns[i].state = Conn::kDead;
  };

  // Phase 1: open them all.
  while (next_to_open < conns.size() || in_flight > 0) {
    while (in_flight < kMaxConnecting && next_to_open < conns.size()) {
      const size_t i = next_to_open++;
      const int fd = ::socket(ep->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        ++failures;
        conns[i].state = Conn::kDead;
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      conns[i].fd = fd;
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep->addr), ep->len) == 0) {
        conns[i].state = Conn::kIdle;
        ++open;
      } else if (errno == EINPROGRESS) {
        ++in_flight;
      } else {
        ++failures;
        kill_conn(i);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT | EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev);
    }
    const int n = ::epoll_wait(ep_fd, events.data(), static_cast<int>(events.size()), 1000);
    for (int k = 0; k < n; ++k) {
      const size_t i = events[k].data.u64;
      if (conns[i].state != Conn::kConnecting) continue;
      --in_flight;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++failures;
        kill_conn(i);
        continue;
      }
      conns[i].state = Conn::kIdle;
      ++open;
      epoll_event ev{};
      ev.events = EPOLLIN;  // from now on: responses (and the peer closing)
      ev.data.u64 = i;
      ::epoll_ctl(ep_fd, EPOLL_CTL_MOD, conns[i].fd, &ev);
    }
  }
  const int opened = open;
  std::fprintf(stderr, "tg-conn-holder: %d of %d connections open (%ld failed)\n", open,
               cfg.connections, failures);
  if (!cfg.ready_file.empty()) {
    std::ofstream(cfg.ready_file + ".tmp") << open << "\n";
    std::rename((cfg.ready_file + ".tmp").c_str(), cfg.ready_file.c_str());
  }

  // Phase 2: hold them, one request at a time per connection, round-robin at `rate`.
  const std::string request = "GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.host +
                              "\r\nUser-Agent: tg-conn-holder\r\n\r\n";
  const int64_t start = NowNs(), deadline = start + cfg.duration_ns;
  const int64_t interval = cfg.rate > 0 ? static_cast<int64_t>(1e9 / cfg.rate) : 0;
  int64_t next_send = start;
  size_t cursor = 0;
  char chunk[4096];
  while (NowNs() < deadline) {
    if (interval > 0) {
      while (next_send <= NowNs()) {
        next_send += interval;
        for (size_t tries = 0; tries < conns.size(); ++tries) {
          Conn& c = conns[cursor];
          const size_t i = cursor;
          cursor = (cursor + 1) % conns.size();
          if (c.state != Conn::kIdle) continue;
          c.buf.clear();
          if (::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(request.size())) {
            ++closed_by_peer;
            kill_conn(i);
            --open;
            continue;
          }
          c.state = Conn::kWaiting;
          break;
        }
      }
    }
    const int64_t now = NowNs();
    int64_t wait_ns = std::min(deadline - now, interval > 0 ? next_send - now : deadline - now);
    const int timeout_ms = static_cast<int>(std::max<int64_t>(0, wait_ns / 1000000));
    const int n = ::epoll_wait(ep_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int k = 0; k < n; ++k) {
      const size_t i = events[k].data.u64;
      Conn& c = conns[i];
      if (c.state == Conn::kDead) continue;
      const ssize_t got = ::recv(c.fd, chunk, sizeof(chunk), 0);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        ++closed_by_peer;
        kill_conn(i);
        --open;
        continue;
      }
      c.buf.append(chunk, static_cast<size_t>(got));
      if (c.state == Conn::kWaiting && ResponseComplete(c.buf)) {
        c.state = Conn::kIdle;
        ++requests;
      }
    }
  }
  std::printf(
      "{\"connections_requested\":%d,\"connections_open\":%d,\"connect_failures\":%ld,"
      "\"requests\":%ld,\"closed_by_peer\":%ld,\"open_at_end\":%d}\n",
      cfg.connections, opened, failures, requests, closed_by_peer, open);
  std::fflush(stdout);
  for (Conn& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  return 0;
}
