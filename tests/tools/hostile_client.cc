// tg-hostile-client: holds N connections to a server and makes each one as costly as it can
// without sending a request: `idle` sends nothing, `trickle` sends a never-ending request head
// one byte a second. A connection the server closes is opened again at once, so N stay open.
// The attacker of the /metrics and API tests (a compromised tunnel: tests/e2e/daemon_test.cc).
//
//   tg-hostile-client (--port P [--host H] | --unix PATH) [--cgroup DIR] --connections N
//                     [--mode idle|trickle] [--duration S] [--ready-file F]
// It moves itself into --cgroup before opening any socket, writes "N\n" to --ready-file once
// the first N connects were tried, and at the end (or on SIGTERM) prints
//   {"connects":c,"connect_failures":f,"closed_by_peer":k,"bytes_sent":b}
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "net_util.h"
#include "tool_flags.h"

namespace {

volatile sig_atomic_t g_stop = 0;  // SIGTERM/SIGINT: print the counts and exit

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string unix_path;
  std::string cgroup;
  std::string mode = "idle";
  std::string ready_file;
  int connections = 0;
  int64_t duration_ns = 10000000000;
};

struct Counts {
  long connects = 0, failures = 0, closed_by_peer = 0, bytes_sent = 0;
};

// One connection slot: opened (non-blocking) when empty, closed when the peer closes it.
struct Slot {
  int fd = -1;
  size_t sent = 0;  // bytes of the endless request head sent so far
};

void Open(Slot& s, const tg::tools::Endpoint& ep, Counts& n) {
  const int fd = ::socket(ep.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++n.failures;
    return;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    ++n.failures;
    ::close(fd);
    return;
  }
  ++n.connects;
  s = Slot{fd, 0};
}

// Drains what the server sent; closes the slot when the server closed the connection.
void Drain(Slot& s, Counts& n) {
  char buf[4096];
  for (;;) {
    const ssize_t got = ::recv(s.fd, buf, sizeof(buf), 0);
    if (got > 0) continue;
    if (got < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)) return;
    ++n.closed_by_peer;
    ::close(s.fd);
    s.fd = -1;
    return;
  }
}

// The next byte of a request head that never ends.
char NextByte(size_t i) {
  static const std::string kHead = "GET /metrics HTTP/1.1\r\nX-Slow: ";
  return i < kHead.size() ? kHead[i] : 'a';
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app("Holds N idle or trickling connections open against a server.", "tg-hostile-client");
  tg::tools::ConfigureApp(app);
  tg::tools::AddPort(app, cfg.port, "TCP server port");
  tg::tools::AddHost(app, cfg.host);
  app.add_option("--unix", cfg.unix_path, "unix stream socket instead of --port");
  tg::tools::AddCgroup(app, cfg.cgroup);
  app.add_option("--connections", cfg.connections, "connections to hold (required)");
  app.add_option("--mode", cfg.mode, "idle or trickle")->check(CLI::IsMember({"idle", "trickle"}));
  app.add_option("--ready-file", cfg.ready_file, "gets N once the first connects were tried");
  tg::tools::AddDuration(app, "--duration", cfg.duration_ns, "how long to hold them");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  if (cfg.connections <= 0 || (cfg.port <= 0) == cfg.unix_path.empty()) {
    return tg::tools::UsageError(app, "--connections and one of --port or --unix are required");
  }
  const auto ep = cfg.unix_path.empty() ? tg::tools::MakeEndpoint(cfg.host, cfg.port)
                                        : tg::tools::MakeUnixEndpoint(cfg.unix_path);
  if (!ep) return tg::tools::UsageError(app, "bad --host or --unix");
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGTERM, [](int) { g_stop = 1; });
  ::signal(SIGINT, [](int) { g_stop = 1; });
  if (!cfg.cgroup.empty() && !tg::tools::JoinCgroup(cfg.cgroup)) {
    std::fprintf(stderr, "tg-hostile-client: cannot join cgroup %s: %s\n", cfg.cgroup.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::vector<Slot> slots(static_cast<size_t>(cfg.connections));
  Counts n;
  const bool trickle = cfg.mode == "trickle";
  const int64_t start = tg::tools::NowNs();
  int64_t next_byte = start;
  for (bool first = true; !g_stop && tg::tools::NowNs() - start < cfg.duration_ns; first = false) {
    const bool send_now = trickle && tg::tools::NowNs() >= next_byte;
    if (send_now) next_byte += 1000000000;
    for (Slot& s : slots) {
      if (s.fd < 0) Open(s, *ep, n);
      if (s.fd < 0) continue;
      Drain(s, n);
      if (s.fd < 0 || !send_now) continue;
      const char c = NextByte(s.sent);
      if (::send(s.fd, &c, 1, MSG_NOSIGNAL) == 1) {
        ++s.sent;
        ++n.bytes_sent;
      }
    }
    if (first && !cfg.ready_file.empty()) {
      std::ofstream(cfg.ready_file + ".tmp") << cfg.connections << "\n";
      std::rename((cfg.ready_file + ".tmp").c_str(), cfg.ready_file.c_str());
    }
    ::poll(nullptr, 0, 50);  // re-open closed slots within 50 ms
  }
  std::printf(
      "{\"connects\":%ld,\"connect_failures\":%ld,\"closed_by_peer\":%ld,\"bytes_sent\":%ld}\n",
      n.connects, n.failures, n.closed_by_peer, n.bytes_sent);
  for (Slot& s : slots) {
    if (s.fd >= 0) ::close(s.fd);
  }
  return 0;
}
