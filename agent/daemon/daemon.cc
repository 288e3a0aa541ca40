#include "agent/daemon/daemon.h"

#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <mutex>
#include <string_view>

#include "agent/api/agent_api.h"
#include "agent/base/log.h"
#include "agent/base/unique_fd.h"
#include "agent/base/version.h"
#include "agent/daemon/components.h"
#include "agent/daemon/notify.h"
#include "agent/grpc/service.h"
#include "agent/grpc/unix_server.h"
#include "agent/target/systemd_unit.h"
#include "exporter/bpf_stats_collector.h"
#include "exporter/build_info.h"
#include "exporter/metrics_server.h"

namespace tg::daemon {
namespace {

// SIGTERM and SIGINT arrive on a signalfd, so the loop sleeps in poll() and never runs code in
// a signal handler.
Result<UniqueFd> BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return FromErrno(errno, "sigprocmask");
  UniqueFd fd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return FromErrno(errno, "signalfd");
  return fd;
}

// Wakes the loop the moment a cgroup appears in (or leaves) the directory that holds the target
// — its slice — so a restarted tunnel is re-attached within milliseconds of systemd creating
// its cgroup, not at the next poll. mkdir(2) on cgroupfs goes through the VFS, which reports it.
class ParentWatch {
 public:
  ParentWatch() : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}
  void Watch(const std::string& dir) {
    if (!fd_.valid() || dir.empty() || dir == dir_) return;
    if (wd_ >= 0) ::inotify_rm_watch(fd_.get(), wd_);
    wd_ = ::inotify_add_watch(fd_.get(), dir.c_str(), IN_CREATE | IN_DELETE | IN_ONLYDIR);
    dir_ = wd_ >= 0 ? dir : "";
  }
  int fd() const { return fd_.get(); }
  void Drain() const {
    char buf[4096];
    while (::read(fd_.get(), buf, sizeof(buf)) > 0) {
    }
  }

 private:
  UniqueFd fd_;
  int wd_ = -1;
  std::string dir_;
};

std::string Parent(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? "" : path.substr(0, slash);
}

// Where the target's cgroup will appear: known from its last sight, or from --cgroup.
std::string TargetParent(const DaemonOptions& o, const Result<Cgroup>& cg) {
  if (cg.ok()) return Parent(cg->path);
  if (o.cgroup.empty()) return "";
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return "";
  const bool absolute = o.cgroup.rfind(*mount + "/", 0) == 0;
  return Parent(absolute ? o.cgroup : *mount + (o.cgroup[0] == '/' ? "" : "/") + o.cgroup);
}

// How often an API socket that could not be created for lack of space is tried again.
constexpr std::chrono::seconds kApiRetry{5};

std::string TargetName(const DaemonOptions& o) { return o.cgroup.empty() ? o.unit : o.cgroup; }

// A unit whose ExecStartPre= commands run (SubState "start-pre") is not a target yet: that is
// the fail-closed drop-in's gate, `tunnelguard attach` inside the unit's cgroup, which needs
// AF_UNIX (D-Bus for the unit's policy, journald for its output) until it has pinned the
// policies itself. Attaching from here in that window refused the gate's own sockets and
// failed the tunnel's start (seen in vm.systemd_e2e); the daemon adopts the gate's pins after.
// systemd creates the cgroup and forks the gate *before* it moves the unit to start-pre, so
// the states a (re)starting unit passes through on the way are waited out too (a restart after
// kill -9: the daemon attached while the unit still read "auto-restart", and the gate's own
// pinning then failed with EEXIST).
Result<Cgroup> Resolve(const DaemonOptions& o) {
  if (!o.cgroup.empty()) return OpenCgroup(o.cgroup);
  auto unit = SystemdUnit::Find(o.unit);
  if (!unit.ok()) return unit.error();
  static constexpr std::string_view kNotStartedYet[] = {"start-pre", "condition", "auto-restart",
                                                        "dead", "failed"};
  if (auto sub = unit->SubState();
      sub.ok() && std::find(std::begin(kNotStartedYet), std::end(kNotStartedYet), *sub) !=
                      std::end(kNotStartedYet)) {
    return MakeError(ErrorKind::kNotFound,
                     o.unit + " is " + *sub +
                         " (not started yet; its ExecStartPre= attach gate runs first); "
                         "adopting its policies once it has started");
  }
  auto path = unit->ControlGroup();
  if (!path.ok()) return path.error();
  return OpenCgroup(*path);
}

