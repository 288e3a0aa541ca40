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
//       Under a Type=notify unit ($NOTIFY_SOCKET set: the unix-notify family mode), it then
//       tries AF_UNIX acts other than sd_notify's, and only then notifies READY=1, so the unit
//       reaches `active` only through an allowed notification; prints (and writes to
//       $RUNTIME_DIRECTORY/notify-acts, or /run/tg-standin-notify-acts without one)
//         TG-STANDIN notify-acts mono_us=<µs> journal_stdout=<r> dbus=<r> journal_dgram=<r>
//           devlog_sendto=<r> socketpair_dgram=<r> socket_stream=<r> ready=<r> pid=<pid>
//       journal_stdout and dbus: socket(AF_UNIX, SOCK_STREAM) + connect() to journald's stream
//       and D-Bus's socket; journal_dgram: a datagram connect() to /run/systemd/journal/socket;
//       devlog_sendto: sendto() /dev/log; ready: sd_notify(READY=1) by hand (connect + send).
//   tg-tunnel-standin --notify-acts
//       Only those acts (no READY=1 unless $NOTIFY_SOCKET is set), printed: for a process put
//       into the tunnel's cgroup by hand (audit mode, where they are allowed and counted).
//   tg-tunnel-standin --probe SECONDS
//       For SECONDS, every 20 ms, tries socket(AF_UNIX) and socketpair(AF_UNIX); prints
//       "TG-PROBE attempts=N denied=D allowed=A" and exits 0 only when every attempt failed with
//       EAFNOSUPPORT. Meant to run in the tunnel's cgroup (without the tunnel's seccomp filter)
//       while the agent restarts.
//   tg-tunnel-standin --monotonic
//       Prints CLOCK_MONOTONIC in µs: the clock of systemd's *TimestampMonotonic properties.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
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

// A socket address for `path` ("@name": abstract, as systemd writes $NOTIFY_SOCKET).
socklen_t UnixAddress(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  const size_t n = std::min(path.size(), sizeof(addr->sun_path) - 1);
  std::memcpy(addr->sun_path, path.data(), n);
  if (n > 0 && path[0] == '@') {
    addr->sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
}

// socket(AF_UNIX, type) then connect() to `path`: the first refusal's outcome.
std::string TryConnect(int type, const std::string& path) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return Outcome(fd, errno);
  sockaddr_un addr;
  const socklen_t len = UnixAddress(path, &addr);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  return Outcome(rc, err);
}

std::string TrySendto(const std::string& path, const char* message) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Outcome(fd, errno);
  sockaddr_un addr;
  const socklen_t len = UnixAddress(path, &addr);
  const ssize_t rc = ::sendto(fd, message, std::strlen(message), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  return Outcome(rc < 0 ? -1 : 0, err);
}

std::string TryDgramSocketpair() {
  int fds[2] = {-1, -1};
  const int rc = ::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds);
  const int err = errno;
  if (rc == 0) {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  return Outcome(rc, err);
}

// sd_notify(0, "READY=1") as libsystemd and go-systemd do it: connect, then send.
std::string NotifyReady() {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr) return "no-NOTIFY_SOCKET";
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Outcome(fd, errno);
  sockaddr_un addr;
  const socklen_t len = UnixAddress(socket_path, &addr);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  if (rc == 0 && ::send(fd, "READY=1", 7, MSG_NOSIGNAL) != 7) rc = -1;
  const int err = errno;
  ::close(fd);
  return Outcome(rc, err);
}

// The notify unit's acts (see the top): every forbidden one first, READY=1 last. Writes the
// record to `record_path` ("" for stdout only).
void NotifyActs(const std::string& record_path) {
  const long long at = MonotonicMicros();
  const std::string journal_stdout = TryConnect(SOCK_STREAM, "/run/systemd/journal/stdout");
  const std::string dbus = TryConnect(SOCK_STREAM, "/run/dbus/system_bus_socket");
  const std::string journal_dgram = TryConnect(SOCK_DGRAM, "/run/systemd/journal/socket");
  const std::string devlog = TrySendto("/dev/log", "<14>tg-tunnel-standin: must not arrive");
  const std::string pair = TryDgramSocketpair();
  const std::string stream = TrySocket();
  const std::string ready = NotifyReady();
  char record[512];
  const int len = std::snprintf(
      record, sizeof(record),
      "TG-STANDIN notify-acts mono_us=%lld journal_stdout=%s dbus=%s journal_dgram=%s "
      "devlog_sendto=%s socketpair_dgram=%s socket_stream=%s ready=%s pid=%d\n",
      at, journal_stdout.c_str(), dbus.c_str(), journal_dgram.c_str(), devlog.c_str(), pair.c_str(),
      stream.c_str(), ready.c_str(), static_cast<int>(::getpid()));
  std::fputs(record, stdout);
  std::fflush(stdout);
  if (record_path.empty() || len <= 0) return;
  const int fd = ::open(record_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, record, static_cast<size_t>(len)) != len) {
    std::fprintf(stderr, "tg-tunnel-standin: cannot write %s: %s\n", record_path.c_str(),
                 std::strerror(errno));
  }
  if (fd >= 0) ::close(fd);
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
  if (argc == 2 && std::strcmp(argv[1], "--notify-acts") == 0) {
    NotifyActs("");
    return 0;
  }
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
  if (std::getenv("NOTIFY_SOCKET") != nullptr) {
    const char* dir = std::getenv("RUNTIME_DIRECTORY");
    NotifyActs(dir != nullptr ? std::string(dir) + "/notify-acts" : "/run/tg-standin-notify-acts");
  }
  ::execl(kClient, kClient, "--host", "127.0.0.1", "--port", "80", "--duration", "86400", "--rate",
          "20", "--connections", "2", static_cast<char*>(nullptr));
  std::fprintf(stderr, "tg-tunnel-standin: exec %s: %s\n", kClient, std::strerror(errno));
  return 1;
}
