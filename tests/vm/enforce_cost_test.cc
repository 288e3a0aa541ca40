// Per-call cost of the calls the policies see on their hot path, and of one they never see,
// under each way of enforcing the same rules: no policy; tunnelguard with lsm_cgroup programs;
// tunnelguard's lsm-global fallback (global lsm/ programs that run for every task and filter by
// cgroup); systemd's seccomp filters (RestrictAddressFamilies + MemoryDenyWriteExecute, per
// process); and PR_SET_MDWE (prctl 65, kernel >= 6.3, per process, memory calls only). Callers
// inside the target cgroup and outside it. A benchmark run from bench/run.sh (section 3), not a
// test: it asserts only that every figure was produced, never a speed.
//
// Guest timings under TCG mean something only relative to each other, so configurations are
// interleaved round by round (the order rotating), medians taken, and each median is divided
// by "no policy" at the same place. One line per figure, parsed by bench/run.sh:
//   TG-COST op=getppid config=lsm_cgroup where=inside median_ns=812.3 min_ns=.. max_ns=..
//           ratio=1.012 rounds=7
//   TG-COST-NA op=getppid config=mdwe reason=...     (a mechanism that does not apply)
//   TG-COST-OP op=getppid label="..." calls=200000     (once per call, before its figures)
// Environment: TG_COST_ROUNDS (default 7), TG_COST_CALLS (calls per round, default 10000).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

// <linux/prctl.h> of bookworm's headers predates PR_SET_MDWE (Linux 6.3).
constexpr int kPrSetMdwe = 65;
constexpr unsigned long kPrMdweRefuseExecGain = 1;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  const int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}
const int kRounds = EnvInt("TG_COST_ROUNDS", 7);
const int kCalls = EnvInt("TG_COST_CALLS", 10000);

double NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// ns per call of `op` in a child with `options` (and PR_SET_MDWE when `mdwe`), measured in the
// child; -1 when the child could not be set up (e.g. PR_SET_MDWE refused).
double TimeInChild(const ChildOptions& options, bool mdwe, int (*op)(), int calls) {
  auto* result = static_cast<double*>(
      ::mmap(nullptr, sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (result == MAP_FAILED) return -1;
  *result = -1;
  RunInChild(options, [&] {
    if (mdwe && ::prctl(kPrSetMdwe, kPrMdweRefuseExecGain, 0, 0, 0) != 0) return 1;
    const int warm_up = std::max(200, calls / 5);
    for (int i = 0; i < warm_up; ++i) op();  // fault in the child's pages first
    const double t0 = NowNs();
    for (int i = 0; i < calls; ++i) op();
    *result = (NowNs() - t0) / calls;
    return 0;
  });
  const double ns = *result;
  ::munmap(result, sizeof(double));
  return ns;
}

int SocketInet() { return OpSocket(AF_INET, SOCK_DGRAM, 0); }
int MmapRw() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno;
  ::munmap(p, 4096);
  return 0;
}
// RW -> R -> RW on one page: two mprotect calls, neither gaining exec (allowed everywhere).
int MprotectNoExec() {
  static void* page =
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return ENOMEM;
  if (::mprotect(page, 4096, PROT_READ) != 0) return errno;
  return ::mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0 ? errno : 0;
}
// A call no policy hook sees: tunnelguard's programs never run; a seccomp filter still does.
int Getppid() { return ::getppid() > 0 ? 0 : 1; }
int SocketUnixDenied() { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }

struct Op {
  const char* id;
  const char* label;
  int (*fn)();
  bool memory;           // PR_SET_MDWE applies
  int calls_factor = 1;  // getppid is ~30x cheaper: more calls, so a round is not a blip
};
const Op kOps[] = {
    {"socket", "socket(AF_INET)+close, allowed", SocketInet, false},
    {"mmap", "mmap(RW)+munmap, allowed", MmapRw, true},
    {"mprotect", "mprotect RW->R->RW (2 calls), allowed", MprotectNoExec, true},
    {"getppid", "getppid, no policy hook", Getppid, false, 10},
    {"socket_unix", "socket(AF_UNIX) denied (none: allowed)", SocketUnixDenied, false},
};

enum class Config { kNone, kLsmCgroup, kLsmGlobal, kSeccomp, kMdwe };
constexpr std::array<Config, 5> kConfigs = {Config::kNone, Config::kLsmCgroup, Config::kLsmGlobal,
                                            Config::kSeccomp, Config::kMdwe};
const char* ConfigId(Config c) {
  switch (c) {
    case Config::kNone:
      return "none";
    case Config::kLsmCgroup:
      return "lsm_cgroup";
    case Config::kLsmGlobal:
      return "lsm_global";
    case Config::kSeccomp:
      return "systemd_seccomp";
    case Config::kMdwe:
      return "mdwe";
  }
  return "?";
}
// Per-process mechanisms have no "outside the cgroup": a process without them pays nothing.
bool PerProcess(Config c) { return c == Config::kSeccomp || c == Config::kMdwe; }

// samples[op][config][where] -> ns per call, one per round
using Key = std::tuple<std::string, Config, std::string>;

struct Summary {
  double median, min, max;
};
Summary Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// Does this kernel have PR_SET_MDWE? (6.1: EINVAL.) Asked in a child: the flag is sticky.
std::string MdweUnavailableReason() {
  int err = 0;
  auto* shared = static_cast<int*>(
      ::mmap(nullptr, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  RunInChild(In(""), [&] {
    *shared = ::prctl(kPrSetMdwe, kPrMdweRefuseExecGain, 0, 0, 0) == 0 ? 0 : errno;
    return 0;
  });
  err = *shared;
  ::munmap(shared, sizeof(int));
  return err == 0 ? "" : std::string("prctl(PR_SET_MDWE) ") + std::strerror(err) + " (needs 6.3+)";
}

TEST(Cost, PerCallRatiosByMechanismInsideAndOutside) {
  TG_REQUIRE_ROOT();
  const GuestCgroups& cg = Cgroups();
  const uint64_t allowed = Families({AF_INET, AF_INET6});
  const std::string mdwe_na = MdweUnavailableReason();
  std::printf("TG-COST-INFO rounds=%d calls=%d mdwe=%s\n", kRounds, kCalls,
              mdwe_na.empty() ? "available" : "unavailable");
  std::map<Key, std::vector<double>> samples;
  const std::pair<const char*, const std::string*> wheres[] = {{"inside", &cg.target},
                                                               {"outside", &cg.outside}};
  for (int r = 0; r < kRounds; ++r) {
    for (size_t k = 0; k < kConfigs.size(); ++k) {
      // Rotate which configuration goes first, so none is favoured by position.
      const Config c = kConfigs[(r + k) % kConfigs.size()];
      std::optional<Attachment> att;
      if (c == Config::kLsmCgroup || c == Config::kLsmGlobal) {
        std::string error;
        att = Attachment::Attach(
            cg.target, Mode::kEnforce, allowed, true, &error,
            c == Config::kLsmCgroup ? Mechanism::kLsmCgroup : Mechanism::kLsmGlobal);
        ASSERT_TRUE(att.has_value()) << ConfigId(c) << ": " << error;
      }
      for (const Op& op : kOps) {
        if (c == Config::kMdwe && (!op.memory || !mdwe_na.empty())) continue;
        for (const auto& [where, path] : wheres) {
          if (PerProcess(c) && std::string(where) == "outside") continue;
          ChildOptions o = c == Config::kSeccomp ? UnderSystemd(*path, allowed) : In(*path);
          const double ns = TimeInChild(o, c == Config::kMdwe, op.fn, kCalls * op.calls_factor);
          ASSERT_GT(ns, 0) << op.id << " " << ConfigId(c) << " " << where;
          samples[{op.id, c, where}].push_back(ns);
        }
      }
      att.reset();  // detach before the next configuration
    }
  }
  for (const Op& op : kOps) {
    std::printf("TG-COST-OP op=%s label=\"%s\" calls=%d\n", op.id, op.label,
                kCalls * op.calls_factor);
    for (Config c : kConfigs) {
      if (c == Config::kMdwe && !op.memory) {
        std::printf("TG-COST-NA op=%s config=mdwe reason=\"not a memory call\"\n", op.id);
        continue;
      }
      if (c == Config::kMdwe && !mdwe_na.empty()) {
        std::printf("TG-COST-NA op=%s config=mdwe reason=\"%s\"\n", op.id, mdwe_na.c_str());
        continue;
      }
      for (const auto& [where, path] : wheres) {
        auto it = samples.find({op.id, c, where});
        if (it == samples.end()) continue;
        const Summary s = Summarize(it->second);
        const Summary none = Summarize(samples.at({op.id, Config::kNone, where}));
        std::printf(
            "TG-COST op=%s config=%s where=%s median_ns=%.1f min_ns=%.1f max_ns=%.1f "
            "ratio=%.3f rounds=%zu\n",
            op.id, ConfigId(c), where, s.median, s.min, s.max, s.median / none.median,
            it->second.size());
      }
    }
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace tg::testing
