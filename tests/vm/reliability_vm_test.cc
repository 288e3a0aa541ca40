// The daemon under load and churn with real enforcement, in a BPF-LSM kernel:
//  - a denial flood (socket(AF_UNIX) and W+X mmap from two processes) counted exactly, every
//    denial an event received or a counted drop, a bounded log that accounts for all of them,
//    GetStatus answering throughout, RSS flat;
//  - `tunnelguard run` SIGKILLed at 20 random points while a canary in the tunnel's cgroup keeps
//    trying both forbidden acts: none ever succeeds, metrics resume after each restart, the
//    counters end exactly equal to the canary's own count, and the kernel holds exactly the
//    pinned objects afterwards (the same ids as after the first kill);
//  - the tunnel's cgroup re-created 20 times under enforcement: each incarnation enforced and
//    counted, old pins pruned, the program count constant, nothing left after detach.
// (persistence_test.cc covers `attach` killed during its work and adoption by `attach`; here it
// is the daemon.) tg-flood is the forbidden-attempt loop and its own ground truth.
#include <bpf/bpf.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "agent/base/unique_fd.h"
#include "agent_output.h"
#include "cli_runner.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "responsiveness.h"
#include "subprocess.h"
#include "test_support.h"
#include "tunnelguard/v1/agent.grpc.pb.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace v1 = tunnelguard::v1;

constexpr char kSocket[] = "/run/tg-reliability.sock";
constexpr int kMetricsPort = 9614;
constexpr char kLog[] = "/tmp/agent.log";

// Every BPF program, map and link id in the kernel now.
struct KernelIds {
  std::set<uint32_t> progs, maps, links;
  bool operator==(const KernelIds&) const = default;
};

KernelIds AllIds() {
  KernelIds k;
  uint32_t id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) k.progs.insert(id);
  id = 0;
  while (bpf_map_get_next_id(id, &id) == 0) k.maps.insert(id);
  id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) k.links.insert(id);
  return k;
}

std::string Describe(const KernelIds& k) {
  auto list = [](const std::set<uint32_t>& s) {
    std::string out;
    for (uint32_t v : s) out += std::to_string(v) + " ";
    return out;
  };
  return "progs [" + list(k.progs) + "] maps [" + list(k.maps) + "] links [" + list(k.links) + "]";
}

uint64_t IdOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_ino;
}

// Entries of a directory, "." and ".." excluded (-1 when it cannot be read).
int Entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  }
  ::closedir(d);
  return n;
}

class ReliabilityVm : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    ::mkdir("/run", 0755);
    // Each test starts from nothing pinned (an earlier test in this boot may have left pins).
    RunCli(TG_CLI_PATH, {"detach", "--all"});
    baseline_ = AllIds();
  }
  void TearDown() override {
    agent_.reset();
    RunCli(TG_CLI_PATH, {"detach", "--all"});
  }
  void StartAgent(bool detach_on_exit) {
    agent_.reset();
    std::vector<std::string> argv = {
        TG_CLI_PATH,        "run",
        "--cgroup",         Cgroups().target,
        "--grpc-socket",    kSocket,
        "--metrics-listen", "127.0.0.1:" + std::to_string(kMetricsPort),
        "--upstream",       "web=127.0.0.1:1"};
    if (detach_on_exit) argv.push_back("--detach-on-exit");
    agent_.emplace(Subprocess::Start(argv, {{}, kLog, ""}));
  }
  std::unique_ptr<v1::Agent::Stub> Stub() {
    return v1::Agent::NewStub(
        grpc::CreateChannel(std::string("unix:") + kSocket, grpc::InsecureChannelCredentials()));
  }
  grpc::Status Status(v1::GetStatusResponse* r, milliseconds deadline = milliseconds(2000)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return Stub()->GetStatus(&ctx, v1::GetStatusRequest(), r);
  }
  // Both policies attached with lsm_cgroup and able to deny, on the target as it is now.
  bool Enforced(milliseconds timeout) {
    v1::GetStatusResponse r;
    return WaitFor(
        [&] {
          if (!Status(&r).ok() || !r.target_present() || r.cgroup_id() != IdOf(Cgroups().target) ||
              r.policies_size() != 2) {
            return false;
          }
          for (const auto& p : r.policies()) {
            if (!p.active() || !p.enforced() || p.mechanism() != "lsm_cgroup") return false;
          }
          return true;
        },
        timeout);
  }
  // policy name -> its stats, empty when the call failed.
  std::map<std::string, v1::PolicyStats> Policies(milliseconds deadline = milliseconds(2000)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    v1::GetStatsResponse r;
    std::map<std::string, v1::PolicyStats> out;
    if (!Stub()->GetStats(&ctx, v1::GetStatsRequest(), &r).ok()) return out;
    for (const auto& p : r.policies()) out[p.name()] = p;
    return out;
  }

  // Waits until the agent's deny counters are exactly `sockets` (address_families) and `mmaps`
  // (wx_memory); `p` gets the last stats read.
  ::testing::AssertionResult DenialsAre(uint64_t sockets, uint64_t mmaps,
                                        std::map<std::string, v1::PolicyStats>* p) {
    if (WaitFor(
            [&] {
              *p = Policies();
              return p->count("address_families") && p->count("wx_memory") &&
                     (*p)["address_families"].decisions().deny() == sockets &&
                     (*p)["wx_memory"].decisions().deny() == mmaps;
            },
            seconds(10))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "agent: " << (*p)["address_families"].DebugString()
                                         << (*p)["wx_memory"].DebugString();
  }

  KernelIds baseline_;
  std::optional<Subprocess> agent_;
};

