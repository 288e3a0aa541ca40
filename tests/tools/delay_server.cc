// tg-delay-server: an HTTP/1.1 keep-alive server on loopback that answers every request after a
// known delay — the ground truth for tunnelguard's accuracy tests and a stand-in origin for the
// demo. Thread per connection (tests use at most a few hundred connections).
//
//   tg-delay-server --port P [--host 127.0.0.1|::1] [--delay 10ms | --mix 1ms:50,10ms:30,100ms:20]
//                   [--seed N] [--body-bytes B] [--timings FILE]
// --timings appends one line per answered request to FILE: nanoseconds from the kernel's receive
// timestamp of the request's first segment (SO_TIMESTAMPNS) to the moment the response is
// written — the server's own view of the request's latency. Unlike a client's clock it is not
// stretched when the client waits for a CPU after its response arrived, so it is the reference
// the accuracy tests judge tunnelguard against.
// Paths: "/reset" aborts the connection with a TCP RST instead of answering (failure tests).
// Prints "listening HOST PORT" once it accepts connections.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net_util.h"
#include "tool_flags.h"

namespace {

struct Choice {
  int64_t delay_ns;
  unsigned weight;
};

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::vector<Choice> mix{{0, 1}};
  unsigned seed = 1;
  size_t body_bytes = 64;
  std::string timings_path;
  int timings_fd = -1;  // O_APPEND: one write() per line keeps threads' lines whole
};

int64_t RealtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// recv() that also returns the kernel's receive timestamp (CLOCK_REALTIME ns; 0 if none).
ssize_t RecvStamped(int fd, char* buf, size_t len, int64_t* stamp_ns) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(fd, &msg, 0);
  *stamp_ns = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      *stamp_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    }
  }
  return n;
}

void RecordTiming(const Config& cfg, int64_t received_ns, int64_t sent_ns) {
  if (cfg.timings_fd < 0 || received_ns == 0) return;
  const std::string line = std::to_string(sent_ns - received_ns) + "\n";
  (void)!::write(cfg.timings_fd, line.data(), line.size());
}

bool ParseMix(const std::string& text, std::vector<Choice>& out) {
  out.clear();
  size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    const auto colon = item.find(':');
    const auto d = tg::tools::ParseDuration(item.substr(0, colon));
    if (!d) return false;
    unsigned w = 1;
    if (colon != std::string::npos) w = static_cast<unsigned>(std::stoul(item.substr(colon + 1)));
    out.push_back({*d, w});
  }
  return !out.empty();
}

void Serve(int fd, const Config& cfg, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned> weights;
  for (const auto& c : cfg.mix) weights.push_back(c.weight);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  const std::string body(cfg.body_bytes, 'x');
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string buf;
  char chunk[4096];
  int64_t received_ns = 0;  // the first segment of the request being read
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      int64_t stamp = 0;
      const ssize_t n = RecvStamped(fd, chunk, sizeof(chunk), &stamp);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      if (buf.empty()) received_ns = stamp;
      buf.append(chunk, static_cast<size_t>(n));
    }
    const std::string request = buf.substr(0, end);
    buf.erase(0, end + 4);
    if (request.find(" /reset ") != std::string::npos) {
      const linger abort_now{1, 0};  // close() then sends RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof(abort_now));
      ::close(fd);
      return;
    }
    const int64_t delay = cfg.mix[pick(rng)].delay_ns;
    if (delay > 0) {
      timespec ts{static_cast<time_t>(delay / 1000000000), static_cast<long>(delay % 1000000000)};
      while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
    }
    const int64_t sent_ns = RealtimeNs();
    if (!tg::tools::WriteAll(fd, response.data(), response.size())) {
      ::close(fd);
      return;
    }
    RecordTiming(cfg, received_ns, sent_ns);
    received_ns = 0;  // a pipelined request already in `buf` has no stamp of its own
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app("HTTP server that delays each response by a known amount.", "tg-delay-server");
  tg::tools::ConfigureApp(app);
  tg::tools::AddPort(app, cfg.port, "port to listen on (0: any free port, printed)");
  tg::tools::AddHost(app, cfg.host);
  // --delay and --mix are one setting (the later one wins): a mix of delays with weights.
  const CLI::Validator mix_check(
      [](std::string& text) {
        std::vector<Choice> mix;
        try {
          if (ParseMix(text, mix)) return std::string();
        } catch (const std::exception&) {  // a weight that is not a number
        }
        return "bad delay mix '" + text + "'";
      },
      "MIX");
  for (const char* flag : {"--delay", "--mix"}) {
    app.add_option_function<std::string>(
           flag, [&cfg](const std::string& text) { ParseMix(text, cfg.mix); },
           "response delay, or a weighted mix like 1ms:50,10ms:30")
        ->check(mix_check)
        ->trigger_on_parse();
  }
  app.add_option("--seed", cfg.seed, "seed of the per-connection delay picks");
  app.add_option("--body-bytes", cfg.body_bytes, "response body size");
  app.add_option("--timings", cfg.timings_path,
                 "append each request's server-side latency (ns) to this file");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  ::signal(SIGPIPE, SIG_IGN);
  const auto ep = tg::tools::MakeEndpoint(cfg.host, cfg.port);
  if (!ep) return tg::tools::UsageError(app, "--host must be a numeric address");
  if (!cfg.timings_path.empty()) {
    cfg.timings_fd =
        ::open(cfg.timings_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (cfg.timings_fd < 0) {
      std::fprintf(stderr, "tg-delay-server: --timings %s: %s\n", cfg.timings_path.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  const int ls = ::socket(ep->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Set on the listener so accepted sockets inherit it, and timestamping is on before the
  // first request arrives (a segment queued before it was enabled carries no stamp).
  ::setsockopt(ls, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
  if (::bind(ls, reinterpret_cast<const sockaddr*>(&ep->addr), ep->len) != 0 ||
      ::listen(ls, 4096) != 0) {
    std::fprintf(stderr, "tg-delay-server: bind/listen %s:%d: %s\n", cfg.host.c_str(), cfg.port,
                 std::strerror(errno));
    return 1;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(ls, reinterpret_cast<sockaddr*>(&bound), &blen);
  const int port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  std::printf("listening %s %d\n", cfg.host.c_str(), port);
  std::fflush(stdout);
  unsigned n = 0;
  while (true) {
    const int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      return 1;
    }
    std::thread(Serve, fd, std::cref(cfg), cfg.seed + n++).detach();
  }
}
