#include "agent/face/api_calls.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "agent/face/frames.h"

namespace tg::face {
namespace {

using Clock = std::chrono::steady_clock;

void PutU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}

void PutU32(std::string& out, size_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// Reads little-endian integers and strings from `bytes`, failing on the first overrun.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  bool U8(uint8_t* v) {
    if (rest_.empty()) return false;
    *v = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return true;
  }
  bool U16(size_t* v) {
    uint8_t lo = 0, hi = 0;
    if (!U8(&lo) || !U8(&hi)) return false;
    *v = lo | static_cast<size_t>(hi) << 8;
    return true;
  }
  bool U32(size_t* v) {
    *v = 0;
    for (int shift = 0; shift < 32; shift += 8) {
      uint8_t b = 0;
      if (!U8(&b)) return false;
      *v |= static_cast<size_t>(b) << shift;
    }
    return true;
  }
  bool Bytes(size_t n, std::string* out) {
    if (rest_.size() < n) return false;
    out->assign(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

Error BadCall(const std::string& why) {
  return MakeError(ErrorKind::kInvalidArgument, "API face sent a malformed call: " + why);
}

}  // namespace

std::string EncodeCall(const ApiCall& call) {
  std::string out;
  out.push_back(static_cast<char>(call.method));
  out.push_back(call.include_histogram ? 1 : 0);
  for (const std::string* s : {&call.policy, &call.mode_or_action, &call.target}) {
    const size_t n = std::min(s->size(), kMaxCallString);
    PutU16(out, n);
    out.append(*s, 0, n);
  }
  return out;
}

Result<ApiCall> DecodeCall(std::string_view bytes) {
  if (bytes.size() > kMaxCallBytes) return BadCall("too long");
  Reader r(bytes);
  uint8_t method = 0, flag = 0;
  if (!r.U8(&method) || !r.U8(&flag)) return BadCall("truncated");
  ApiCall call;
  switch (static_cast<ApiMethod>(method)) {
    case ApiMethod::kStatus:
    case ApiMethod::kStats:
    case ApiMethod::kEvents:
    case ApiMethod::kSetMode:
      call.method = static_cast<ApiMethod>(method);
      break;
    default:
      return BadCall("unknown method " + std::to_string(method));
  }
  if (flag > 1) return BadCall("flag byte " + std::to_string(flag));
  call.include_histogram = flag == 1;
  for (std::string* s : {&call.policy, &call.mode_or_action, &call.target}) {
    size_t n = 0;
    if (!r.U16(&n) || n > kMaxCallString || !r.Bytes(n, s)) return BadCall("bad string");
  }
  if (!r.rest().empty()) return BadCall("trailing bytes");
  return call;
}

std::string EncodeReply(const ApiReply& reply) {
  std::string out;
  out.push_back(static_cast<char>(reply.code));
  PutU32(out, reply.message.size());
  out += reply.message;
  out += reply.payload;
  return out;
}

Result<ApiReply> DecodeReply(std::string_view bytes) {
  Reader r(bytes);
  uint8_t code = 0;
  size_t n = 0;
  ApiReply reply;
  if (!r.U8(&code) || code > 16 || !r.U32(&n) || !r.Bytes(n, &reply.message)) {
    return MakeError(ErrorKind::kInternal, "malformed reply from the agent");
  }
  reply.code = code;
  reply.payload.assign(r.rest());
  return reply;
}

Status SendDescriptor(int channel, uint64_t id, int fd, std::chrono::milliseconds timeout) {
  char data[8];
  std::memcpy(data, &id, sizeof(id));
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto s = Await(channel, POLLOUT, deadline, -1); !s.ok()) return s;
    if (::sendmsg(channel, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(data)) return Status::Ok();
    if (errno != EAGAIN && errno != EINTR) return FromErrno(errno, "control channel: sendmsg");
  }
}

Result<ReceivedDescriptor> ReceiveDescriptor(int channel, std::chrono::milliseconds timeout,
                                             int stop_fd) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto s = Await(channel, POLLIN, deadline, stop_fd); !s.ok()) return s.error();
    char data[16];
    iovec iov{data, sizeof(data)};
    // Room for a few descriptors, so that extra ones are received (and closed), not left.
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return FromErrno(errno, "control channel: recvmsg");
    if (n == 0) return MakeError(ErrorKind::kNotFound, "control channel: closed by the other side");
    std::vector<UniqueFd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(fd);
      }
    }
    if (n != 8 || fds.size() != 1 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "control channel: a message that is not an id with one descriptor");
    }
    ReceivedDescriptor r;
    std::memcpy(&r.id, data, sizeof(r.id));
    r.fd = std::move(fds[0]);
    return r;
  }
}

}  // namespace tg::face
