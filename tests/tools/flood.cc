// tg-flood: forbidden calls in a tight loop from inside a cgroup, counted by the caller itself —
// the ground truth the reliability tests hold the agent's counters to.
//
//   tg-flood --cgroup PATH [--seconds S] [--count C] [--processes N] [--op socket|mmap|both]
//            [--seccomp]
//
// Joins the cgroup, forks N workers, each calling socket(AF_UNIX, SOCK_DGRAM) (closed again
// when it succeeds, i.e. in audit mode) and/or mmap(PROT_READ|WRITE|EXEC) (unmapped again)
// until S seconds pass or each worker made C rounds (default: until SIGTERM or SIGINT; the
// demo makes a few attempts with --count). --seccomp first installs systemd's
// RestrictAddressFamilies= filter for AF_UNIX, so every socket() fails fast with EAFNOSUPPORT. Then
// prints one JSON object: the attempts and successes per operation, failures by errno class (the
// policy's errno or any other), the elapsed time, the rate, and the attempts made in each whole
// second.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tool_flags.h"

namespace {

constexpr int kMaxProcesses = 16;

struct Counts {
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> successes{0};
  std::atomic<uint64_t> policy_errno{0};  // EAFNOSUPPORT for socket, EPERM for mmap
  std::atomic<uint64_t> other_errno{0};
  std::atomic<int> last_other{0};
};

// Shared with the workers (MAP_SHARED): each worker owns one slot and writes it with relaxed
// atomics; the parent reads totals while they run.
struct Shared {
  std::atomic<bool> stop{false};
  Counts socket[kMaxProcesses];
  Counts mmap[kMaxProcesses];
};

volatile sig_atomic_t g_signalled = 0;
void OnSignal(int) { g_signalled = 1; }

double Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void Count(Counts& c, bool ok, int err, int policy_err) {
  c.attempts.fetch_add(1, std::memory_order_relaxed);
  if (ok) {
    c.successes.fetch_add(1, std::memory_order_relaxed);
  } else if (err == policy_err) {
    c.policy_errno.fetch_add(1, std::memory_order_relaxed);
  } else {
    c.other_errno.fetch_add(1, std::memory_order_relaxed);
    c.last_other.store(err, std::memory_order_relaxed);
  }
}

void Work(Shared* sh, int slot, bool do_socket, bool do_mmap, uint64_t count) {
  for (uint64_t round = 0;
       (count == 0 || round < count) && !sh->stop.load(std::memory_order_relaxed); ++round) {
    if (do_socket) {
      const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      const int err = errno;
      if (fd >= 0) ::close(fd);
      Count(sh->socket[slot], fd >= 0, err, EAFNOSUPPORT);
    }
    if (do_mmap) {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      const int err = errno;
      if (p != MAP_FAILED) ::munmap(p, 4096);
      Count(sh->mmap[slot], p != MAP_FAILED, err, EPERM);
    }
  }
}

uint64_t Sum(const Counts* c, int n, std::atomic<uint64_t> Counts::*field) {
  uint64_t s = 0;
  for (int i = 0; i < n; ++i) s += (c[i].*field).load(std::memory_order_relaxed);
  return s;
}

std::string OpJson(const Counts* c, int n) {
  int last_other = 0;
  for (int i = 0; i < n; ++i) {
    if (const int e = c[i].last_other.load(); e != 0) last_other = e;
  }
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "{\"attempts\": %llu, \"successes\": %llu, \"policy_errno\": %llu, "
                "\"other_errno\": %llu, \"last_other_errno\": %d}",
                static_cast<unsigned long long>(Sum(c, n, &Counts::attempts)),
                static_cast<unsigned long long>(Sum(c, n, &Counts::successes)),
                static_cast<unsigned long long>(Sum(c, n, &Counts::policy_errno)),
                static_cast<unsigned long long>(Sum(c, n, &Counts::other_errno)), last_other);
  return buf;
}

