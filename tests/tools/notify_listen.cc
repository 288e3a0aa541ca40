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

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tg-notify-listen PATH\n");
    return 2;
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(argv[1]) >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "tg-notify-listen: path too long\n");
    return 2;
  }
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
  ::unlink(argv[1]);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::fprintf(stderr, "tg-notify-listen: bind %s: %s\n", argv[1], std::strerror(errno));
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
