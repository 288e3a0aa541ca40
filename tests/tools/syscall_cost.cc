// tg-syscall-cost: what a system call costs this process, in ns per operation — the host-wide
// price of the observe mechanism, measured from a process outside the tunnel's cgroup
// (bench/observe_cost.sh runs it interleaved with and without the agent).
//
//   tg-syscall-cost [--calls N] [--repeats R] [--cgroup PATH]
//
// Operations: getppid (a call no policy watches), rw (a 1-byte write and read on a pipe: the
// request path's shape, unwatched), socket (socket(AF_INET, SOCK_DGRAM) and close: watched by
// address_families), mmap (an anonymous RW page mapped and unmapped: watched by wx_memory) and
// mprotect (RW -> R -> RW: watched by wx_memory). Each is timed over N operations, R times; the
// median is printed, with the spread, as one JSON object. --cgroup joins that cgroup first.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tool_flags.h"

namespace {

struct Figure {
  double median_ns = 0;
  double min_ns = 0;
  double max_ns = 0;
};

// N runs of `op`, R times: ns per op, median and spread. `op` returns false when a call failed.
bool Time(const std::function<bool()>& op, int calls, int repeats, Figure& out) {
  std::vector<double> ns;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
      if (!op()) return false;
    }
    const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
    ns.push_back(d.count() / calls);
  }
  std::sort(ns.begin(), ns.end());
  out = {ns[ns.size() / 2], ns.front(), ns.back()};
  return true;
}

bool JoinCgroup(const std::string& path) {
  const std::string procs = path + "/cgroup.procs";
  const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const std::string pid = std::to_string(::getpid());
  const bool ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
  ::close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Host-wide cost of system calls, ns per operation (bench/observe_cost.sh)",
               "tg-syscall-cost"};
  tg::tools::ConfigureApp(app);
  int calls = 200000;
  int repeats = 5;
  std::string cgroup;
  app.add_option("--calls", calls, "operations per timing")->check(CLI::Range(1, 100000000));
  app.add_option("--repeats", repeats, "timings per operation")->check(CLI::Range(1, 1000));
  app.add_option("--cgroup", cgroup, "join this cgroup (v2 directory) first");
  if (auto rc = tg::tools::ParseArgs(app, argc, argv)) return *rc;
  if (!cgroup.empty() && !JoinCgroup(cgroup)) {
    return tg::tools::UsageError(app, "cannot join cgroup " + cgroup + ": " + std::strerror(errno));
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return tg::tools::UsageError(app, "pipe2 failed");
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return tg::tools::UsageError(app, "mmap failed");
  const std::vector<std::pair<std::string, std::function<bool()>>> ops = {
      // The raw system call: glibc could one day answer getppid() without entering the kernel.
      {"getppid", [] { return ::syscall(SYS_getppid) > 0; }},
      {"rw",
       [&] {
         char c = 'x';
         return ::write(pipe_fds[1], &c, 1) == 1 && ::read(pipe_fds[0], &c, 1) == 1;
       }},
      {"socket",
       [] {
         const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
         return fd >= 0 && ::close(fd) == 0;
       }},
      {"mmap",
       [] {
         void* p =
             ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
         return p != MAP_FAILED && ::munmap(p, 4096) == 0;
       }},
      {"mprotect",
       [page] {
         return ::mprotect(page, 4096, PROT_READ) == 0 &&
                ::mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0;
       }},
  };
  std::string json = "{";
  for (const auto& [name, op] : ops) {
    Figure f;
    if (!Time(op, calls, repeats, f)) {
      std::fprintf(stderr, "tg-syscall-cost: %s failed: %s\n", name.c_str(), std::strerror(errno));
      return 1;
    }
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "%s\"%s\": {\"median_ns\": %.1f, \"min_ns\": %.1f, \"max_ns\": %.1f}",
                  json.size() > 1 ? ", " : "", name.c_str(), f.median_ns, f.min_ns, f.max_ns);
    json += buf;
  }
  std::printf("%s}\n", json.c_str());
  return 0;
}
