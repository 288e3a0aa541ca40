// tg-notify-listen PATH: stands in for systemd's NOTIFY_SOCKET. Binds a datagram socket at PATH
// and prints every message it receives as "<CLOCK_REALTIME ns> <message>" (newlines in a
// message become spaces), flushed at once, until killed. bench/run.sh times the agent's
// start-up from these stamps (`date +%s%N` uses the same clock).
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "tool_flags.h"

int main(int argc, char** argv) {
  std::string path;
  CLI::App app("Stands in for systemd's NOTIFY_SOCKET: prints each datagram, time-stamped.",
               "tg-notify-listen");
  tg::tools::ConfigureApp(app);
  app.add_option("PATH", path, "datagram socket to bind (replaced if it exists)")->required();
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return tg::tools::UsageError(app, "path too long");
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ::unlink(path.c_str());
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::fprintf(stderr, "tg-notify-listen: bind %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    std::string m(buf, static_cast<size_t>(n));
    std::replace(m.begin(), m.end(), '\n', ' ');
    std::printf("%lld %s\n", static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec,
                m.c_str());
    std::fflush(stdout);
  }
}
