#include "agent/daemon/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>
#include <mutex>
#include <string_view>

#include "agent/api/agent_api.h"
#include "agent/base/log.h"
#include "agent/base/unique_fd.h"
#include "agent/base/version.h"
#include "agent/daemon/components.h"
#include "agent/daemon/notify.h"
#include "agent/daemon/tunnel.h"
#include "agent/face/api_face.h"
#include "agent/face/metrics_face.h"
#include "agent/grpc/service.h"
#include "agent/grpc/unix_server.h"
#include "agent/latency/histogram.h"
#include "exporter/bpf_stats_collector.h"
#include "exporter/build_info.h"
#include "exporter/exposition.h"
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

std::string Parent(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? "" : path.substr(0, slash);
}

// How often an API socket that could not be created for lack of space is tried again.
constexpr std::chrono::seconds kApiRetry{5};

using Tunnels = std::vector<std::unique_ptr<Tunnel>>;

// The daemon's live state as its faces see it: each tunnel answers for itself (its own lock),
// so a gRPC thread never waits on the main loop.
class DaemonApi : public AgentApi {
 public:
  DaemonApi(KernelFeatures features, const Tunnels* tunnels, EventHub* events)
      : features_(std::move(features)),
        started_(std::chrono::steady_clock::now()),
        tunnels_(tunnels),
        events_(events) {}
  StatusReport Status() const override {
    StatusReport r;
    r.version = kVersion;
    r.features = features_;
    r.uptime_seconds = Uptime();
    for (const auto& t : *tunnels_) r.tunnels.push_back(t->Status());
    return r;
  }
  Result<StatsReport> Stats() const override {
    StatsReport r;
    r.uptime_seconds = Uptime();
    for (const auto& t : *tunnels_) {
      auto stats = t->Stats();
      if (!stats.ok()) return stats.error();
      r.tunnels.push_back(std::move(*stats));
    }
    return r;
  }
  std::shared_ptr<EventHub::Subscription> Subscribe(const std::string& policy,
                                                    const std::string& action,
                                                    const std::string& target) override {
    return events_->Subscribe([policy, action, target](const PolicyEvent& e) {
      return (policy.empty() || PolicyName(e.policy) == policy) &&
             (action.empty() || ActionName(e.action) == action) &&
             (target.empty() || e.target == target);
    });
  }
  Result<std::string> SetMode(const std::string& policy, const std::string& mode,
                              const std::string& target, const Caller& /*caller*/) override;

 private:
  double Uptime() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  const KernelFeatures features_;
  const std::chrono::steady_clock::time_point started_;
  const Tunnels* tunnels_;
  EventHub* events_;
};

// Every tunnel (target "") or the one named; the first error stops, naming the tunnel when
// there are several.
Result<std::string> DaemonApi::SetMode(const std::string& policy, const std::string& mode,
                                       const std::string& target, const Caller& /*caller*/) {
  std::optional<std::string> previous;
  std::string names;
  for (const auto& t : *tunnels_) {
    names += (names.empty() ? "" : ", ") + t->name();
    if (!target.empty() && t->name() != target) continue;
    auto was = t->SetMode(policy, mode);
    if (!was.ok()) {
      if (tunnels_->size() == 1) return was.error();
      return MakeError(was.error().kind, t->name() + ": " + was.error().message);
    }
    if (!previous) previous = std::move(*was);
  }
  if (!previous) {
    return MakeError(ErrorKind::kNotFound,
                     "no tunnel '" + target + "' is guarded; the agent guards " + names);
  }
  return *previous;
}

// systemd's STATUS= line: what each tunnel is doing, and where the metrics are.
std::string StatusLine(const Tunnels& tunnels, const std::string& url) {
  std::string out;
  for (const auto& t : tunnels) out += t->Summary() + "; ";
  return out + "metrics on " + url;
}

// The gRPC API on its unix socket. A full file system under the socket (e.g. /run filled up)
// is not a reason to stop guarding: say so once, with the fix, keep enforcing and serving
// /metrics, and retry.
class ApiSocket {
 public:
  ApiSocket(std::string path, grpcapi::AgentService* service)
      : path_(std::move(path)), service_(service) {}
  // False when the socket cannot be served for a reason other than space: refuse the start.
  bool Start();
  void MaybeRetry() {
    if (pending_ && std::chrono::steady_clock::now() >= next_try_) Start();
  }
  void Stop() { server_.reset(); }

 private:
  const std::string path_;
  grpcapi::AgentService* service_;
  std::unique_ptr<face::ApiFace> server_;
  bool pending_ = false;
  std::string problem_;  // logged once per distinct reason
  std::chrono::steady_clock::time_point next_try_{};
};

bool ApiSocket::Start() {
  auto started = face::ApiFace::Start(path_, service_);
  if (started.ok()) {
    server_ = std::move(*started);
    if (pending_) log::Notice("{}: there is room on its file system again", path_);
    pending_ = false;
    return true;
  }
  const int err = started.error().sys_errno;
  const bool no_space = err == ENOSPC || err == EDQUOT;
  if (!pending_ && !no_space) {
    log::Error("{}", started.error().message);
    return false;  // a wrong path or permissions at start: refuse
  }
  if (started.error().message != problem_) {
    problem_ = started.error().message;
    if (no_space) {
      log::Error(
          "{}: the file system holding {} is full (no free space or inodes): free some there "
          "or choose another --grpc-socket; enforcing and serving metrics meanwhile, the API "
          "is retried every {} s",
          problem_, Parent(path_), kApiRetry.count());
    } else {
      log::Error("{}; the API is retried every {} s", problem_, kApiRetry.count());
    }
  }
  pending_ = true;
  next_try_ = std::chrono::steady_clock::now() + kApiRetry;
  return true;
}

