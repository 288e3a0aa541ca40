#include "agent/grpc/service.h"

#include <fmt/format.h>
#include <time.h>

#include <chrono>

#include "agent/base/clock.h"
#include "agent/base/log.h"
#include "agent/latency/histogram.h"

namespace tg::grpcapi {

namespace v1 = tunnelguard::v1;

grpc::Status ToGrpcStatus(const Error& error) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case ErrorKind::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case ErrorKind::kUnsupported:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case ErrorKind::kPermission:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case ErrorKind::kInternal:
      break;
  }
  return {code, error.message};
}

namespace {

void FillDecisions(const Decisions& d, v1::Decisions* out) {
  out->set_allow(d.allow);
  out->set_deny(d.deny);
  out->set_would_deny(d.would_deny);
  out->set_denied_by_seccomp(d.denied_by_seccomp);
  out->set_exempt_setup(d.exempt_setup);
}

void FillFine(const FineHistogram& h, v1::FineHistogram* out) {
  out->set_count(h.count);
  out->set_sum_ns(h.sum_ns);
  out->set_max_ns(h.max_ns);
  for (uint64_t b : h.buckets) out->add_buckets(b);
}

// Each counter by its field name (kUpstreamCounters), so a new counter needs no code here.
void SetCounters(const UpstreamStats& u, v1::UpstreamStats* out) {
  const auto* reflection = out->GetReflection();
  for (const auto& c : kUpstreamCounters) {
    if (c.proto_field == nullptr) continue;
    reflection->SetUInt64(out, out->GetDescriptor()->FindFieldByName(c.proto_field), u.*c.member);
  }
}

void FillQuantiles(const FineHistogram& h, v1::Quantiles* out) {
  out->set_p50(QuantileSeconds(h, 0.5));
  out->set_p90(QuantileSeconds(h, 0.9));
  out->set_p99(QuantileSeconds(h, 0.99));
  out->set_max(static_cast<double>(h.max_ns) / 1e9);
}

bool KnownPolicy(const std::string& p) {
  return p.empty() || p == "address_families" || p == "wx_memory";
}

bool KnownAction(const std::string& a) {
  return a.empty() || a == "deny" || a == "would_deny" || a == "allow" || a == "denied_by_seccomp";
}

}  // namespace

