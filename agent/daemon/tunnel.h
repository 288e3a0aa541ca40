// One guarded tunnel inside `tunnelguard run`: its target follower, its own latency probe and
// policy component (own BPF maps, links, pins, event thread and canary), and the state its
// faces read. Tunnels share nothing but the event hub and the /metrics server, so one
// tunnel's restart, missing unit or failed attach never touches another's.
#ifndef TUNNELGUARD_AGENT_DAEMON_TUNNEL_H_
#define TUNNELGUARD_AGENT_DAEMON_TUNNEL_H_

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/api/agent_api.h"
#include "agent/daemon/components.h"
#include "agent/daemon/daemon.h"
#include "agent/target/target_follower.h"

namespace tg::daemon {

class Tunnel {
 public:
  Tunnel(TargetSpec spec, TunnelParts parts);
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  const std::string& name() const { return follower_.spec().name(); }

  // One turn of the main loop: attach to a new incarnation of the cgroup, say when it is gone,
  // put removed pins back, prove enforcement when the canary is due. True when what the tunnel
  // guards changed (for systemd's STATUS=).
  bool Step(std::chrono::steady_clock::duration canary_interval);
  void Shutdown(bool detach);

  int watch_fd() const { return follower_.watch_fd(); }
  void DrainWatch() const { follower_.DrainWatch(); }
  // "guarding /system.slice/x.service" or "waiting for x.service".
  std::string Summary() const;

  // Collectables of this tunnel's components; with `label`, each series gets unit="NAME".
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables(bool label);
  std::vector<uint32_t> ProgramIds() const;

  // For the API (gRPC threads).
  TunnelStatusReport Status() const;
  Result<TunnelStatsReport> Stats() const;
  void SampleRates();  // the window request rates are computed over (main loop, every few s)
  Result<std::string> SetMode(const std::string& policy, const std::string& mode);
  bool has_policy() const { return parts_.policy != nullptr; }

 private:
  void OnNewCgroup(const Cgroup& cg, bool recreated);
  void PutPinsBack(const Cgroup& cg);
  std::vector<TargetComponent*> Components() const;

  TargetFollower follower_;
  TunnelParts parts_;
  struct Sample {
    std::chrono::steady_clock::time_point time{};
    LatencySnapshot snapshot;
  };
  mutable std::mutex mu_;  // guards target_, problem_ and the samples
  TargetReport target_;
  std::string problem_;
  Sample previous_, latest_;
};

}  // namespace tg::daemon

#endif  // TUNNELGUARD_AGENT_DAEMON_TUNNEL_H_
