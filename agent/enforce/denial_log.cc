#include "agent/enforce/denial_log.h"

#include <algorithm>

#include "agent/base/log.h"

namespace tg {

void RateLimiter::Refill(Clock::time_point now) {
  if (started_) {
    const std::chrono::duration<double> dt = now - last_;
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, dt.count()) * rate_);
  }
  started_ = true;
  last_ = now;
}

bool RateLimiter::TryTake(Clock::time_point now) {
  Refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool RateLimiter::Allow(Clock::time_point now) {
  if (TryTake(now)) return true;
  ++suppressed_;
  return false;
}

uint64_t RateLimiter::TakeSuppressed() {
  const uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

std::string FormatDenial(const PolicyEvent& e) {
  // A family's denial names a socket ("unix socket"); unix-notify's reasons name the act.
  const bool families = e.policy == PolicyKind::kAddressFamilies && e.detail.rfind("unix_", 0) != 0;
  const std::string where = e.target.empty() ? fmt::format("cgroup {}", e.cgroup_id)
                                             : fmt::format("{} (cgroup {})", e.target, e.cgroup_id);
  return fmt::format("{}: {} {} for pid {} ({}) uid {} in {}", PolicyName(e.policy),
                     e.action == Action::kDeny              ? "denied"
                     : e.action == Action::kDeniedBySeccomp ? "denied by systemd's seccomp"
                                                            : "would deny",
                     families ? e.detail + " socket" : e.detail, e.pid, e.comm, e.uid, where);
}

void DenialLog::Log(const PolicyEvent& e, RateLimiter::Clock::time_point now) {
  auto it = policies_.try_emplace(e.policy, PerPolicy{RateLimiter(burst_, rate_), now}).first;
  it->second.last_event = now;
  RateLimiter& limiter = it->second.limiter;
  if (!limiter.Allow(now)) return;
  std::string line = FormatDenial(e);
  if (const uint64_t n = limiter.TakeSuppressed(); n > 0) {
    line += fmt::format(" ({} similar lines suppressed)", n);
  }
  if (e.action == Action::kDeny) {
    log::Warning("{}", line);
  } else {
    log::Notice("{}", line);
  }
}

void DenialLog::Tick(RateLimiter::Clock::time_point now, std::chrono::milliseconds quiet) {
  for (auto& [kind, p] : policies_) {
    if (p.limiter.suppressed() == 0 || now - p.last_event < quiet || !p.limiter.TryTake(now)) {
      continue;
    }
    log::Notice("{}: {} denial lines suppressed by rate limiting", PolicyName(kind),
                p.limiter.TakeSuppressed());
  }
}

void DenialLog::Flush() {
  for (auto& [kind, p] : policies_) {
    if (const uint64_t n = p.limiter.TakeSuppressed(); n > 0) {
      log::Notice("{}: {} denial lines suppressed by rate limiting", PolicyName(kind), n);
    }
  }
}

}  // namespace tg