namespace {

void FillPolicyStatus(const daemon::TunnelStatusReport& t, const PolicySpec& spec,
                      v1::TunnelStatus* out) {
  auto* p = out->add_policies();
  p->set_name(std::string(PolicyName(spec.kind)));
  p->set_mode(std::string(ModeName(spec.mode)));
  p->set_canary("not_run");
  for (const PolicyStatus& st : t.policies) {
    if (st.kind != spec.kind) continue;
    if (st.mode) p->set_mode(std::string(ModeName(*st.mode)));
    if (st.mechanism) p->set_mechanism(std::string(MechanismName(*st.mechanism)));
    p->set_active(st.active);
    p->set_enforced(st.active && st.mode == Mode::kEnforce && st.mechanism != Mechanism::kObserve);
    p->set_canary(st.canary_result == "never" ? "not_run" : st.canary_result);
    p->set_allowed_families(st.allowed_families);
    p->set_notify_socket(st.notify_socket);
    FillDecisions(st.decisions, p->mutable_decisions());
    out->set_events_dropped(out->events_dropped() + st.events_dropped);
  }
  if (t.canary) {
    for (const CanaryCheck& c : t.canary->checks) {
      if (c.kind != spec.kind) continue;
      p->set_canary(c.passed ? "passed" : "failed");
      p->set_canary_detail(c.attempt + ": " + c.observed +
                           (c.passed ? "" : "; " + t.canary->cause));
    }
  }
  if (!p->active()) p->set_canary_detail(t.enforcement_problem);
}

void FillTunnelStatus(const daemon::TunnelStatusReport& t, v1::TunnelStatus* out) {
  out->set_target(t.target.target);
  out->set_cgroup(t.target.cgroup);
  out->set_cgroup_id(t.target.cgroup_id);
  out->set_target_present(t.target.present);
  for (const PolicySpec& spec : t.configured) FillPolicyStatus(t, spec, out);
}

void FillUpstream(const UpstreamStats& u, double rate, bool histogram, v1::UpstreamStats* out) {
  out->set_name(u.name);
  for (const auto& a : u.addresses) out->add_addresses(a);
  out->set_address(fmt::format("{}", fmt::join(u.addresses, ",")));
  SetCounters(u, out);
  out->set_open_connections(u.open_connections());
  out->set_request_rate(rate);
  FillQuantiles(u.request_latency, out->mutable_request_latency_seconds());
  FillQuantiles(u.connect_latency, out->mutable_connect_latency_seconds());
  FillFine(u.request_latency, out->mutable_request_fine());
  FillFine(u.connect_latency, out->mutable_connect_fine());
  if (!histogram) return;
  const auto& b = u.request_latency.buckets;
  for (uint32_t j = 0; j < b.size(); ++j) {
    if (b[j] == 0) continue;
    auto* hb = out->add_request_histogram();
    hb->set_upper_bound_seconds(static_cast<double>(BucketUpperNs(j)) / 1e9);
    hb->set_count(b[j]);
  }
}

void FillPolicyStats(const PolicyStatus& st, v1::PolicyStats* p) {
  p->set_name(std::string(PolicyName(st.kind)));
  if (st.mode) p->set_mode(std::string(ModeName(*st.mode)));
  if (st.mechanism) p->set_mechanism(std::string(MechanismName(*st.mechanism)));
  p->set_active(st.active);
  FillDecisions(st.decisions, p->mutable_decisions());
  FillDecisions(st.canary, p->mutable_canary_decisions());
  for (const auto& [detail, d] : st.by_detail) {
    FillDecisions(d, &(*p->mutable_by_detail())[detail]);
  }
  p->set_events_dropped(st.events_dropped);
}

void FillTunnelStats(const daemon::TunnelStatsReport& t, bool histogram, v1::TunnelStats* out) {
  out->set_target(t.target);
  for (size_t i = 0; i < t.latency.upstreams.size(); ++i) {
    FillUpstream(t.latency.upstreams[i], i < t.request_rates.size() ? t.request_rates[i] : 0,
                 histogram, out->add_upstreams());
  }
  for (const PolicyStatus& st : t.policies) FillPolicyStats(st, out->add_policies());
}

}  // namespace

grpc::Status AgentService::GetStatus(grpc::ServerContext* /*context*/,
                                     const v1::GetStatusRequest* /*request*/,
                                     v1::GetStatusResponse* response) {
  return Status(response);
}

grpc::Status AgentService::GetStats(grpc::ServerContext* /*context*/,
                                    const v1::GetStatsRequest* request,
                                    v1::GetStatsResponse* response) {
  return Stats(*request, response);
}

grpc::Status AgentService::WatchEvents(grpc::ServerContext* context,
                                       const v1::WatchEventsRequest* request,
                                       grpc::ServerWriter<v1::Event>* writer) {
  return Events(
      *request, [context] { return context->IsCancelled(); },
      [writer](const v1::Event& e) { return writer->Write(e); });
}

grpc::Status AgentService::SetMode(grpc::ServerContext* context, const v1::SetModeRequest* request,
                                   v1::SetModeResponse* response) {
  return Mode(peers_ != nullptr ? peers_->Lookup(*context) : std::nullopt, *request, response);
}