nlohmann::json FloodResult(const std::string& path) {
  const std::string text = ReadFile(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception&) {
    ADD_FAILURE() << "tg-flood wrote no result to " << path << ": " << text;
    return nlohmann::json::object();
  }
}

TEST_F(ReliabilityVm, DenialFloodInEnforceModeCountedExactly) {
  const int flood_seconds = 5;  // TCG runs 3-5x slower than native; 5 s is enough of a flood
  StartAgent(/*detach_on_exit=*/true);
  ASSERT_TRUE(Enforced(seconds(60))) << ReadFile(kLog);
  ASSERT_TRUE(HttpGet(kMetricsPort, "/metrics").has_value());
  ASSERT_FALSE(Policies().empty());
  const long rss_before = RssKib(agent_->pid());
  auto probe_stub = Stub();
  GetStatusPoller probe(probe_stub.get());
  auto flood =
      Subprocess::Start({TG_FLOOD, "--cgroup", Cgroups().target, "--seconds",
                         std::to_string(flood_seconds), "--processes", "2", "--op", "both"},
                        {{}, "/tmp/flood.json", ""});
  long rss_max = rss_before;
  while (flood.Running()) {
    rss_max = std::max(rss_max, RssKib(agent_->pid()));
    std::this_thread::sleep_for(milliseconds(250));
  }
  ASSERT_EQ(flood.Wait(seconds(5)), 0) << ReadFile("/tmp/flood.json");
  const auto j = FloodResult("/tmp/flood.json");
  const uint64_t sockets = j["socket"]["attempts"], mmaps = j["mmap"]["attempts"];
  EXPECT_EQ(j["successes"], 0) << "a forbidden act succeeded under enforcement: " << j.dump();
  EXPECT_EQ(j["socket"]["policy_errno"], sockets) << "EAFNOSUPPORT every time: " << j.dump();
  EXPECT_EQ(j["mmap"]["policy_errno"], mmaps) << "EPERM every time: " << j.dump();
  const double rate = static_cast<double>(sockets + mmaps) / j["seconds"].get<double>();

  std::map<std::string, v1::PolicyStats> p;
  EXPECT_TRUE(DenialsAre(sockets, mmaps, &p)) << "flooder: " << sockets << " sockets, " << mmaps;
  EXPECT_EQ(p["address_families"].by_detail().at("unix").deny(), sockets);

  // Every denial is an event the agent received or a counted drop, per policy.
  std::string body;
  double received = 0, dropped = 0;
  auto settled = [&](const std::string& policy, uint64_t want) {
    return WaitFor(
        [&] {
          body = HttpGet(kMetricsPort, "/metrics").value_or("");
          received =
              Metric(body, "tunnelguard_events_total{policy=\"" + policy + "\",action=\"deny\"}");
          dropped = Metric(body, "tunnelguard_events_dropped_total{policy=\"" + policy +
                                     "\",reason=\"ring_buffer_full\"}");
          return received + dropped == static_cast<double>(want);
        },
        seconds(15));
  };
  EXPECT_TRUE(settled("address_families", sockets))
      << received << " + " << dropped << " != " << sockets << "\n"
      << body;
  const double fam_received = received, fam_dropped = dropped;
  EXPECT_TRUE(settled("wx_memory", mmaps))
      << received << " + " << dropped << " != " << mmaps << "\n"
      << body;
  EXPECT_EQ(p["address_families"].events_dropped(), static_cast<uint64_t>(fam_dropped));

  // The log: bounded per policy (a burst of 10, then 1 line a second) and, once the flood has
  // been over for a second, accounting for every denial the agent received.
  const uint64_t all_received = static_cast<uint64_t>(fam_received + received);
  std::pair<int, uint64_t> logged;
  EXPECT_TRUE(WaitFor(
      [&] {
        logged = LoggedDenials(ReadFile(kLog));
        return logged.second == all_received;
      },
      seconds(10)))
      << "the log accounts for " << logged.second << " of " << all_received << "\n"
      << ReadFile(kLog);
  EXPECT_LE(logged.first, 2 * (10 + flood_seconds + 10)) << ReadFile(kLog);

  probe.Stop();
  EXPECT_EQ(probe.failures(), 0) << probe.first_failure();
  // Under TCG the guest runs 3-5x slower than native and both vCPUs share one host thread
  // (and the host is shared too): GetStatus must keep answering, the slowest within 1 s; the
  // strict 100 ms figure is held on the host (e2e.ReliabilityTest.DenialFlood...), here it is
  // measured and printed.
  EXPECT_LT(probe.max_ms(), 1000.0) << "slowest GetStatus of " << probe.calls();
  EXPECT_GE(probe.calls(), flood_seconds * 5) << "the poller was starved";
  EXPECT_LT(rss_max - rss_before, 4 * 1024) << "RSS " << rss_before << " -> " << rss_max << " KiB";
  std::printf(
      "vm flood (%s): %llu socket(AF_UNIX) + %llu W+X mmap in %.1f s = %.0f/s, %llu succeeded; "
      "agent counted %llu + %llu; events received/dropped: address_families %.0f/%.0f, wx_memory "
      "%.0f/%.0f; log %d denial lines; GetStatus %d calls, %d >= 100 ms, p50 %.1f ms, p99 "
      "%.1f ms, max %.1f ms; RSS %ld -> max %ld KiB\n",
      std::getenv("TG_VM_KERNEL") ? std::getenv("TG_VM_KERNEL") : "?",
      static_cast<unsigned long long>(sockets), static_cast<unsigned long long>(mmaps),
      j["seconds"].get<double>(), rate,
      static_cast<unsigned long long>(j["successes"].get<uint64_t>()),
      static_cast<unsigned long long>(p["address_families"].decisions().deny()),
      static_cast<unsigned long long>(p["wx_memory"].decisions().deny()), fam_received, fam_dropped,
      received, dropped, logged.first, probe.calls(), probe.slow(), probe.Quantile(0.5),
      probe.Quantile(0.99), probe.max_ms(), rss_before, rss_max);
}

