#include "agent/daemon/components.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "agent/base/log.h"
#include "agent/enforce/denial_log.h"
#include "agent/enforce/pin_layout.h"
#include "exporter/latency_collector.h"
#include "exporter/policy_collector.h"

namespace tg::daemon {

// --- latency ---------------------------------------------------------------------------------

Result<std::unique_ptr<LatencyComponent>> LatencyComponent::Create(
    const std::vector<Upstream>& upstreams) {
  auto probe = LatencyProbe::Load(upstreams);
  if (!probe.ok()) return probe.error();
  return std::unique_ptr<LatencyComponent>(new LatencyComponent(std::move(*probe)));
}

Status LatencyComponent::OnTarget(const Cgroup& cgroup) {
  if (auto st = probe_.Attach(cgroup.fd.get()); !st.ok()) return st;
  log::Info("latency: measuring {}", cgroup.relative);
  return Status::Ok();
}

void LatencyComponent::OnShutdown(bool /*detach*/) { probe_.Detach(); }

std::vector<std::shared_ptr<prometheus::Collectable>> LatencyComponent::Collectables() {
  return {std::make_shared<exporter::LatencyCollector>([this] { return probe_.Snapshot(); })};
}

// --- enforcement -----------------------------------------------------------------------------

PolicyComponent::PolicyComponent(std::string tunnel, std::vector<PolicySpec> policies,
                                 std::string bpffs_dir, std::optional<Mechanism> mechanism,
                                 EventHub* hub)
    : policies_(std::move(policies)),
      bpffs_dir_(std::move(bpffs_dir)),
      mechanism_(mechanism),
      tunnel_(std::move(tunnel)),
      hub_(hub) {}

PolicyComponent::~PolicyComponent() { StopEvents(); }

Status PolicyComponent::OnTarget(const Cgroup& cgroup) {
  StopEvents();
  cgroup_id_ = cgroup.id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    target_path_.clear();  // no canary until this target is attached
    canary_.reset();
  }
  // Adopt what `tunnelguard attach` (the tunnel's ExecStartPre=) or an earlier run pinned: no
  // second attachment, no gap, counters continue.
  bool adopted = false;
  if (auto pinned = ReadTargetStatus(bpffs_dir_, cgroup.id); pinned.ok()) {
    adopted = std::all_of(policies_.begin(), policies_.end(), [&](const PolicySpec& want) {
      return std::any_of(pinned->policies.begin(), pinned->policies.end(),
                         [&](const PolicyStatus& p) { return p.kind == want.kind && p.active; });
    });
  }
  if (adopted) {
    log::Notice("enforcement: adopted the pinned policies of {}", cgroup.relative);
  } else {
    AttachRequest req;
    {
      std::lock_guard<std::mutex> lock(mu_);
      req.policies = policies_;
    }
    req.bpffs_dir = bpffs_dir_;
    req.mechanism = mechanism_;
    auto attached = AttachPolicies(cgroup, req);
    if (!attached.ok()) {
      const std::string& m = attached.error().message;
      return MakeError(attached.error().kind, m.rfind("enforcement unavailable", 0) == 0
                                                  ? m
                                                  : "enforcement unavailable: " + m);
    }
    log::Notice("enforcement: attached to {} with {}", cgroup.relative,
                MechanismName(attached->mechanism));
  }
  stop_events_ = false;
  events_ = std::thread([this, id = cgroup.id] { EventLoop(id); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    target_path_ = cgroup.path;
    canary_.reset();
    next_canary_ = {};  // prove the new attachment at once
  }
  return Status::Ok();
}

void PolicyComponent::EventLoop(uint64_t cgroup_id) {
  DenialLog denial_log;
  auto stream = EventStream::Open(bpffs_dir_, cgroup_id, [&](PolicyEvent e) {
    e.target = tunnel_;
    denial_log.Log(e, RateLimiter::Clock::now());
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++event_counts_[{e.policy, e.action}];
    }
    if (hub_ != nullptr) hub_->Publish(e);
  });
  if (!stream.ok()) {
    log::Warning("enforcement: no denial events: {}", stream.error().message);
    return;
  }
  while (!stop_events_) {
    if (auto n = stream->Poll(200); !n.ok()) {
      log::Warning("enforcement: reading denial events: {}", n.error().message);
      return;
    }
    denial_log.Tick(RateLimiter::Clock::now());
  }
  denial_log.Flush();
}

void PolicyComponent::StopEvents() {
  stop_events_ = true;
  if (events_.joinable()) events_.join();
}

void PolicyComponent::OnShutdown(bool detach) {
  StopEvents();
  const uint64_t id = cgroup_id_;
  if (detach && id != 0) {
    if (auto st = DetachTarget(bpffs_dir_, id); !st.ok()) {
      log::Warning("enforcement: detach on exit: {}", st.error().message);
    } else {
      log::Notice("enforcement: detached (--detach-on-exit)");
    }
  } else if (id != 0) {
    LogWhatStays(id);
  }
}

