// libFuzzer target for the gRPC request handling: generated requests go through a real gRPC
// server (in process, over a unix socketpair handed to it as the agent's own accept loop does,
// with the caller registered as root so SetMode reaches the API) into the real AgentService.
// The first byte picks the call, the rest is the serialized request (bytes that do not parse
// are no request: skipped). Every call must answer with the status the service promises: no
// crash, hang or sanitizer report, and SetMode succeeds exactly for a known policy and mode.
// The API behind the service is a fixed one with every report field filled (the daemon's needs
// BPF); WatchEvents is fuzzed on its refusal path only (an accepted stream runs until the
// client leaves, 250 ms a turn: too slow for fuzzing).
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "agent/enforce/policy.h"
#include "agent/grpc/service.h"
#include "agent/grpc/unix_server.h"
#include "tunnelguard/v1/agent.grpc.pb.h"

namespace {

namespace v1 = tunnelguard::v1;
using tg::daemon::Caller;

tg::FineHistogram SomeLatencies() {
  tg::FineHistogram h;
  for (uint64_t ns : {1000ull, 250000ull, 3000000ull, 120000000ull}) h.Record(ns);
  return h;
}

tg::PolicyStatus SomePolicy(tg::PolicyKind kind) {
  tg::PolicyStatus p;
  p.kind = kind;
  p.mode = tg::Mode::kEnforce;
  p.mechanism = tg::Mechanism::kLsmCgroup;
  p.active = true;
  p.decisions = {1, 2, 3, 4, 5};
  p.by_detail["unix"] = {0, 2, 0, 0, 0};
  p.canary_result = "passed";
  return p;
}

// Every field a face may read, filled; SetMode validates as the daemon does.
class FixedApi : public tg::daemon::AgentApi {
 public:
  tg::daemon::StatusReport Status() const override {
    tg::daemon::StatusReport r;
    r.version = "fuzz";
    tg::daemon::TunnelStatusReport t;
    t.target = {"cloudflared.service", "/system.slice/cloudflared.service", 42, true};
    t.configured = {{tg::PolicyKind::kAddressFamilies, tg::Mode::kEnforce, 0b110},
                    {tg::PolicyKind::kWxMemory, tg::Mode::kAudit, 0}};
    t.policies = {SomePolicy(tg::PolicyKind::kAddressFamilies)};
    tg::CanaryReport canary;
    canary.checks = {{tg::PolicyKind::kWxMemory, tg::Mode::kAudit, "mmap", "EPERM", false}};
    canary.cause = "a cause";
    t.canary = canary;
    t.enforcement_problem = "a problem";
    r.tunnels = {t, t};  // two tunnels: the second waiting
    r.tunnels[1].target = {"cloudflared-tunnel-b.service", "", 0, false};
    return r;
  }
  tg::Result<tg::daemon::StatsReport> Stats() const override {
    tg::daemon::TunnelStatsReport t;
    t.target = "cloudflared.service";
    tg::UpstreamStats u;
    u.name = "web";
    u.addresses = {"127.0.0.1:80", "[::1]:80"};
    u.request_latency = SomeLatencies();
    u.connect_latency = SomeLatencies();
    t.latency.upstreams = {u, u};
    t.request_rates = {1.5};  // fewer rates than upstreams: the service must cope
    t.policies = {SomePolicy(tg::PolicyKind::kWxMemory)};
    tg::daemon::StatsReport r;
    r.tunnels = {t, t};
    r.tunnels[1].target = "cloudflared-tunnel-b.service";
    return r;
  }
  std::shared_ptr<tg::EventHub::Subscription> Subscribe(const std::string&, const std::string&,
                                                        const std::string&) override {
    return hub_.Subscribe([](const tg::PolicyEvent&) { return true; });
  }
  tg::Result<std::string> SetMode(const std::string& policy, const std::string& mode,
                                  const std::string&, const Caller&) override {
    if (!tg::PolicyFromName(policy)) return tg::MakeError(tg::ErrorKind::kNotFound, "no policy");
    auto m = tg::ParseMode(mode);
    if (!m.ok()) return m.error();
    return std::string("enforce");
  }

 private:
  tg::EventHub hub_;
};

struct Harness {
  FixedApi api;
  tg::grpcapi::PeerRegistry peers;
  tg::grpcapi::AgentService service{&api, &peers};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::Agent::Stub> stub;

  Harness() {
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    int sv[2];
    if (server == nullptr ||
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
      __builtin_trap();
    }
    peers.Register(sv[0], Caller{0, 0, 1});
    grpc::AddInsecureChannelFromFd(server.get(), sv[0]);
    stub = v1::Agent::NewStub(grpc::CreateInsecureChannelFromFd("fuzz", sv[1]));
  }
};

void Expect(bool ok) {
  if (!ok) __builtin_trap();
}

template <typename Request>
bool Parse(const uint8_t* data, size_t size, Request* req) {
  return req->ParseFromArray(data, static_cast<int>(size));
}

void WithDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();  // lives for the process, as libFuzzer expects
  if (size == 0) return 0;
  const uint8_t call = data[0] % 4;
  ++data;
  --size;
  grpc::ClientContext ctx;
  WithDeadline(ctx);
  switch (call) {
    case 0: {
      v1::GetStatusRequest req;
      v1::GetStatusResponse resp;
      if (!Parse(data, size, &req)) return 0;
      Expect(h->stub->GetStatus(&ctx, req, &resp).ok());
      break;
    }
    case 1: {
      v1::GetStatsRequest req;
      v1::GetStatsResponse resp;
      if (!Parse(data, size, &req)) return 0;
      Expect(h->stub->GetStats(&ctx, req, &resp).ok());
      Expect(resp.upstreams_size() == 2);
      break;
    }
    case 2: {
      v1::SetModeRequest req;
      v1::SetModeResponse resp;
      if (!Parse(data, size, &req)) return 0;
      const grpc::Status st = h->stub->SetMode(&ctx, req, &resp);
      const bool valid = tg::PolicyFromName(req.policy()) && tg::ParseMode(req.mode()).ok();
      Expect(st.ok() == valid);
      Expect(valid || st.error_code() == grpc::StatusCode::NOT_FOUND ||
             st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      break;
    }
    default: {
      v1::WatchEventsRequest req;
      if (!Parse(data, size, &req)) return 0;
      const auto known = [](const std::string& s, std::initializer_list<const char*> names) {
        if (s.empty()) return true;
        for (const char* n : names) {
          if (s == n) return true;
        }
        return false;
      };
      if (known(req.policy(), {"address_families", "wx_memory"}) &&
          known(req.action(), {"deny", "would_deny", "allow", "denied_by_seccomp"})) {
        return 0;  // accepted: a stream until the client leaves (see the top of this file)
      }
      auto reader = h->stub->WatchEvents(&ctx, req);
      v1::Event e;
      Expect(!reader->Read(&e));
      Expect(reader->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      break;
    }
  }
  return 0;
}
