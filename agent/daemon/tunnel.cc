#include "agent/daemon/tunnel.h"

#include <malloc.h>

#include "agent/base/log.h"
#include "exporter/labelled_collectable.h"

namespace tg::daemon {

Tunnel::Tunnel(TargetSpec spec, TunnelParts parts)
    : follower_(std::move(spec)), parts_(std::move(parts)) {
  target_.target = follower_.spec().name();
}

std::vector<TargetComponent*> Tunnel::Components() const {
  std::vector<TargetComponent*> out;
  if (parts_.latency) out.push_back(parts_.latency.get());
  if (parts_.policy) out.push_back(parts_.policy.get());
  return out;
}

bool Tunnel::Step(std::chrono::steady_clock::duration canary_interval) {
  bool changed = false;
  switch (follower_.Poll()) {
    case TargetFollower::Change::kFound:
    case TargetFollower::Change::kRecreated:
      OnNewCgroup(*follower_.current(), follower_.previous_id() != 0);
      changed = true;
      break;
    case TargetFollower::Change::kLost: {
      bool was_present = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        was_present = target_.present;
        target_ = TargetReport{};
        target_.target = name();
        problem_.clear();
      }
      if (was_present) log::Warning("target {} is gone; waiting for it to return", name());
      log::Notice("waiting for target {}: {}", name(), follower_.wait_reason());
      changed = true;
      break;
    }
    case TargetFollower::Change::kNone:
      break;
  }
  if (const auto& cg = follower_.current(); cg && parts_.policy) {
    if (parts_.policy->PinsRemoved()) PutPinsBack(*cg);
    parts_.policy->MaybeRunCanary(canary_interval);
  }
  return changed;
}

void Tunnel::OnNewCgroup(const Cgroup& cg, bool recreated) {
  if (recreated) {
    log::Notice("target {} re-created: cgroup {} (id {}, was {})", name(), cg.relative, cg.id,
                follower_.previous_id());
  } else {
    log::Notice("target {} is cgroup {} (id {})", name(), cg.relative, cg.id);
  }
  std::string problem;
  for (auto* c : Components()) {
    if (auto st = c->OnTarget(cg); !st.ok()) {
      log::Error("{}: {}", c->name(), st.error().message);
      if (c == parts_.policy.get()) problem = st.error().message;
    }
  }
  // Loading the BPF objects parsed the kernel's BTF (several MiB, freed by libbpf once
  // loaded); hand those heap pages back instead of keeping them resident for good.
  ::malloc_trim(0);
  std::lock_guard<std::mutex> lock(mu_);
  target_ = {.target = name(), .cgroup = cg.relative, .cgroup_id = cg.id, .present = true};
  problem_ = std::move(problem);
}

// Enforcement lives in the pins; with them gone the tunnel is unguarded. Put it back: who wants
// it off for good stops the agent first (its unit says so too).
void Tunnel::PutPinsBack(const Cgroup& cg) {
  log::Warning(
      "enforcement: the pins of {} were removed while the agent runs (tunnelguard detach, "
      "or bpffs cleared); attaching again — stop tunnelguard.service first to detach for "
      "good",
      cg.relative);
  if (auto st = parts_.policy->OnTarget(cg); !st.ok()) {
    log::Error("{}: {}", parts_.policy->name(), st.error().message);
  }
}

void Tunnel::Shutdown(bool detach) {
  for (auto* c : Components()) c->OnShutdown(detach);
}

std::string Tunnel::Summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return target_.present ? "guarding " + target_.cgroup : "waiting for " + target_.target;
}

std::vector<std::shared_ptr<prometheus::Collectable>> Tunnel::Collectables(bool label) {
  std::vector<std::shared_ptr<prometheus::Collectable>> out;
  for (auto* c : Components()) {
    for (auto& collectable : c->Collectables()) {
      out.push_back(label ? std::make_shared<exporter::LabelledCollectable>(std::move(collectable),
                                                                            "unit", name())
                          : std::move(collectable));
    }
  }
  return out;
}

std::vector<uint32_t> Tunnel::ProgramIds() const {
  std::vector<uint32_t> ids;
  for (const auto* c : Components()) {
    const auto held = c->ProgramIds();
    ids.insert(ids.end(), held.begin(), held.end());
  }
  return ids;
}

TunnelStatusReport Tunnel::Status() const {
  TunnelStatusReport r;
  if (parts_.policy) {
    r.configured = parts_.policy->configured();
    r.policies = parts_.policy->Attached();
    r.canary = parts_.policy->LastCanary();
  }
  std::lock_guard<std::mutex> lock(mu_);
  r.target = target_;
  r.enforcement_problem = problem_;
  return r;
}

void Tunnel::SampleRates() {
  if (!parts_.latency) return;
  auto snap = parts_.latency->Snapshot();
  if (!snap.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  previous_ = std::move(latest_);
  latest_ = {std::chrono::steady_clock::now(), std::move(*snap)};
}

Result<TunnelStatsReport> Tunnel::Stats() const {
  TunnelStatsReport r;
  r.target = name();
  if (parts_.latency) {
    auto snap = parts_.latency->Snapshot();
    if (!snap.ok()) return snap.error();
    r.latency = std::move(*snap);
  }
  if (parts_.policy) r.policies = parts_.policy->Attached();
  std::lock_guard<std::mutex> lock(mu_);
  const double dt = std::chrono::duration<double>(latest_.time - previous_.time).count();
  const auto& now = latest_.snapshot.upstreams;
  const auto& before = previous_.snapshot.upstreams;
  for (size_t i = 0; i < r.latency.upstreams.size(); ++i) {
    const bool known = dt > 0 && i < now.size() && i < before.size();
    r.request_rates.push_back(known ? static_cast<double>(now[i].requests - before[i].requests) / dt
                                    : 0.0);
  }
  return r;
}

Result<std::string> Tunnel::SetMode(const std::string& policy, const std::string& mode) {
  if (!parts_.policy) {
    return MakeError(ErrorKind::kNotFound,
                     "this agent enforces no policy (started with "
                     "--families off --wx-memory off)");
  }
  return parts_.policy->SetMode(policy, mode);
}

}  // namespace tg::daemon
