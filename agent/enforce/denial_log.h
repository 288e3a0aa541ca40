// Denials in the log without floods: a token bucket per policy lets a burst through, then a
// steady rate; what it holds back is counted and reported on the next line it lets through,
// by Tick() once the denials have stopped for a second, or by Flush(). Every denial is thus
// either a line or counted in one. Time is passed in, so the limiter is tested with exact
// instants.
#ifndef TUNNELGUARD_AGENT_DENIAL_LOG_H_
#define TUNNELGUARD_AGENT_DENIAL_LOG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "agent/enforce/policy.h"
#include "agent/enforce/policy_events.h"

namespace tg {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // `burst` lines at once, refilled at `per_second` lines a second.
  RateLimiter(double burst, double per_second) : burst_(burst), rate_(per_second), tokens_(burst) {}

  // True when a line may be written now; false counts one suppressed line.
  bool Allow(Clock::time_point now);
  // Takes a token when one is there, without counting anything when none is.
  bool TryTake(Clock::time_point now);
  uint64_t suppressed() const { return suppressed_; }
  // Lines suppressed since the last call, reset to 0.
  uint64_t TakeSuppressed();

 private:
  void Refill(Clock::time_point now);

  double burst_;
  double rate_;
  double tokens_;
  bool started_ = false;
  Clock::time_point last_{};
  uint64_t suppressed_ = 0;
};

// "address_families: denied packet socket for pid 42 (curl) uid 0 in cgroup 1234", or
// "… in cloudflared-tunnel.service (cgroup 1234)" when the event names its tunnel.
std::string FormatDenial(const PolicyEvent& e);

class DenialLog {
 public:
  explicit DenialLog(double burst = 10, double per_second = 1) : burst_(burst), rate_(per_second) {}
  // Writes the event at notice level (warning for enforced denials) unless rate-limited.
  void Log(const PolicyEvent& e, RateLimiter::Clock::time_point now);
  // Call now and then (the event loop does after every poll): once a policy's denials have
  // stopped for `quiet`, writes one line with the count still held back, token permitting.
  void Tick(RateLimiter::Clock::time_point now,
            std::chrono::milliseconds quiet = std::chrono::seconds(1));
  // Reports the suppressed counts still pending.
  void Flush();

 private:
  struct PerPolicy {
    RateLimiter limiter;
    RateLimiter::Clock::time_point last_event{};
  };
  double burst_;
  double rate_;
  std::map<PolicyKind, PerPolicy> policies_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_DENIAL_LOG_H_