// Says what really stays in force, read back from the pins (an attach that failed, or pins
// removed by hand, leave nothing: the message must not claim otherwise).
void PolicyComponent::LogWhatStays(uint64_t cgroup_id) const {
  std::string in_force;
  if (auto st = ReadTargetStatus(bpffs_dir_, cgroup_id); st.ok()) {
    for (const PolicyStatus& p : st->policies) {
      if (!p.active) continue;
      // An audit policy stays attached but denies nothing: say so rather than "in force".
      in_force += (in_force.empty() ? "" : ", ") + std::string(PolicyName(p.kind)) +
                  (p.mode == Mode::kAudit ? " (audit: counting, not denying)" : "");
    }
  }
  if (in_force.empty()) {
    log::Notice("enforcement: nothing left in force (no policy pinned for cgroup id {})",
                cgroup_id);
  } else {
    log::Notice("enforcement: left in force: {} (pinned under {})", in_force,
                TargetDir(bpffs_dir_, cgroup_id));
  }
}

void PolicyComponent::MaybeRunCanary(std::chrono::steady_clock::duration interval) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (cgroup_id_ == 0 || target_path_.empty() || now < next_canary_) return;
    next_canary_ = now + interval;
    path = target_path_;
  }
  auto target = OpenCgroup(path);
  if (!target.ok()) return;  // the tunnel went away; the main loop notices
  auto report = RunCanary(bpffs_dir_, *target);
  if (!report.ok()) {
    // E.g. under the shipped unit's ProtectControlGroups=yes the agent cannot make the canary
    // cgroup; the proof then comes from `attach` in the tunnel's ExecStartPre= (and
    // `tunnelguard canary`), whose result is pinned and exported as it is.
    if (!canary_unavailable_logged_) {
      log::Warning(
          "canary: cannot run from the agent ({}); reporting the pinned result of the "
          "last `tunnelguard attach`/`tunnelguard canary` instead",
          report.error().message);
      canary_unavailable_logged_ = true;
    }
    return;
  }
  if (!report->passed) {  // RunCanary logs a pass itself
    log::Error("canary FAILED: policies are not in force on {}: {}", path, report->cause);
    for (const CanaryCheck& c : report->checks) {
      log::Error("canary: {} {}: {}", PolicyName(c.kind), c.attempt, c.observed);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  canary_ = std::move(*report);
}

std::vector<PolicySpec> PolicyComponent::configured() const {
  std::lock_guard<std::mutex> lock(mu_);
  return policies_;
}

std::optional<CanaryReport> PolicyComponent::LastCanary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return canary_;
}

bool PolicyComponent::PinsRemoved() const {
  const uint64_t id = cgroup_id_.load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (id == 0 || target_path_.empty()) return false;  // not attached: nothing to lose
  }
  struct stat st {};
  return std::any_of(policies_.begin(), policies_.end(), [&](const PolicySpec& p) {
    return ::stat(PolicyDir(bpffs_dir_, id, p.kind).c_str(), &st) != 0 && errno == ENOENT;
  });
}

std::vector<uint32_t> PolicyComponent::ProgramIds() const {
  const uint64_t id = cgroup_id_.load();
  return id == 0 ? std::vector<uint32_t>{} : PinnedProgramIds(bpffs_dir_, id);
}

std::vector<PolicyStatus> PolicyComponent::Attached() const {
  const uint64_t id = cgroup_id_;
  if (id == 0) return {};
  auto st = ReadTargetStatus(bpffs_dir_, id);
  return st.ok() ? st->policies : std::vector<PolicyStatus>{};
}

Result<std::string> PolicyComponent::SetMode(const std::string& policy,
                                             const std::string& mode_name) {
  auto mode = ParseMode(mode_name);
  if (!mode.ok()) return mode.error();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(policies_.begin(), policies_.end(),
                         [&](const PolicySpec& p) { return PolicyName(p.kind) == policy; });
  if (it == policies_.end()) {
    return MakeError(
        ErrorKind::kNotFound,
        "no policy '" + policy + "' is configured; the agent enforces " +
            (policies_.empty()
                 ? std::string("none")
                 : std::string(PolicyName(policies_[0].kind)) +
                       (policies_.size() > 1 ? ", " + std::string(PolicyName(policies_[1].kind))
                                             : "")));
  }
  const std::string previous(ModeName(it->mode));
  if (const uint64_t id = cgroup_id_; id != 0) {
    if (auto st = tg::SetMode(bpffs_dir_, id, it->kind, *mode); !st.ok()) return st.error();
  }
  it->mode = *mode;
  return previous;
}

std::vector<std::shared_ptr<prometheus::Collectable>> PolicyComponent::Collectables() {
  auto read = [this] {
    exporter::PolicyMetricsInput in;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : policies_) in.configured.push_back(p.kind);
      in.events = event_counts_;
      if (canary_) {
        for (const CanaryCheck& c : canary_->checks) in.verified[c.kind] = c.passed;
      }
    }
    in.attached = Attached();
    for (const PolicyStatus& p : in.attached) {
      // No canary of our own yet (or none possible): the pinned result of the last one.
      if (in.verified.count(p.kind) == 0) in.verified[p.kind] = p.canary_result == "passed";
    }
    return in;
  };
  return {std::make_shared<exporter::PolicyCollector>(read)};
}

}  // namespace tg::daemon
