#include "service.h"

#include "log.h"

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

grpc::Status AgentService::GetStatus(grpc::ServerContext* /*context*/,
                                     const v1::GetStatusRequest* /*request*/,
                                     v1::GetStatusResponse* response) {
  const daemon::StatusReport r = api_->Status();
  response->set_version(r.version);
  response->set_target(r.target.target);
  response->set_cgroup(r.target.cgroup);
  response->set_cgroup_id(r.target.cgroup_id);
  response->set_target_present(r.target.present);
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
  return grpc::Status::OK;
}

grpc::Status AgentService::GetStats(grpc::ServerContext* /*context*/,
                                    const v1::GetStatsRequest* /*request*/,
                                    v1::GetStatsResponse* response) {
  response->set_uptime_seconds(api_->Status().uptime_seconds);
  return grpc::Status::OK;
}

grpc::Status AgentService::SetMode(grpc::ServerContext* context, const v1::SetModeRequest* request,
                                   v1::SetModeResponse* response) {
  const auto caller = peers_->Lookup(*context);
  if (!caller) {
    return {grpc::StatusCode::PERMISSION_DENIED, "cannot tell who is calling"};
  }
  if (caller->uid != 0) {
    log::Warning("SetMode {} {} refused: asked by uid {} (pid {}), not root", request->policy(),
                 request->mode(), caller->uid, caller->pid);
    return {grpc::StatusCode::PERMISSION_DENIED,
            "changing a policy's mode needs root (you are uid " + std::to_string(caller->uid) +
                "); run 'sudo tunnelctl mode ...'"};
  }
  auto previous = api_->SetMode(request->policy(), request->mode(), *caller);
  if (!previous.ok()) return ToGrpcStatus(previous.error());
  log::Notice("policy {} mode {} -> {}, asked by uid {} (pid {})", request->policy(), *previous,
              request->mode(), caller->uid, caller->pid);
  response->set_previous_mode(*previous);
  response->set_mode(request->mode());
  return grpc::Status::OK;
}

}  // namespace tg::grpcapi
