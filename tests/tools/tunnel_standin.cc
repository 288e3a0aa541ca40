// tg-tunnel-standin: the stand-in cloudflared of the VM end-to-end test under real systemd
// (tests/vm/systemd-e2e-check.sh installs it as /usr/bin/cloudflared).
//
//   tg-tunnel-standin [cloudflared's arguments, ignored]
//       Its first act is socket(AF_UNIX), then socketpair(AF_UNIX): both must fail with
//       EAFNOSUPPORT in the tunnel's cgroup. systemd's own RestrictAddressFamilies= seccomp
//       filter already refuses the socket() (it filters socket() only), so the socketpair() is
//       what proves BPF-LSM enforcement is in force from the first instruction on. Prints
//         TG-STANDIN first-act mono_us=<CLOCK_MONOTONIC µs> socket=<result> socketpair=<result>
//       (result: EAFNOSUPPORT, another errno name, or "allowed") on stdout and into
//       $RUNTIME_DIRECTORY/first-act when systemd sets RUNTIME_DIRECTORY (stdout may not reach
//       the journal: see tests/vm/README.md, "The tunnel's stdout"), then execs
//       /usr/bin/tg-http-client (the client loop: keep-alive requests to 127.0.0.1:80, where
//       nginx stands in for Traefik's `web` entry point) for a day at 20 req/s.
//   tg-tunnel-standin --probe SECONDS
//       For SECONDS, every 20 ms, tries socket(AF_UNIX) and socketpair(AF_UNIX); prints
//       "TG-PROBE attempts=N denied=D allowed=A" and exits 0 only when every attempt failed with
//       EAFNOSUPPORT. Meant to run in the tunnel's cgroup (without the tunnel's seccomp filter)
//       while the agent restarts.
//   tg-tunnel-standin --monotonic
//       Prints CLOCK_MONOTONIC in µs: the clock of systemd's *TimestampMonotonic properties.
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr const char* kClient = "/usr/bin/tg-http-client";

long long MonotonicMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
}

// "allowed" when the call succeeded (the descriptors are closed), else the errno's name.
std::string Outcome(int rc, int err) {
  if (rc >= 0) return "allowed";
  if (err == EAFNOSUPPORT) return "EAFNOSUPPORT";
  if (err == EPERM) return "EPERM";
  if (err == EACCES) return "EACCES";
  return "errno" + std::to_string(err);
}

std::string TrySocket() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int err = errno;
  if (fd >= 0) ::close(fd);
  return Outcome(fd, err);
}

std::string TrySocketpair() {
  int fds[2] = {-1, -1};
  const int rc = ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
  const int err = errno;
  if (rc == 0) {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  return Outcome(rc, err);
}

int Probe(int seconds) {
  const long long end = MonotonicMicros() + seconds * 1000000LL;
  long long attempts = 0, denied = 0;
  while (MonotonicMicros() < end) {
    for (const std::string& r : {TrySocket(), TrySocketpair()}) {
      ++attempts;
      if (r == "EAFNOSUPPORT") ++denied;
    }
    ::usleep(20000);
  }
  std::printf("TG-PROBE attempts=%lld denied=%lld allowed=%lld\n", attempts, denied,
              attempts - denied);
  return attempts > 0 && denied == attempts ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The first act, before anything else the process does.
  const long long first_act = MonotonicMicros();
  const std::string sock = TrySocket();
  const std::string pair = TrySocketpair();

  if (argc == 3 && std::strcmp(argv[1], "--probe") == 0) return Probe(std::atoi(argv[2]));
  if (argc == 2 && std::strcmp(argv[1], "--monotonic") == 0) {
    std::printf("%lld\n", first_act);
    return 0;
  }
  char record[256];
  const int len = std::snprintf(
      record, sizeof(record), "TG-STANDIN first-act mono_us=%lld socket=%s socketpair=%s pid=%d\n",
      first_act, sock.c_str(), pair.c_str(), static_cast<int>(::getpid()));
  std::fputs(record, stdout);
  std::fflush(stdout);
  if (const char* dir = std::getenv("RUNTIME_DIRECTORY"); dir != nullptr && len > 0) {
    const std::string path = std::string(dir) + "/first-act";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, record, static_cast<size_t>(len)) != len) {
      std::fprintf(stderr, "tg-tunnel-standin: cannot write %s: %s\n", path.c_str(),
                   std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
  }
  ::execl(kClient, kClient, "--host", "127.0.0.1", "--port", "80", "--duration", "86400", "--rate",
          "20", "--connections", "2", static_cast<char*>(nullptr));
  std::fprintf(stderr, "tg-tunnel-standin: exec %s: %s\n", kClient, std::strerror(errno));
  return 1;
}