// The daemon's live state as its faces see it. Written by the main loop, read by gRPC threads.
class DaemonApi : public AgentApi {
 public:
  DaemonApi(std::string target, KernelFeatures features, DaemonParts* parts)
      : features_(std::move(features)), started_(std::chrono::steady_clock::now()), parts_(parts) {
    target_.target = std::move(target);
  }
  void SetTarget(const Cgroup* cg, std::string problem) {
    std::lock_guard<std::mutex> lock(mu_);
    target_.present = cg != nullptr;
    target_.cgroup = cg != nullptr ? cg->relative : "";
    target_.cgroup_id = cg != nullptr ? cg->id : 0;
    problem_ = std::move(problem);
  }
  // Called every few seconds by the main loop: the window request rates are computed over.
  void SampleRates() {
    if (!parts_->latency) return;
    auto snap = parts_->latency->Snapshot();
    if (!snap.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    previous_ = std::move(latest_);
    latest_ = {std::chrono::steady_clock::now(), std::move(*snap)};
  }
  StatusReport Status() const override {
    StatusReport r;
    r.version = kVersion;
    r.features = features_;
    r.uptime_seconds = Uptime();
    if (parts_->policy) {
      r.configured = parts_->policy->configured();
      r.policies = parts_->policy->Attached();
      r.canary = parts_->policy->LastCanary();
    }
    std::lock_guard<std::mutex> lock(mu_);
    r.target = target_;
    r.enforcement_problem = problem_;
    return r;
  }
  Result<StatsReport> Stats() const override {
    StatsReport r;
    r.uptime_seconds = Uptime();
    if (parts_->latency) {
      auto snap = parts_->latency->Snapshot();
      if (!snap.ok()) return snap.error();
      r.latency = std::move(*snap);
    }
    if (parts_->policy) r.policies = parts_->policy->Attached();
    std::lock_guard<std::mutex> lock(mu_);
    const double dt = std::chrono::duration<double>(latest_.time - previous_.time).count();
    for (size_t i = 0; i < r.latency.upstreams.size(); ++i) {
      double rate = 0;
      if (dt > 0 && i < latest_.snapshot.upstreams.size() &&
          i < previous_.snapshot.upstreams.size()) {
        rate = static_cast<double>(latest_.snapshot.upstreams[i].requests -
                                   previous_.snapshot.upstreams[i].requests) /
               dt;
      }
      r.request_rates.push_back(rate);
    }
    return r;
  }
  std::shared_ptr<EventHub::Subscription> Subscribe(const std::string& policy,
                                                    const std::string& action) override {
    return parts_->events->Subscribe([policy, action](const PolicyEvent& e) {
      return (policy.empty() || PolicyName(e.policy) == policy) &&
             (action.empty() || ActionName(e.action) == action);
    });
  }
  Result<std::string> SetMode(const std::string& policy, const std::string& mode,
                              const Caller& /*caller*/) override {
    if (!parts_->policy) {
      return MakeError(ErrorKind::kNotFound,
                       "this agent enforces no policy (started with "
                       "--families off --wx-memory off)");
    }
    return parts_->policy->SetMode(policy, mode);
  }

 private:
  double Uptime() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  struct Sample {
    std::chrono::steady_clock::time_point time{};
    LatencySnapshot snapshot;
  };
  const KernelFeatures features_;
  const std::chrono::steady_clock::time_point started_;
  DaemonParts* parts_;
  mutable std::mutex mu_;
  TargetReport target_;
  std::string problem_;
  Sample previous_, latest_;
};

}  // namespace

