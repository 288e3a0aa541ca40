#include "agent/face/api_face.h"

#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "agent/base/event_fd.h"
#include "agent/base/log.h"
#include "agent/face/api_calls.h"
#include "agent/face/confine.h"
#include "agent/face/frames.h"
#include "agent/grpc/unix_server.h"

namespace tg::face {
namespace {

namespace v1 = tunnelguard::v1;
using std::chrono::milliseconds;

constexpr int kControlFd = kFirstHandedFd;
// gRPC's start (threads, its pollers) in a fresh process; far longer under emulation.
constexpr milliseconds kReadyTimeout{20000};
constexpr milliseconds kHandOffTimeout{2000};  // a descriptor onto the control channel
constexpr milliseconds kRequestTimeout{2000};  // a call's request, after its socket
constexpr milliseconds kReplyTimeout{5000};    // for the face to take a reply or an event
constexpr milliseconds kAnswerTimeout{30000};  // the face's wait for the agent's answer
// Calls served at once (the face's gRPC server runs at most kMaxServerThreads), and client
// connections held: beyond them a call or a connection is refused, not queued.
constexpr int kMaxCalls = 2 * grpcapi::kMaxServerThreads;
constexpr size_t kMaxClients = 1024;

// What gRPC's threads, pollers and wakeups need beyond the metrics face's loop. No open, no
// socket (socketpair only: a call's channel to the agent), no exec, no ptrace.
constexpr const char* kGrpcCalls[] = {
    "clone",           "clone3",
    "set_robust_list", "rseq",
    "sigaltstack",     "eventfd2",
    "pipe2",           "fcntl",
    "getsockopt",      "setsockopt",
    "getsockname",     "getpeername",
    "socketpair",      "sched_getaffinity",
    "membarrier",      "timerfd_create",
    "timerfd_settime", "uname",
    "sysinfo",         "getrusage",
};

bool Hungup(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace

// --- the agent's side ---------------------------------------------------------------------

Result<std::unique_ptr<ApiFace>> ApiFace::Start(const std::string& path,
                                                grpcapi::AgentService* service) {
  auto listen_fd = grpcapi::ListenApiSocket(path);
  if (!listen_fd.ok()) return listen_fd.error();
  std::unique_ptr<ApiFace> face(new ApiFace());
  face->path_ = path;
  face->service_ = service;
  face->listen_fd_ = std::move(*listen_fd);
  face->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!face->stop_fd_.valid()) return FromErrno(errno, "eventfd");
  if (auto s = face->SpawnFace(); !s.ok()) {
    face->retry_delay_ = kFirstRetry;
    log::Error("{}; the API does not answer until a face starts (retrying)", s.error().message);
  }
  face->host_ = std::thread([raw = face.get()] { raw->Host(); });
  return face;
}

ApiFace::~ApiFace() {
  stopping_ = true;
  SignalEventFd(stop_fd_.get());
  if (host_.joinable()) host_.join();
  {
    std::unique_lock<std::mutex> lock(calls_mu_);
    calls_done_.wait(lock, [this] { return calls_ == 0; });
  }
  std::lock_guard<std::mutex> lock(mu_);
  face_.Kill();
  clients_.clear();
  ::unlink(path_.c_str());
}

pid_t ApiFace::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return face_.pid();
}

Status ApiFace::SpawnFace() {
  auto started = StartFace("api", SOCK_SEQPACKET, {}, kReadyTimeout, stop_fd_.get());
  if (!started.ok()) return started.error();
  std::lock_guard<std::mutex> lock(mu_);
  face_ = std::move(started->process);
  control_ = std::move(started->channel);
  log::Info("serving the API on {} (parsed by a confined process, pid {})", path_, face_.pid());
  return Status::Ok();
}

void ApiFace::Replace(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  const pid_t old = face_.pid();
  const std::string how = face_.Kill();
  control_.reset();
  clients_.clear();  // their connections lived in that face: close them
  log::Warning("API face (pid {}) {}{}; starting a new one", old, how, why);
}

void ApiFace::Host() {
  for (;;) {
    const bool up = control_.valid();
    pollfd fds[3] = {
        {stop_fd_.get(), POLLIN, 0}, {control_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
    // Connections wait in the listen queue while there is no face to take them.
    if (::poll(fds, up ? 3 : 1, up ? -1 : static_cast<int>(retry_delay_.count())) < 0 &&
        errno != EINTR) {
      log::Error("API: poll: {}; the API is no longer served", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    if (!up) {
      if (auto s = SpawnFace(); s.ok()) {
        retry_delay_ = milliseconds(0);
      } else {
        retry_delay_ = NextRetry(retry_delay_);
        log::Error("{}; trying again in {} s", s.error().message, retry_delay_.count() / 1000);
      }
      continue;
    }
    if (fds[1].revents != 0 && !TakeCall()) {
      Replace("");
      continue;
    }
    if (fds[2].revents != 0) Accept();
  }
}

void ApiFace::ForgetGoneClients() {
  std::erase_if(clients_, [](const auto& kv) { return Hungup(kv.second.fd.get()); });
}

void ApiFace::Accept() {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) return;  // EAGAIN, or a peer that already left
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    ForgetGoneClients();
    if (clients_.size() >= kMaxClients) {
      log::Warning("API: {} client connections open; refusing another (pid {}, uid {})",
                   clients_.size(), cred.pid, cred.uid);
      continue;
    }
    const uint64_t id = next_client_++;
    if (!SendDescriptor(control_.get(), id, fd.get(), kHandOffTimeout).ok()) continue;
    clients_[id] = {std::move(fd), {cred.uid, cred.gid, cred.pid}};
  }
}

bool ApiFace::TakeCall() {
  auto call = ReceiveDescriptor(control_.get(), kHandOffTimeout);
  if (!call.ok()) {
    if (call.error().kind != ErrorKind::kNotFound) {
      log::Error("API face: {}: replacing it", call.error().message);
    }
    return false;
  }
  std::optional<daemon::Caller> caller;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = clients_.find(call->id); it != clients_.end() && !Hungup(it->second.fd.get())) {
      caller = it->second.caller;
    }
  }
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    if (calls_ >= kMaxCalls) return true;  // refused: the face answers UNAVAILABLE
    ++calls_;
  }
  std::thread([this, caller, fd = std::move(call->fd)]() mutable {
    Serve(caller, std::move(fd));
    std::lock_guard<std::mutex> lock(calls_mu_);
    if (--calls_ == 0) calls_done_.notify_all();
  }).detach();
  return true;
}

