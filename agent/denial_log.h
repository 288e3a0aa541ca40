// Denials in the log without floods: a token bucket per policy lets a burst through, then a
// steady rate; what it holds back is counted and reported on the next line it lets through
// (or by Flush()). Time is passed in, so the limiter is tested with exact instants.
#ifndef TUNNELGUARD_AGENT_DENIAL_LOG_H_
#define TUNNELGUARD_AGENT_DENIAL_LOG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "policy.h"
#include "policy_events.h"

namespace tg {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // `burst` lines at once, refilled at `per_second` lines a second.
  RateLimiter(double burst, double per_second) : burst_(burst), rate_(per_second), tokens_(burst) {}

  // True when a line may be written now; false counts one suppressed line.
  bool Allow(Clock::time_point now);
  // Lines suppressed since the last call, reset to 0.
  uint64_t TakeSuppressed();

 private:
  double burst_;
  double rate_;
  double tokens_;
  bool started_ = false;
  Clock::time_point last_{};
  uint64_t suppressed_ = 0;
};

// "address_families: denied packet socket for pid 42 (curl) uid 0 in cgroup 1234"
std::string FormatDenial(const PolicyEvent& e);

class DenialLog {
 public:
  explicit DenialLog(double burst = 10, double per_second = 1) : burst_(burst), rate_(per_second) {}
  // Writes the event at notice level (warning for enforced denials) unless rate-limited.
  void Log(const PolicyEvent& e, RateLimiter::Clock::time_point now);
  // Reports the suppressed counts still pending.
  void Flush();

 private:
  double burst_;
  double rate_;
  std::map<PolicyKind, RateLimiter> limiters_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_DENIAL_LOG_H_
