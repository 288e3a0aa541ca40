// What the daemon attaches to the tunnel's cgroup, one concern each:
//   LatencyComponent — bpf/latency (sockops + cgroup_skb), re-attached to each new cgroup;
//   PolicyComponent  — pinned enforcement: adopted when already pinned for the cgroup
//                      (e.g. by ExecStartPre=tunnelguard attach), attached otherwise; its
//                      denial events go to the log (rate-limited), counters and the EventHub.
#ifndef TUNNELGUARD_AGENT_DAEMON_COMPONENTS_H_
#define TUNNELGUARD_AGENT_DAEMON_COMPONENTS_H_

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/daemon/daemon.h"
#include "agent/enforce/canary.h"
#include "agent/enforce/event_hub.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_control.h"
#include "agent/enforce/policy_status.h"
#include "agent/latency/latency.h"

namespace tg::daemon {

class LatencyComponent : public TargetComponent {
 public:
  static Result<std::unique_ptr<LatencyComponent>> Create(const std::vector<Upstream>& upstreams);
  const char* name() const override { return "latency"; }
  Status OnTarget(const Cgroup& cgroup) override;
  void OnShutdown(bool detach) override;
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables() override;
  std::vector<uint32_t> ProgramIds() const override { return probe_.ProgramIds(); }
  Result<LatencySnapshot> Snapshot() const { return probe_.Snapshot(); }

 private:
  explicit LatencyComponent(LatencyProbe probe) : probe_(std::move(probe)) {}
  LatencyProbe probe_;
};

class PolicyComponent : public TargetComponent {
 public:
  // `tunnel` names the tunnel in its events and denial lines (TargetSpec::name()).
  PolicyComponent(std::string tunnel, std::vector<PolicySpec> policies, std::string bpffs_dir,
                  std::optional<Mechanism> mechanism, EventHub* hub);
  ~PolicyComponent() override;
  const char* name() const override { return "enforcement"; }
  Status OnTarget(const Cgroup& cgroup) override;
  void OnShutdown(bool detach) override;
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables() override;
  // True when this component attached or adopted the current target's policies and one of
  // their pin directories has gone since (`tunnelguard detach`, or bpffs pins removed by hand):
  // the links went with the pins, so nothing is enforced until the daemon attaches again.
  bool PinsRemoved() const;
  // The programs behind the current target's pinned links (read from the pins each time).
  std::vector<uint32_t> ProgramIds() const override;

  // The current target's policies as the pins say (empty while there is no target).
  std::vector<PolicyStatus> Attached() const;
  // A copy: SetMode changes the modes while gRPC threads read them (Status()).
  std::vector<PolicySpec> configured() const;
  // Flips a policy's mode in the pinned config map (and for the next attach); returns the
  // previous mode's name.
  Result<std::string> SetMode(const std::string& policy, const std::string& mode);

  // Proof, not belief: runs the canary against the current target when `interval` has passed
  // since the last run (or a new target was adopted). A failed canary is logged at error level
  // with its likely cause. Called from the daemon's main loop.
  void MaybeRunCanary(std::chrono::steady_clock::duration interval);
  // The last canary's outcome (nullopt before the first run on the current target).
  std::optional<CanaryReport> LastCanary() const;

 private:
  void LogWhatStays(uint64_t cgroup_id) const;
  void StopEvents();
  void EventLoop(uint64_t cgroup_id);

  std::vector<PolicySpec> policies_;
  const std::string bpffs_dir_;
  const std::optional<Mechanism> mechanism_;  // nullopt: chosen by probing
  const std::string tunnel_;
  EventHub* hub_;
  std::atomic<uint64_t> cgroup_id_{0};
  mutable std::mutex mu_;  // guards policies_' modes and event_counts_
  std::map<std::pair<PolicyKind, Action>, uint64_t> event_counts_;
  std::atomic<bool> stop_events_{false};
  std::string target_path_;  // reopened for each canary run
  std::optional<CanaryReport> canary_;
  std::chrono::steady_clock::time_point next_canary_{};
  bool canary_unavailable_logged_ = false;
  std::thread events_;
};

}  // namespace tg::daemon

#endif  // TUNNELGUARD_AGENT_DAEMON_COMPONENTS_H_