TEST_F(ReliabilityVm, DaemonKilledTwentyTimesEnforcementNeverLapses) {
  const std::string& target = Cgroups().target;
  // The first agent attaches and pins; what the kernel holds once it is gone is the pinned set.
  StartAgent(/*detach_on_exit=*/false);
  ASSERT_TRUE(Enforced(seconds(60))) << ReadFile(kLog);
  agent_->Signal(SIGKILL);
  ASSERT_TRUE(agent_->Wait(seconds(10)).has_value());
  KernelIds pinned;
  // Freeing after the last reference is deferred (RCU): wait for the set to settle.
  ASSERT_TRUE(WaitFor(
      [&] {
        const KernelIds a = AllIds();
        std::this_thread::sleep_for(milliseconds(200));
        pinned = AllIds();
        return a == pinned;
      },
      seconds(10)));
  ASSERT_FALSE(pinned.links.empty()) << "nothing pinned: " << Describe(pinned);

  // The canary: both forbidden acts in a loop in the tunnel's cgroup, until told to stop.
  auto canary = Subprocess::Start({TG_FLOOD, "--cgroup", target, "--op", "both"},
                                  {{}, "/tmp/canary.json", ""});
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> early(0, 1200), late(0, 500);
  uint64_t last_deny = 0;
  int resumed = 0;
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("kill " + std::to_string(i + 1));
    StartAgent(false);
    int d = 0;
    if (i % 2 == 0) {
      d = early(rng);  // anywhere in start-up (which takes ~0.3-1 s under TCG) or just after
    } else {
      // Metrics resume: the restarted agent serves the pinned counters, still going up.
      std::map<std::string, v1::PolicyStats> p;
      ASSERT_TRUE(WaitFor(
          [&] {
            p = Policies();
            return p.count("address_families") &&
                   p["address_families"].decisions().deny() > last_deny;
          },
          seconds(30)))
          << "metrics did not resume after kill " << i << "\n"
          << ReadFile(kLog);
      last_deny = p["address_families"].decisions().deny();
      ++resumed;
      d = late(rng);
    }
    std::this_thread::sleep_for(milliseconds(d));
    agent_->Signal(SIGKILL);
    ASSERT_TRUE(agent_->Wait(seconds(10)).has_value());
    ASSERT_TRUE(canary.Running()) << "the canary died";
  }
  // A last agent: metrics resume; then the canary stops and the pinned counters must equal its
  // own count exactly — nothing lost or double-counted across 20 kills.
  StartAgent(false);
  std::map<std::string, v1::PolicyStats> p;
  ASSERT_TRUE(WaitFor(
      [&] {
        p = Policies();
        return p.count("address_families") && p["address_families"].decisions().deny() > last_deny;
      },
      seconds(30)))
      << ReadFile(kLog);
  canary.Signal(SIGTERM);
  ASSERT_EQ(canary.Wait(seconds(10)), 0);
  const auto j = FloodResult("/tmp/canary.json");
  const uint64_t sockets = j["socket"]["attempts"], mmaps = j["mmap"]["attempts"];
  EXPECT_EQ(j["successes"], 0) << "a forbidden act succeeded while the agent was killed: "
                               << j.dump();
  EXPECT_GT(sockets + mmaps, 1000u) << j.dump();
  EXPECT_TRUE(DenialsAre(sockets, mmaps, &p)) << "canary: " << sockets << " sockets, " << mmaps;
  EXPECT_TRUE(HttpGet(kMetricsPort, "/metrics").has_value());
  agent_->Signal(SIGTERM);  // a clean stop leaves enforcement pinned
  ASSERT_EQ(agent_->Wait(seconds(10)), 0);
  agent_.reset();

  // Nothing leaked: exactly the pinned objects, the same ids as after the first kill; no canary
  // cgroup left behind in the target.
  KernelIds now;
  EXPECT_TRUE(WaitFor([&] { return (now = AllIds()) == pinned; }, seconds(10)))
      << "after: " << Describe(now) << "\npinned: " << Describe(pinned);
  DIR* d = ::opendir(target.c_str());
  int children = 0;
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    struct stat st {};
    const std::string path = target + "/" + e->d_name;
    if (e->d_name[0] != '.' && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ++children;
  }
  if (d) ::closedir(d);
  EXPECT_EQ(children, 0) << "a cgroup left behind under " << target;
  // Still enforced with no agent running.
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), EAFNOSUPPORT);
  EXPECT_EQ(RunInChild(In(target), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
            EPERM);
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"detach", "--cgroup", target}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return (now = AllIds()) == baseline_; }, seconds(10)))
      << "after detach: " << Describe(now) << "\nbefore: " << Describe(baseline_);
  std::printf(
      "vm churn (%s): 21 SIGKILLs (%d after metrics resumed), canary %llu socket + %llu W+X "
      "mmap attempts, %llu succeeded; pinned set %zu progs / %zu maps / %zu links unchanged\n",
      std::getenv("TG_VM_KERNEL") ? std::getenv("TG_VM_KERNEL") : "?", resumed,
      static_cast<unsigned long long>(sockets), static_cast<unsigned long long>(mmaps),
      static_cast<unsigned long long>(j["successes"].get<uint64_t>()), pinned.progs.size(),
      pinned.maps.size(), pinned.links.size());
}