int Run(const DaemonOptions& options, DaemonParts parts) {
  if (!parts.events) parts.events = std::make_shared<EventHub>();
  std::vector<TargetComponent*> components;
  if (parts.latency) components.push_back(parts.latency.get());
  if (parts.policy) components.push_back(parts.policy.get());
  UniqueFd bpf_stats;
  if (options.bpf_stats) {
    auto fd = exporter::EnableBpfStats();
    if (!fd.ok()) {
      log::Error("{}", fd.error().message);
      return 1;
    }
    bpf_stats = std::move(*fd);
    log::Info("kernel BPF run-time statistics on (--bpf-stats)");
  }
  auto signals = BlockStopSignals();
  if (!signals.ok()) {
    log::Error("cannot set up signal handling: {}", signals.error().message);
    return 1;
  }
  auto server = exporter::MetricsServer::Start(options.metrics_listen);
  if (!server.ok()) {
    log::Error("{}", server.error().message);
    return 1;
  }
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
  collectables.push_back(std::make_shared<exporter::BuildInfoCollector>());
  collectables.push_back(std::make_shared<exporter::BpfStatsCollector>([&components] {
    std::vector<uint32_t> ids;
    for (const auto* c : components) {
      const auto held = c->ProgramIds();
      ids.insert(ids.end(), held.begin(), held.end());
    }
    return ids;
  }));
  for (auto* c : components) {
    for (auto& collectable : c->Collectables()) collectables.push_back(collectable);
  }
  for (auto& c : collectables) (*server)->Register(c);
  log::Info("serving metrics on {}", (*server)->url());

  const std::string target = TargetName(options);
  DaemonApi api(target, ProbeKernelFeatures(), &parts);
  grpcapi::PeerRegistry peers;
  grpcapi::AgentService service(&api, &peers);
  std::unique_ptr<grpcapi::UnixServer> grpc_server;
  // A full file system under the socket (e.g. /run filled up) is not a reason to stop guarding:
  // say so once, with the fix, keep enforcing and serving /metrics, and retry.
  bool api_pending = false;
  std::string api_problem;  // logged once per distinct reason
  auto next_api_try = std::chrono::steady_clock::now();
  auto start_api = [&]() -> bool {
    auto started = grpcapi::UnixServer::Start(options.grpc_socket, &service, &peers);
    if (started.ok()) {
      grpc_server = std::move(*started);
      if (api_pending) {
        log::Notice("serving the API on {} (there is room on its file system again)",
                    options.grpc_socket);
      } else {
        log::Info("serving the API on {}", options.grpc_socket);
      }
      api_pending = false;
      return true;
    }
    const int err = started.error().sys_errno;
    if (!api_pending && err != ENOSPC && err != EDQUOT) {
      log::Error("{}", started.error().message);
      return false;  // a wrong path or permissions at start: refuse
    }
    if (started.error().message != api_problem) {
      api_problem = started.error().message;
      if (err == ENOSPC || err == EDQUOT) {
        log::Error(
            "{}: the file system holding {} is full (no free space or inodes): free some there "
            "or choose another --grpc-socket; enforcing and serving metrics meanwhile, the API "
            "is retried every {} s",
            api_problem, Parent(options.grpc_socket), kApiRetry.count());
      } else {
        log::Error("{}; the API is retried every {} s", api_problem, kApiRetry.count());
      }
    }
    api_pending = true;
    next_api_try = std::chrono::steady_clock::now() + kApiRetry;
    return true;
  };
  if (!options.grpc_socket.empty() && !start_api()) return 1;
  const auto watchdog = WatchdogPingInterval();
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(options.poll_interval);
  if (watchdog.count() > 0) {
    period = std::min(period, std::chrono::duration_cast<std::chrono::milliseconds>(watchdog));
    log::Info("systemd watchdog: pinging every {} ms", period.count());
  }

  uint64_t current_id = 0;  // 0 while the target is missing
  uint64_t last_id = 0;     // the last incarnation seen, to tell a re-created cgroup
  std::string last_wait_reason;
  bool ready = false;
  auto next_sample = std::chrono::steady_clock::now();
  std::string status;
  ParentWatch parent_watch;
  for (;;) {
    auto cg = Resolve(options);
    parent_watch.Watch(TargetParent(options, cg));
    if (cg.ok() && cg->id != current_id) {
      if (last_id != 0) {
        log::Notice("target {} re-created: cgroup {} (id {}, was {})", target, cg->relative, cg->id,
                    last_id);
      } else {
        log::Notice("target {} is cgroup {} (id {})", target, cg->relative, cg->id);
      }
      std::string problem;
      for (auto* c : components) {
        if (auto st = c->OnTarget(*cg); !st.ok()) {
          log::Error("{}: {}", c->name(), st.error().message);
          if (c == parts.policy.get()) problem = st.error().message;
        }
      }
      // Loading the BPF objects parsed the kernel's BTF (several MiB, freed by libbpf once
      // loaded); hand those heap pages back instead of keeping them resident for good.
      ::malloc_trim(0);
      current_id = last_id = cg->id;
      api.SetTarget(&*cg, problem);
      last_wait_reason.clear();
      status = "guarding " + cg->relative + "; metrics on " + (*server)->url();
      NotifyStatus(status);
    } else if (!cg.ok() && cg.error().message != last_wait_reason) {
      // Not there (yet, or any more): the tunnel is stopped or restarting. Say it once.
      last_wait_reason = cg.error().message;
      if (current_id != 0) log::Warning("target {} is gone; waiting for it to return", target);
      log::Notice("waiting for target {}: {}", target, last_wait_reason);
      current_id = 0;
      api.SetTarget(nullptr, "");
      status = "waiting for " + target + "; metrics on " + (*server)->url();
      NotifyStatus(status);
    }
    if (!ready) {
      // Ready once serving and attached to the target if it exists. A tunnel that has not
      // started yet must not block us: it is ordered after this service.
      NotifyReady(status);
      ready = true;
    }
    if (watchdog.count() > 0) NotifyWatchdog();
    if (parts.policy && current_id != 0 && cg.ok() && parts.policy->PinsRemoved()) {
      // Enforcement lives in the pins; with them gone the tunnel is unguarded. Put it back:
      // who wants it off for good stops the agent first (its unit says so too).
      log::Warning(
          "enforcement: the pins of {} were removed while the agent runs (tunnelguard detach, "
          "or bpffs cleared); attaching again — stop tunnelguard.service first to detach for "
          "good",
          cg->relative);
      if (auto st = parts.policy->OnTarget(*cg); !st.ok()) {
        log::Error("{}: {}", parts.policy->name(), st.error().message);
      }
    }
    if (parts.policy && current_id != 0) parts.policy->MaybeRunCanary(options.canary_interval);
    if (api_pending && std::chrono::steady_clock::now() >= next_api_try) start_api();
    if (const auto now = std::chrono::steady_clock::now(); now >= next_sample) {
      api.SampleRates();
      next_sample = now + std::chrono::seconds(5);
    }

    struct pollfd pfds[2] = {{signals->get(), POLLIN, 0}, {parent_watch.fd(), POLLIN, 0}};
    const int n = ::poll(pfds, parent_watch.fd() >= 0 ? 2 : 1, static_cast<int>(period.count()));
    if (n > 0) {
      if (pfds[1].revents != 0) parent_watch.Drain();  // re-resolve at once
      struct signalfd_siginfo si {};
      if ((pfds[0].revents & POLLIN) != 0 &&
          ::read(signals->get(), &si, sizeof(si)) == sizeof(si)) {
        log::Notice("received signal {}, stopping", si.ssi_signo);
        break;
      }
    } else if (n < 0 && errno != EINTR) {
      log::Error("poll: {}", std::strerror(errno));
      break;
    }
  }
  NotifyStopping();
  grpc_server.reset();  // no API calls into components being shut down
  for (auto* c : components) c->OnShutdown(options.detach_on_exit);
  return 0;
}

}  // namespace tg::daemon