void ApiFace::Serve(std::optional<daemon::Caller> caller, UniqueFd call) {
  auto frame = ReceiveFrame(call.get(), kRequestTimeout, kMaxCallBytes);
  if (!frame.ok()) return;
  auto request = DecodeCall(*frame);
  if (!request.ok()) {
    log::Error("{}", request.error().message);
    return;
  }
  auto reply = [&call](const grpc::Status& st, const google::protobuf::Message* response) {
    ApiReply r;
    r.code = static_cast<int>(st.error_code());
    r.message = st.error_message();
    if (st.ok() && response != nullptr) r.payload = response->SerializeAsString();
    return SendFrame(call.get(), EncodeReply(r), kReplyTimeout).ok();
  };
  switch (request->method) {
    case ApiMethod::kStatus: {
      v1::GetStatusResponse response;
      const grpc::Status st = service_->Status(&response);
      reply(st, &response);
      return;
    }
    case ApiMethod::kStats: {
      v1::GetStatsRequest req;
      req.set_include_histogram(request->include_histogram);
      v1::GetStatsResponse response;
      const grpc::Status st = service_->Stats(req, &response);
      reply(st, &response);
      return;
    }
    case ApiMethod::kSetMode: {
      v1::SetModeRequest req;
      req.set_policy(request->policy);
      req.set_mode(request->mode_or_action);
      req.set_target(request->target);
      v1::SetModeResponse response;
      const grpc::Status st = service_->Mode(caller, req, &response);
      reply(st, &response);
      return;
    }
    case ApiMethod::kEvents: {
      v1::WatchEventsRequest req;
      req.set_policy(request->policy);
      req.set_action(request->mode_or_action);
      req.set_target(request->target);
      const int fd = call.get();
      const grpc::Status st = service_->Events(
          req, [this, fd] { return stopping_.load() || Hungup(fd); },
          [&reply](const v1::Event& e) { return reply(grpc::Status::OK, &e); });
      reply(st, nullptr);  // the end of the stream (nothing after an event: empty payload)
      return;
    }
  }
}

// --- the face's side ----------------------------------------------------------------------

namespace {

// The face's client connections by descriptor (gRPC names a peer "fd:N"), each with the id
// the agent gave it.
class Connections {
 public:
  void Add(int fd, uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_[fd] = id;
  }
  std::optional<uint64_t> Of(const grpc::ServerContext& context) const {
    const std::string peer = context.peer();
    if (peer.rfind("fd:", 0) != 0) return std::nullopt;
    const int fd = std::atoi(peer.c_str() + 3);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ids_.find(fd);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> ids_;
};

ApiCall Call(ApiMethod method, std::string policy = "", std::string mode_or_action = "",
             std::string target = "") {
  ApiCall call;
  call.method = method;
  call.policy = std::move(policy);
  call.mode_or_action = std::move(mode_or_action);
  call.target = std::move(target);
  return call;
}

// Each call, passed on to the agent in the fixed form and answered with what it replies.
class Bridge final : public v1::Agent::Service {
 public:
  explicit Bridge(const Connections* connections) : connections_(connections) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* /*request*/,
                         v1::GetStatusResponse* response) override {
    return Unary(*context, Call(ApiMethod::kStatus), response);
  }
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override {
    ApiCall call = Call(ApiMethod::kStats);
    call.include_histogram = request->include_histogram();
    return Unary(*context, call, response);
  }
  grpc::Status SetMode(grpc::ServerContext* context, const v1::SetModeRequest* request,
                       v1::SetModeResponse* response) override {
    return Unary(*context,
                 Call(ApiMethod::kSetMode, request->policy(), request->mode(), request->target()),
                 response);
  }
  grpc::Status WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                           grpc::ServerWriter<v1::Event>* writer) override;