TEST_F(ReliabilityVm, TunnelCgroupRecreatedTwentyTimesUnderEnforcement) {
  const std::string& target = Cgroups().target;
  StartAgent(/*detach_on_exit=*/true);
  ASSERT_TRUE(Enforced(seconds(60))) << ReadFile(kLog);
  auto probe_stub = Stub();
  GetStatusPoller probe(probe_stub.get());
  KernelIds first;
  ASSERT_TRUE(WaitFor([&] { return !(first = AllIds()).links.empty(); }, seconds(5)));
  std::set<uint64_t> ids = {IdOf(target)};
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("incarnation " + std::to_string(i + 1));
    // EBUSY while the agent's canary (proving the new attachment) has its child cgroup in the
    // target; systemd removes a stopped unit's sub-cgroups itself, a plain rmdir must wait.
    EXPECT_TRUE(WaitFor([&] { return ::rmdir(target.c_str()) == 0; }, seconds(5)))
        << std::strerror(errno);
    v1::GetStatusResponse r;
    ASSERT_TRUE(WaitFor([&] { return Status(&r).ok() && !r.target_present(); }, seconds(10)));
    ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
    ids.insert(IdOf(target));
    ASSERT_TRUE(Enforced(seconds(30))) << ReadFile(kLog);
    EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }),
              EAFNOSUPPORT);
    EXPECT_EQ(RunInChild(In(target), [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }),
              EPERM);
    EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_INET, SOCK_STREAM, 0); }), 0);
    // This incarnation's counters: exactly our attempts (the agent's canary counts apart).
    std::map<std::string, v1::PolicyStats> p;
    EXPECT_TRUE(WaitFor(
        [&] {
          p = Policies();
          return p.count("address_families") && p.count("wx_memory") &&
                 p["address_families"].decisions().deny() == 1 &&
                 p["wx_memory"].decisions().deny() == 1;
        },
        seconds(5)))
        << p["address_families"].DebugString() << p["wx_memory"].DebugString();
    // Old incarnations' pins are pruned and their objects freed: the same number each time.
    KernelIds now;
    EXPECT_TRUE(WaitFor(
        [&] {
          now = AllIds();
          return now.progs.size() == first.progs.size() && now.links.size() == first.links.size();
        },
        seconds(10)))
        << "first: " << Describe(first) << "\nnow: " << Describe(now);
  }
  EXPECT_EQ(ids.size(), 21u) << "each mkdir made a new cgroup";
  EXPECT_EQ(Entries(kBpffsDir), 1) << "pins of removed incarnations are pruned";
  probe.Stop();
  EXPECT_EQ(probe.failures(), 0) << probe.first_failure();
  EXPECT_LT(probe.max_ms(), 1000.0) << "slowest GetStatus of " << probe.calls();
  agent_->Signal(SIGTERM);  // --detach-on-exit
  ASSERT_EQ(agent_->Wait(seconds(10)), 0);
  agent_.reset();
  KernelIds now;
  EXPECT_TRUE(WaitFor([&] { return (now = AllIds()) == baseline_; }, seconds(10)))
      << "after: " << Describe(now) << "\nbefore: " << Describe(baseline_);
  std::printf(
      "vm recreate (%s): 20 incarnations enforced and counted; GetStatus %d calls, %d >= 100 "
      "ms, p99 %.1f ms, max %.1f ms\n",
      std::getenv("TG_VM_KERNEL") ? std::getenv("TG_VM_KERNEL") : "?", probe.calls(), probe.slow(),
      probe.Quantile(0.99), probe.max_ms());
}

}  // namespace
}  // namespace tg::testing
