// tunnelguard.v1.Agent: a thin translation between protobuf and the daemon's AgentApi.
// Errors are mapped to gRPC codes here and nowhere else (ToGrpcStatus).
#ifndef TUNNELGUARD_AGENT_GRPC_SERVICE_H_
#define TUNNELGUARD_AGENT_GRPC_SERVICE_H_

#include <atomic>
#include <functional>
#include <optional>

#include "agent/api/agent_api.h"
#include "agent/grpc/unix_server.h"
#include "tunnelguard/v1/agent.grpc.pb.h"

namespace tg::grpcapi {

// unsupported kernel -> FAILED_PRECONDITION, bad argument -> INVALID_ARGUMENT,
// not allowed -> PERMISSION_DENIED, missing -> NOT_FOUND, the rest -> INTERNAL.
grpc::Status ToGrpcStatus(const Error& error);

class AgentService final : public tunnelguard::v1::Agent::Service {
 public:
  // `peers`: who is on each connection, for a gRPC server of this process (nullptr when the
  // calls come through the API face, which names the caller to Mode() itself).
  AgentService(daemon::AgentApi* api, const PeerRegistry* peers) : api_(api), peers_(peers) {}

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const tunnelguard::v1::GetStatusRequest* request,
                         tunnelguard::v1::GetStatusResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context,
                        const tunnelguard::v1::GetStatsRequest* request,
                        tunnelguard::v1::GetStatsResponse* response) override;
  grpc::Status WatchEvents(grpc::ServerContext* context,
                           const tunnelguard::v1::WatchEventsRequest* request,
                           grpc::ServerWriter<tunnelguard::v1::Event>* writer) override;
  grpc::Status SetMode(grpc::ServerContext* context, const tunnelguard::v1::SetModeRequest* request,
                       tunnelguard::v1::SetModeResponse* response) override;

  // The same calls without a gRPC server around them: the agent answers the confined API face
  // with these (agent/face/api_face.h), the caller known from the connection it accepted.
  grpc::Status Status(tunnelguard::v1::GetStatusResponse* response);
  grpc::Status Stats(const tunnelguard::v1::GetStatsRequest& request,
                     tunnelguard::v1::GetStatsResponse* response);
  // `write` returns false once the client is gone; `cancelled` is polled between events.
  grpc::Status Events(const tunnelguard::v1::WatchEventsRequest& request,
                      const std::function<bool()>& cancelled,
                      const std::function<bool(const tunnelguard::v1::Event&)>& write);
  grpc::Status Mode(const std::optional<daemon::Caller>& caller,
                    const tunnelguard::v1::SetModeRequest& request,
                    tunnelguard::v1::SetModeResponse* response);

 private:
  daemon::AgentApi* api_;
  const PeerRegistry* peers_;
  std::atomic<int> event_streams_{0};  // open WatchEvents calls, at most kMaxEventStreams
};

}  // namespace tg::grpcapi

#endif  // TUNNELGUARD_AGENT_GRPC_SERVICE_H_
