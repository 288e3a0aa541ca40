#include "daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>

#include "build_info.h"
#include "log.h"
#include "metrics_server.h"
#include "notify.h"
#include "unique_fd.h"

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

std::string TargetName(const DaemonOptions& o) { return o.cgroup.empty() ? o.unit : o.cgroup; }

Result<Cgroup> Resolve(const DaemonOptions& o) {
  return o.cgroup.empty() ? OpenUnitCgroup(o.unit) : OpenCgroup(o.cgroup);
}

}  // namespace

int Run(const DaemonOptions& options, std::vector<std::unique_ptr<TargetComponent>> components) {
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
  for (auto& c : components) {
    for (auto& collectable : c->Collectables()) collectables.push_back(collectable);
  }
  for (auto& c : collectables) (*server)->Register(c);
  log::Info("serving metrics on {}", (*server)->url());

  const std::string target = TargetName(options);
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
  std::string status;
  for (;;) {
    auto cg = Resolve(options);
    if (cg.ok() && cg->id != current_id) {
      if (last_id != 0) {
        log::Notice("target {} re-created: cgroup {} (id {}, was {})", target, cg->relative, cg->id,
                    last_id);
      } else {
        log::Notice("target {} is cgroup {} (id {})", target, cg->relative, cg->id);
      }
      for (auto& c : components) {
        if (auto st = c->OnTarget(*cg); !st.ok()) {
          log::Error("{}: {}", c->name(), st.error().message);
        }
      }
      current_id = last_id = cg->id;
      last_wait_reason.clear();
      status = "guarding " + cg->relative + "; metrics on " + (*server)->url();
      NotifyStatus(status);
    } else if (!cg.ok() && cg.error().message != last_wait_reason) {
      // Not there (yet, or any more): the tunnel is stopped or restarting. Say it once.
      last_wait_reason = cg.error().message;
      if (current_id != 0) log::Warning("target {} is gone; waiting for it to return", target);
      log::Notice("waiting for target {}: {}", target, last_wait_reason);
      current_id = 0;
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

    struct pollfd pfd = {signals->get(), POLLIN, 0};
    const int n = ::poll(&pfd, 1, static_cast<int>(period.count()));
    if (n > 0) {
      struct signalfd_siginfo si {};
      if (::read(signals->get(), &si, sizeof(si)) == sizeof(si)) {
        log::Notice("received signal {}, stopping", si.ssi_signo);
        break;
      }
    } else if (n < 0 && errno != EINTR) {
      log::Error("poll: {}", std::strerror(errno));
      break;
    }
  }
  NotifyStopping();
  for (auto& c : components) c->OnShutdown(options.detach_on_exit);
  return 0;
}

}  // namespace tg::daemon