// /metrics: build info, the BPF cost of every program the tunnels hold, and each tunnel's own
// series (labelled unit="NAME" when there are several, so one tunnel reads as it always did).
std::vector<std::shared_ptr<prometheus::Collectable>> Collectables(const Tunnels& tunnels) {
  std::vector<std::shared_ptr<prometheus::Collectable>> out;
  out.push_back(std::make_shared<exporter::BuildInfoCollector>());
  out.push_back(std::make_shared<exporter::BpfStatsCollector>([&tunnels] {
    std::vector<uint32_t> ids;
    for (const auto& t : tunnels) {
      const auto held = t->ProgramIds();
      ids.insert(ids.end(), held.begin(), held.end());
    }
    return ids;
  }));
  for (const auto& t : tunnels) {
    for (auto& c : t->Collectables(tunnels.size() > 1)) out.push_back(std::move(c));
  }
  return out;
}

// Sleeps until a stop signal, a change next to one of the targets, or `period`. True: stop.
bool Wait(int signal_fd, const Tunnels& tunnels, std::chrono::milliseconds period) {
  std::vector<struct pollfd> pfds = {{signal_fd, POLLIN, 0}};
  for (const auto& t : tunnels) {
    if (t->watch_fd() >= 0) pfds.push_back({t->watch_fd(), POLLIN, 0});
  }
  const int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(period.count()));
  if (n < 0 && errno != EINTR) {
    log::Error("poll: {}", std::strerror(errno));
    return true;
  }
  if (n <= 0) return false;
  for (const auto& t : tunnels) t->DrainWatch();  // re-resolve at once
  struct signalfd_siginfo si {};
  if ((pfds[0].revents & POLLIN) != 0 && ::read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
    log::Notice("received signal {}, stopping", si.ssi_signo);
    return true;
  }
  return false;
}

// The main loop's period: the poll interval, or shorter to ping systemd's watchdog in time.
std::chrono::milliseconds LoopPeriod(const DaemonOptions& options) {
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(options.poll_interval);
  if (const auto watchdog = WatchdogPingInterval(); watchdog.count() > 0) {
    period = std::min(period, std::chrono::duration_cast<std::chrono::milliseconds>(watchdog));
    log::Info("systemd watchdog: pinging every {} ms", period.count());
  }
  return period;
}

// Two targets naming one cgroup (a unit and its own cgroup path, say) would adopt the same pins
// and split its denial events between two readers: each tunnel should be named once.
void WarnSharedCgroups(const Tunnels& tunnels) {
  std::map<uint64_t, std::string> seen;  // cgroup id → the first tunnel there
  for (const auto& t : tunnels) {
    const TargetReport target = t->Status().target;
    if (!target.present) continue;
    const auto [it, first] = seen.emplace(target.cgroup_id, t->name());
    if (!first) {
      log::Warning("tunnels {} and {} are the same cgroup {}: name each tunnel once", it->second,
                   t->name(), target.cgroup);
    }
  }
}

// Follows every tunnel until SIGTERM/SIGINT: each Step is one tunnel's own business.
void Loop(const DaemonOptions& options, const Tunnels& tunnels, int signal_fd,
          ApiSocket* api_socket, const std::string& url) {
  const auto period = LoopPeriod(options);
  const bool watchdog = WatchdogPingInterval().count() > 0;
  const auto canary_interval =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.canary_interval);
  bool ready = false;
  auto next_sample = std::chrono::steady_clock::now();
  do {
    bool changed = false;
    for (const auto& t : tunnels) changed = t->Step(canary_interval) || changed;
    if (changed) {
      NotifyStatus(StatusLine(tunnels, url));
      WarnSharedCgroups(tunnels);
    }
    if (!ready) {
      // Ready once serving and attached to the targets that exist. A tunnel that has not
      // started yet must not block us: it is ordered after this service.
      NotifyReady(StatusLine(tunnels, url));
      ready = true;
    }
    if (watchdog) NotifyWatchdog();
    api_socket->MaybeRetry();
    if (const auto now = std::chrono::steady_clock::now(); now >= next_sample) {
      for (const auto& t : tunnels) t->SampleRates();
      next_sample = now + std::chrono::seconds(5);
    }
  } while (!Wait(signal_fd, tunnels, period));
}

}  // namespace

int Run(const DaemonOptions& options, DaemonParts parts) {
  if (!parts.events) parts.events = std::make_shared<EventHub>();
  Tunnels tunnels;
  for (const TargetSpec& spec : options.targets) {
    tunnels.push_back(std::make_unique<Tunnel>(spec, parts.make_tunnel(spec, parts.events.get())));
  }
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
  const auto collectables = Collectables(tunnels);
  const std::vector<double> bounds = ExportBoundsSeconds(options.buckets_per_decade);
  auto server = face::MetricsFace::Start(
      options.metrics_listen, [&collectables, &bounds](exporter::Exposition format) {
        return exporter::SerializeCollectables(collectables, format, bounds);
      });
  if (!server.ok()) {
    log::Error("{}", server.error().message);
    return 1;
  }
  log::Info("serving metrics on {} (parsed by a confined process, pid {})", (*server)->url(),
            (*server)->pid());

  DaemonApi api(ProbeKernelFeatures(), &tunnels, parts.events.get());
  grpcapi::AgentService service(&api, nullptr);  // the API face's calls name their caller
  ApiSocket api_socket(options.grpc_socket, &service);
  if (!options.grpc_socket.empty() && !api_socket.Start()) return 1;
  Loop(options, tunnels, signals->get(), &api_socket, (*server)->url());
  NotifyStopping();
  api_socket.Stop();  // no API calls into components being shut down
  for (const auto& t : tunnels) t->Shutdown(options.detach_on_exit);
  return 0;
}

}  // namespace tg::daemon