 private:
  // A socket to the agent carrying `call`; the agent has taken it when this returns.
  Result<UniqueFd> Open(const grpc::ServerContext& context, const ApiCall& call);
  grpc::Status Unary(const grpc::ServerContext& context, const ApiCall& call,
                     google::protobuf::Message* response);

  const Connections* connections_;
  std::mutex control_mu_;  // one message at a time on the control channel
};

Result<UniqueFd> Bridge::Open(const grpc::ServerContext& context, const ApiCall& call) {
  const auto id = connections_->Of(context);
  if (!id) return MakeError(ErrorKind::kPermission, "cannot tell who is calling");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return FromErrno(errno, "socketpair");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    if (auto s = SendDescriptor(kControlFd, *id, theirs.get(), kHandOffTimeout); !s.ok()) {
      return s.error();
    }
  }
  theirs.reset();
  if (auto s = SendFrame(ours.get(), EncodeCall(call), kHandOffTimeout); !s.ok()) {
    return s.error();
  }
  return ours;
}

grpc::Status Unavailable(const Error& e) {
  return {grpc::StatusCode::UNAVAILABLE, "the agent did not answer: " + e.message};
}

grpc::Status Bridge::Unary(const grpc::ServerContext& context, const ApiCall& call,
                           google::protobuf::Message* response) {
  auto socket = Open(context, call);
  if (!socket.ok()) {
    return socket.error().kind == ErrorKind::kPermission
               ? grpc::Status(grpc::StatusCode::PERMISSION_DENIED, socket.error().message)
               : Unavailable(socket.error());
  }
  auto frame = ReceiveFrame(socket->get(), kAnswerTimeout);
  if (!frame.ok()) return Unavailable(frame.error());
  auto reply = DecodeReply(*frame);
  if (!reply.ok()) return Unavailable(reply.error());
  if (reply->code != 0) return {static_cast<grpc::StatusCode>(reply->code), reply->message};
  if (!response->ParseFromString(reply->payload)) {
    return {grpc::StatusCode::INTERNAL, "the agent's answer did not parse"};
  }
  return grpc::Status::OK;
}

grpc::Status Bridge::WatchEvents(grpc::ServerContext* context,
                                 const v1::WatchEventsRequest* request,
                                 grpc::ServerWriter<v1::Event>* writer) {
  auto socket = Open(
      *context, Call(ApiMethod::kEvents, request->policy(), request->action(), request->target()));
  if (!socket.ok()) return Unavailable(socket.error());
  while (!context->IsCancelled()) {
    pollfd p{socket->get(), POLLIN, 0};
    if (::poll(&p, 1, 250) <= 0) continue;
    auto frame = ReceiveFrame(socket->get(), kReplyTimeout);
    if (!frame.ok()) return Unavailable(frame.error());
    auto reply = DecodeReply(*frame);
    if (!reply.ok()) return Unavailable(reply.error());
    if (reply->code != 0 || reply->payload.empty()) {
      return {static_cast<grpc::StatusCode>(reply->code), reply->message};
    }
    v1::Event event;
    if (!event.ParseFromString(reply->payload)) {
      return {grpc::StatusCode::INTERNAL, "an event from the agent did not parse"};
    }
    if (!writer->Write(event)) break;  // the client left; closing our socket tells the agent
  }
  return grpc::Status::OK;
}

}  // namespace

int ApiFaceMain(pid_t agent) {
  CloseInheritedFds(kControlFd + 1);
  if (auto s = DropPrivileges(agent); !s.ok()) {
    log::Error("API face: {}", s.error().message);
    return 1;
  }
  // gRPC starts its threads here, after the capabilities are gone (they are per thread) and
  // before any connection exists; the filter then covers them all (TSYNC).
  Connections connections;
  Bridge bridge(&connections);
  grpc::ServerBuilder builder;
  builder.RegisterService(&bridge);
  builder.SetMaxReceiveMessageSize(grpcapi::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(grpcapi::kMaxMessageBytes);
  grpc::ResourceQuota quota("tunnelguard-api");
  quota.SetMaxThreads(grpcapi::kMaxServerThreads);
  builder.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    log::Error("API face: the gRPC server did not start");
    return 1;
  }
  if (auto s = LoadAllowList(kGrpcCalls); !s.ok()) {
    log::Error("API face: {}", s.error().message);
    return 1;
  }
  if (!SendByte(kControlFd, kReady, kHandOffTimeout).ok()) return 1;
  for (;;) {
    auto connection = ReceiveDescriptor(kControlFd, std::chrono::hours(1));
    if (!connection.ok()) {
      if (connection.error().kind == ErrorKind::kInternal) continue;  // an idle hour
      if (connection.error().kind != ErrorKind::kNotFound) {
        log::Error("API face: {}; leaving", connection.error().message);
      }
      ::_exit(1);  // the agent has gone (or broke the protocol): nothing to serve for
    }
    const int fd = connection->fd.release();
    connections.Add(fd, connection->id);
    grpc::AddInsecureChannelFromFd(server.get(), fd);  // gRPC owns the fd from here
  }
}

}  // namespace tg::face