grpc::Status AgentService::Status(v1::GetStatusResponse* response) {
  const daemon::StatusReport r = api_->Status();
  response->set_version(r.version);
  response->set_uptime_seconds(r.uptime_seconds);
  auto feature = [response](const char* name, const Feature& f) {
    auto* out = response->add_features();
    out->set_name(name);
    out->set_available(f.available);
    out->set_detail(f.detail);
  };
  feature("bpffs", r.features.bpffs);
  feature("bpf_lsm_listed", r.features.bpf_lsm_listed);
  feature("lsm_cgroup", r.features.lsm_cgroup);
  feature("unix_notify", r.features.unix_notify);
  for (const auto& t : r.tunnels) FillTunnelStatus(t, response->add_tunnels());
  // The first tunnel, where clients from before several tunnels look.
  if (response->tunnels_size() > 0) {
    const v1::TunnelStatus& first = response->tunnels(0);
    response->set_target(first.target());
    response->set_cgroup(first.cgroup());
    response->set_cgroup_id(first.cgroup_id());
    response->set_target_present(first.target_present());
    *response->mutable_policies() = first.policies();
    response->set_events_dropped(first.events_dropped());
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::Stats(const v1::GetStatsRequest& request,
                                 v1::GetStatsResponse* response) {
  auto stats = api_->Stats();
  if (!stats.ok()) return ToGrpcStatus(stats.error());
  response->set_uptime_seconds(stats->uptime_seconds);
  for (const auto& t : stats->tunnels) {
    FillTunnelStats(t, request.include_histogram(), response->add_tunnels());
  }
  // The first tunnel, where clients from before several tunnels look.
  if (response->tunnels_size() > 0) {
    *response->mutable_upstreams() = response->tunnels(0).upstreams();
    *response->mutable_policies() = response->tunnels(0).policies();
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::Events(const v1::WatchEventsRequest& request,
                                  const std::function<bool()>& cancelled,
                                  const std::function<bool(const v1::Event&)>& write) {
  if (!KnownPolicy(request.policy()) || !KnownAction(request.action())) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "unknown policy or action; policies: address_families, wx_memory; actions: deny, "
            "would_deny, denied_by_seccomp"};
  }
  if (event_streams_.fetch_add(1) >= kMaxEventStreams) {
    event_streams_.fetch_sub(1);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, "too many event streams open (at most " +
                                                      std::to_string(kMaxEventStreams) +
                                                      "); close one and retry"};
  }
  struct Release {
    std::atomic<int>* n;
    ~Release() { n->fetch_sub(1); }
  } release{&event_streams_};
  // A bounded queue per stream: a reader that falls behind loses the oldest events (counted in
  // dropped_before), never slows the agent or other readers.
  auto sub = api_->Subscribe(request.policy(), request.action(), request.target());
  while (!cancelled()) {
    uint64_t dropped = 0;
    auto e = sub->Next(std::chrono::milliseconds(250), &dropped);
    if (!e) continue;
    v1::Event out;
    out.set_time_unix_nanos(BootToUnixNs(e->time_ns));
    out.set_pid(e->tid);
    out.set_tgid(e->pid);
    out.set_uid(e->uid);
    out.set_comm(e->comm);
    out.set_cgroup_id(e->cgroup_id);
    out.set_policy(std::string(PolicyName(e->policy)));
    out.set_detail(e->detail);
    out.set_action(std::string(ActionName(e->action)));
    out.set_dropped_before(dropped);
    out.set_target(e->target);
    if (!write(out)) break;
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::Mode(const std::optional<daemon::Caller>& caller,
                                const v1::SetModeRequest& request, v1::SetModeResponse* response) {
  if (!caller) {
    return {grpc::StatusCode::PERMISSION_DENIED, "cannot tell who is calling"};
  }
  if (caller->uid != 0) {
    log::Warning("SetMode {} {} refused: asked by uid {} (pid {}), not root", request.policy(),
                 request.mode(), caller->uid, caller->pid);
    return {grpc::StatusCode::PERMISSION_DENIED,
            "changing a policy's mode needs root (you are uid " + std::to_string(caller->uid) +
                "); run 'sudo tunnelctl mode ...'"};
  }
  auto previous = api_->SetMode(request.policy(), request.mode(), request.target(), *caller);
  if (!previous.ok()) return ToGrpcStatus(previous.error());
  log::Notice("policy {} mode {} -> {}{}, asked by uid {} (pid {})", request.policy(), *previous,
              request.mode(), request.target().empty() ? "" : " on " + request.target(),
              caller->uid, caller->pid);
  response->set_previous_mode(*previous);
  response->set_mode(request.mode());
  return grpc::Status::OK;
}

}  // namespace tg::grpcapi
