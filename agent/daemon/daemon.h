// `tunnelguard run`: the long-running agent. For each configured tunnel it finds the cgroup
// (waiting for it when the tunnel has not started yet — the agent is ordered before it) and
// follows it across restarts (daemon/tunnel.h: one Tunnel each, independent of the others);
// it serves /metrics and the API, and speaks systemd's notify protocol. What a tunnel attaches
// to its cgroup is a list of TargetComponents, so each concern (latency, enforcement) plugs in
// alone.
#ifndef TUNNELGUARD_AGENT_DAEMON_DAEMON_H_
#define TUNNELGUARD_AGENT_DAEMON_DAEMON_H_

#include <prometheus/collectable.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/event_hub.h"
#include "agent/target/cgroup.h"
#include "agent/target/target_follower.h"

namespace tg::daemon {

// One concern attached to the target cgroup. OnTarget() is called with each new incarnation of
// the cgroup (first sight, and after the tunnel's cgroup was removed and re-created).
class TargetComponent {
 public:
  virtual ~TargetComponent() = default;
  virtual const char* name() const = 0;
  virtual Status OnTarget(const Cgroup& cgroup) = 0;
  // Called once on shutdown; `detach` asks to remove pinned enforcement too.
  virtual void OnShutdown(bool detach) = 0;
  // Collectables this component exports (read at scrape time).
  virtual std::vector<std::shared_ptr<prometheus::Collectable>> Collectables() = 0;
  // Kernel ids of the BPF programs this component holds now (loaded or adopted from pins):
  // tunnelguard_bpf_* report these and their maps, not every tg_* program on the host.
  // Called from the scrape thread.
  virtual std::vector<uint32_t> ProgramIds() const = 0;
};

struct DaemonOptions {
  std::vector<TargetSpec> targets;  // --unit / --cgroup, at least one, names distinct
  std::string metrics_listen;
  std::string grpc_socket;                   // "" = no API socket
  bool bpf_stats = false;                    // turn on kernel BPF run-time statistics while running
  std::chrono::seconds canary_interval{60};  // how often enforcement is proven again
  bool detach_on_exit = false;
  // --histogram-buckets-per-decade: the classic `le` density of the exported histograms
  // (ExportBoundsSeconds; native buckets, when Prometheus asks for them, are always schema 5).
  int buckets_per_decade = 0;
  // How often the target is re-resolved to notice a re-created cgroup.
  std::chrono::milliseconds poll_interval{500};
};

class LatencyComponent;
class PolicyComponent;

// What one tunnel runs: each part optional (nullptr = that concern is off).
struct TunnelParts {
  std::unique_ptr<LatencyComponent> latency;
  std::unique_ptr<PolicyComponent> policy;
};

// What the daemon runs: the parts of each tunnel, made once per configured target (so no
// tunnel shares BPF maps, links or threads with another), and the event hub they all feed.
struct DaemonParts {
  std::function<TunnelParts(const TargetSpec& target, EventHub* events)> make_tunnel;
  std::shared_ptr<EventHub> events;  // fed by each tunnel's policy, read by the API
};

// Runs until SIGTERM/SIGINT. Returns the process exit code.
int Run(const DaemonOptions& options, DaemonParts parts);

}  // namespace tg::daemon

#endif  // TUNNELGUARD_AGENT_DAEMON_DAEMON_H_
