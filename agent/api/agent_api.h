// What the daemon offers its faces (gRPC today): reports built from the library's live
// state, and the few actions a client may ask for. Faces translate these structs and Errors
// into their own types once, at their boundary.
#ifndef TUNNELGUARD_AGENT_DAEMON_AGENT_API_H_
#define TUNNELGUARD_AGENT_DAEMON_AGENT_API_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/base/result.h"
#include "agent/enforce/canary.h"
#include "agent/enforce/event_hub.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_status.h"
#include "agent/latency/latency.h"
#include "agent/target/kernel_features.h"

namespace tg::daemon {

struct TargetReport {
  std::string target;  // as configured: unit name or cgroup path
  std::string cgroup;  // below the cgroup2 mount; empty while waiting
  uint64_t cgroup_id = 0;
  bool present = false;
};

// One guarded tunnel as the faces see it (the agent follows several).
struct TunnelStatusReport {
  TargetReport target;
  std::vector<PolicySpec> configured;  // what the agent was asked to enforce
  std::vector<PolicyStatus> policies;  // what the pins of the tunnel's current cgroup say
  std::string enforcement_problem;     // why enforcement is not in force ("" when it is)
  std::optional<CanaryReport> canary;  // the last proof (nullopt: not run on this cgroup yet)
};

struct StatusReport {
  std::string version;
  KernelFeatures features;
  double uptime_seconds = 0;
  std::vector<TunnelStatusReport> tunnels;  // in the order configured; never empty
};

struct TunnelStatsReport {
  std::string target;  // as configured
  LatencySnapshot latency;
  std::vector<double> request_rates;  // per upstream, requests/s over the last sampling window
  std::vector<PolicyStatus> policies;
};

struct StatsReport {
  std::vector<TunnelStatsReport> tunnels;  // in the order configured; never empty
  double uptime_seconds = 0;
};

// Who is asking, from the socket's peer credentials (never from the request).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
};

class AgentApi {
 public:
  virtual ~AgentApi() = default;
  virtual StatusReport Status() const = 0;
  virtual Result<StatsReport> Stats() const = 0;
  // Denial events from now on, filtered (empty strings match all; `target` is a tunnel's name).
  virtual std::shared_ptr<EventHub::Subscription> Subscribe(const std::string& policy,
                                                            const std::string& action,
                                                            const std::string& target) = 0;
  // Switches a policy's mode on the tunnel named `target` ("" = every tunnel); returns the
  // previous mode (of the first tunnel switched). Authorization is the face's job.
  virtual Result<std::string> SetMode(const std::string& policy, const std::string& mode,
                                      const std::string& target, const Caller& caller) = 0;
};

}  // namespace tg::daemon

#endif  // TUNNELGUARD_AGENT_DAEMON_AGENT_API_H_
