// Per-call cost of the calls the policies see on their hot path — socket() and mmap() that are
// *allowed* — with tunnelguard attached (caller inside the cgroup), against no policy and
// against systemd's seccomp filters. Guest timings under TCG are only meaningful relative to
// each other, so only ratios are reported (TG-COST lines), configurations interleaved round by
// round, medians taken. Nothing is asserted about speed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

constexpr int kCallsPerRound = 10000;
constexpr int kWarmUpCalls = 2000;
constexpr int kRounds = 6;

double NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// ns per call of `op` in a child with `options`, measured in the child.
double TimeInChild(const ChildOptions& options, int (*op)()) {
  auto* result = static_cast<double*>(
      ::mmap(nullptr, sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (result == MAP_FAILED) return -1;
  *result = -1;
  RunInChild(options, [&] {
    for (int i = 0; i < kWarmUpCalls; ++i) op();  // fault in the child's pages first
    const double t0 = NowNs();
    for (int i = 0; i < kCallsPerRound; ++i) op();
    *result = (NowNs() - t0) / kCallsPerRound;
    return 0;
  });
  const double ns = *result;
  ::munmap(result, sizeof(double));
  return ns;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int SocketInet() { return OpSocket(AF_INET, SOCK_DGRAM, 0); }
int MmapRw() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno;
  ::munmap(p, 4096);
  return 0;
}
int SocketUnixDenied() { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }

TEST(Cost, PerCallRatiosAgainstNoPolicyAndSystemdSeccomp) {
  TG_REQUIRE_ROOT();
  const uint64_t allowed = Families({AF_INET, AF_INET6});
  std::string error;
  auto att = Attachment::Attach(Cgroups().target, Mode::kEnforce, allowed, true, &error);
  ASSERT_TRUE(att.has_value()) << error;
  struct Op {
    const char* name;
    int (*fn)();
  };
  const Op ops[] = {{"socket(AF_INET)+close, allowed", SocketInet},
                    {"mmap(RW)+munmap, allowed", MmapRw},
                    {"socket(AF_UNIX), denied (none: allowed)", SocketUnixDenied}};
  for (const Op& op : ops) {
    std::vector<double> none, lsm, seccomp;
    for (int r = 0; r < kRounds; ++r) {
      // Rotate which configuration goes first, so none is favoured by position.
      for (int k = 0; k < 3; ++k) {
        switch ((r + k) % 3) {
          case 0:
            none.push_back(TimeInChild(In(Cgroups().outside), op.fn));
            break;
          case 1:
            lsm.push_back(TimeInChild(In(Cgroups().target), op.fn));
            break;
          default:
            seccomp.push_back(TimeInChild(UnderSystemd(Cgroups().outside, allowed), op.fn));
        }
      }
    }
    const double n = Median(none), l = Median(lsm), s = Median(seccomp);
    ASSERT_GT(n, 0);
    ASSERT_GT(l, 0);
    ASSERT_GT(s, 0);
    std::printf(
        "TG-COST | %s | tunnelguard/none %.2f | systemd-seccomp/none %.2f | "
        "tunnelguard/systemd-seccomp %.2f |\n",
        op.name, l / n, s / n, l / s);
  }
}

}  // namespace
}  // namespace tg::testing
