#include "agent/face/metrics_face.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include "agent/base/event_fd.h"
#include "agent/base/log.h"
#include "agent/face/confine.h"
#include "agent/face/frames.h"

namespace tg::face {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kListenFd = kFirstHandedFd;
constexpr int kChannelFd = kFirstHandedFd + 1;
// A face that is not confined and serving by then is not coming (exec and dynamic linking of
// the agent's binary take ~100 ms; far more on a loaded machine or under emulation).
constexpr milliseconds kReadyTimeout{10000};
// The agent's answer to a scrape; the face's HTTP deadline for the response is longer.
constexpr milliseconds kScrapeTimeout{8000};
// For the face to take the answer (a face that stops reading is replaced).
constexpr milliseconds kSendTimeout{5000};
constexpr milliseconds kMinScrapeInterval{100};

// Answer frames start with one byte: the scrape worked ('1', the text follows) or not ('0').
constexpr char kAnswerOk = '1';
constexpr char kAnswerFailed = '0';

}  // namespace

Result<std::unique_ptr<MetricsFace>> MetricsFace::Start(const std::string& listen,
                                                        exporter::ScrapeFn scrape) {
  auto listener = exporter::ListenMetrics(listen);
  if (!listener.ok()) return listener.error();
  std::unique_ptr<MetricsFace> face(new MetricsFace());
  face->listener_ = std::move(*listener);
  face->scrape_ = std::move(scrape);
  face->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!face->stop_fd_.valid()) return FromErrno(errno, "eventfd");
  if (auto s = face->SpawnFace(); !s.ok()) {
    face->retry_delay_ = kFirstRetry;
    log::Error("{}; /metrics does not answer until a face starts (retrying)", s.error().message);
  }
  face->host_ = std::thread([raw = face.get()] { raw->Host(); });
  return face;
}

MetricsFace::~MetricsFace() {
  SignalEventFd(stop_fd_.get());
  if (host_.joinable()) host_.join();
  std::lock_guard<std::mutex> lock(mu_);
  face_.Kill();
}

pid_t MetricsFace::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return face_.pid();
}

Status MetricsFace::SpawnFace() {
  auto started =
      StartFace("metrics", SOCK_STREAM, {listener_.fd.get()}, kReadyTimeout, stop_fd_.get());
  if (!started.ok()) return started.error();
  std::lock_guard<std::mutex> lock(mu_);
  face_ = std::move(started->process);
  channel_ = std::move(started->channel);
  return Status::Ok();
}

void MetricsFace::Replace(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  const pid_t old = face_.pid();
  const std::string how = face_.Kill();
  channel_.reset();
  log::Warning("metrics face (pid {}) {}{}; starting a new one", old, how, why);
}

void MetricsFace::Host() {
  for (;;) {
    pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {channel_.get(), POLLIN, 0}};
    const int wait_ms = channel_.valid() ? -1 : static_cast<int>(retry_delay_.count());
    if (::poll(fds, channel_.valid() ? 2 : 1, wait_ms) < 0 && errno != EINTR) {
      log::Error("metrics face: poll: {}; /metrics is no longer served", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    if (!channel_.valid()) {
      if (auto s = SpawnFace(); s.ok()) {
        retry_delay_ = milliseconds(0);
      } else {
        retry_delay_ = NextRetry(retry_delay_);
        log::Error("{}; trying again in {} s", s.error().message, retry_delay_.count() / 1000);
      }
      continue;
    }
    if (fds[1].revents != 0 && !Answer()) Replace("");
  }
}

bool MetricsFace::Answer() {
  auto request = ReceiveByte(channel_.get(), kScrapeTimeout);
  if (!request.ok()) return false;  // the face exited (EOF) or broke off mid-request
  if (*request != kScrapeText && *request != kScrapeProtobuf) {
    log::Error("metrics face sent an unknown request (byte {}): replacing it",
               static_cast<int>(static_cast<unsigned char>(*request)));
    return false;
  }
  const auto format =
      *request == kScrapeProtobuf ? exporter::Exposition::kProtobuf : exporter::Exposition::kText;
  Cached& last = last_[static_cast<int>(format)];
  if (const auto now = Clock::now(); !last.body || now - last.made >= kMinScrapeInterval) {
    last.body = scrape_(format);
    last.made = now;
  }
  std::string frame = last.body ? kAnswerOk + *last.body : std::string(1, kAnswerFailed);
  if (frame.size() > kMaxFrameBytes) {
    log::Error("/metrics: the exposition ({} bytes) is over the {} byte limit", frame.size(),
               kMaxFrameBytes);
    frame = std::string(1, kAnswerFailed);
  }
  return SendFrame(channel_.get(), frame, kSendTimeout).ok();
}

int MetricsFaceMain(pid_t agent) {
  CloseInheritedFds(kChannelFd + 1);
  if (auto s = ConfineFace(agent); !s.ok()) {
    log::Error("metrics face: {}", s.error().message);
    return 1;
  }
  if (!SendByte(kChannelFd, kReady, kSendTimeout).ok()) return 1;
  auto scrape = [](exporter::Exposition format) -> std::optional<std::string> {
    const char request = format == exporter::Exposition::kProtobuf ? kScrapeProtobuf : kScrapeText;
    auto frame = SendByte(kChannelFd, request, kSendTimeout).ok()
                     ? ReceiveFrame(kChannelFd, kScrapeTimeout)
                     : Result<std::string>(MakeError(ErrorKind::kNotFound, "the agent is gone"));
    if (!frame.ok()) {
      // The agent has gone, or its answer is late and would be read as the next scrape's:
      // leave at once; the agent starts a new face on a clean channel.
      log::Error("metrics face: {}; leaving", frame.error().message);
      ::_exit(1);
    }
    if (frame->empty() || frame->front() != kAnswerOk) return std::nullopt;
    return frame->substr(1);
  };
  exporter::ServeMetrics(kListenFd, -1, scrape);
  return 1;  // the loop ends only when epoll failed
}

}  // namespace tg::face