// What systemd's RestrictAddressFamilies=AF_INET AF_INET6 does to socket(AF_UNIX): a seccomp
// filter that fails it with EAFNOSUPPORT before the kernel creates anything (x86-64 only, like
// the shipped units' SystemCallArchitectures=native).
bool InstallSeccompLikeSystemd() {
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(f) / sizeof(f[0])), f};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cgroup, op = "socket";
  double seconds = 0;  // 0: until a signal
  int processes = 1;
  uint64_t count = 0;  // 0: no limit
  bool seccomp = false;
  CLI::App app("Forbidden calls in a tight loop from inside a cgroup, self-counted.", "tg-flood");
  tg::tools::ConfigureApp(app);
  tg::tools::AddCgroup(app, cgroup)->required();
  app.add_option("--seconds", seconds, "how long (0: until SIGTERM/SIGINT)");
  app.add_option("--count", count, "rounds per process (0: until --seconds or a signal)");
  app.add_option("--processes", processes, "flooding processes")
      ->check(CLI::Range(1, kMaxProcesses));
  app.add_option("--op", op, "the forbidden call")
      ->check(CLI::IsMember({"socket", "mmap", "both"}));
  app.add_flag("--seccomp", seccomp, "first install a seccomp filter like systemd's");
  if (const auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  if (cgroup.empty()) return tg::tools::UsageError(app, "--cgroup is required");
  const bool do_socket = op != "mmap", do_mmap = op != "socket";
  // The shared counters are mapped before joining the cgroup (a W^X policy allows RW anyway).
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("tg-flood: mmap");
    return 1;
  }
  auto* sh = new (mem) Shared();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  const int fd = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "0", 1) != 1) {
    std::fprintf(stderr, "tg-flood: cannot join %s: %s\n", cgroup.c_str(), std::strerror(errno));
    return 1;
  }
  ::close(fd);
  if (seccomp && !InstallSeccompLikeSystemd()) {
    std::fprintf(stderr, "tg-flood: cannot install the seccomp filter: %s\n", std::strerror(errno));
    return 1;
  }

  std::vector<pid_t> workers;
  const double start = Now();
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      sh->stop = true;
      break;
    }
    if (pid == 0) {
      Work(sh, i, do_socket, do_mmap, count);
      ::_exit(0);
    }
    workers.push_back(pid);
  }
  // Attempts in each whole second, sampled by the parent (which makes no forbidden call).
  std::vector<uint64_t> per_second;
  uint64_t last = 0;
  double next = start + 1;
  while (!sh->stop.load() && g_signalled == 0) {
    const double now = Now();
    if (seconds > 0 && now >= start + seconds) break;
    const uint64_t rounds_done = do_socket ? Sum(sh->socket, processes, &Counts::attempts)
                                           : Sum(sh->mmap, processes, &Counts::attempts);
    if (count > 0 && rounds_done >= count * static_cast<uint64_t>(workers.size())) break;
    if (now >= next) {
      const uint64_t total = Sum(sh->socket, processes, &Counts::attempts) +
                             Sum(sh->mmap, processes, &Counts::attempts);
      per_second.push_back(total - last);
      last = total;
      next += 1;
    }
    ::usleep(2000);
  }
  sh->stop = true;
  for (pid_t pid : workers) ::waitpid(pid, nullptr, 0);
  const double elapsed = Now() - start;
  const uint64_t attempts =
      Sum(sh->socket, processes, &Counts::attempts) + Sum(sh->mmap, processes, &Counts::attempts);
  const uint64_t successes =
      Sum(sh->socket, processes, &Counts::successes) + Sum(sh->mmap, processes, &Counts::successes);
  std::string secs;
  for (size_t i = 0; i < per_second.size(); ++i) {
    secs += (i ? ", " : "") + std::to_string(per_second[i]);
  }
  std::printf(
      "{\"processes\": %d, \"seconds\": %.3f, \"attempts\": %llu, \"successes\": %llu, "
      "\"rate\": %.0f, \"per_second\": [%s], \"socket\": %s, \"mmap\": %s}\n",
      static_cast<int>(workers.size()), elapsed, static_cast<unsigned long long>(attempts),
      static_cast<unsigned long long>(successes), static_cast<double>(attempts) / elapsed,
      secs.c_str(), OpJson(sh->socket, processes).c_str(), OpJson(sh->mmap, processes).c_str());
  return static_cast<int>(workers.size()) == processes ? 0 : 1;
}
