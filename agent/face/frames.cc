#include "agent/face/frames.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>

namespace tg::face {
namespace {

using Clock = std::chrono::steady_clock;

// Reads exactly `size` bytes by `deadline`.
Status ReadExactly(int fd, char* out, size_t size, Clock::time_point deadline, int stop_fd = -1) {
  size_t got = 0;
  while (got < size) {
    if (auto s = Await(fd, POLLIN, deadline, stop_fd); !s.ok()) return s;
    const ssize_t n = ::recv(fd, out + got, size - got, MSG_DONTWAIT);
    if (n == 0) return MakeError(ErrorKind::kNotFound, "face channel: closed by the other side");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return FromErrno(errno, "face channel: recv");
    }
    got += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteAll(int fd, const char* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    if (auto s = Await(fd, POLLOUT, deadline); !s.ok()) return s;
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return FromErrno(errno, "face channel: send");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status Await(int fd, short events, std::chrono::steady_clock::time_point deadline, int stop_fd) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return MakeError(ErrorKind::kInternal, "face channel: timed out");
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return FromErrno(errno, "face channel: poll");
    if (n > 0 && stop_fd >= 0 && p[1].revents != 0) {
      return MakeError(ErrorKind::kInternal, "face channel: stopped");
    }
    if (n > 0) return Status::Ok();
  }
}

Status SendByte(int fd, char byte, std::chrono::milliseconds timeout) {
  return WriteAll(fd, &byte, 1, Clock::now() + timeout);
}

Result<char> ReceiveByte(int fd, std::chrono::milliseconds timeout, int stop_fd) {
  char byte = 0;
  if (auto s = ReadExactly(fd, &byte, 1, Clock::now() + timeout, stop_fd); !s.ok()) {
    return s.error();
  }
  return byte;
}

Status SendFrame(int fd, std::string_view payload, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (payload.size() > kMaxFrameBytes) {
    return MakeError(
        ErrorKind::kInternal,
        "face channel: a frame of " + std::to_string(payload.size()) + " bytes is over the limit");
  }
  const auto size = static_cast<uint32_t>(payload.size());
  const char header[4] = {static_cast<char>(size), static_cast<char>(size >> 8),
                          static_cast<char>(size >> 16), static_cast<char>(size >> 24)};
  if (auto s = WriteAll(fd, header, sizeof(header), deadline); !s.ok()) return s;
  return WriteAll(fd, payload.data(), payload.size(), deadline);
}

Result<std::string> ReceiveFrame(int fd, std::chrono::milliseconds timeout, size_t max_bytes) {
  const auto deadline = Clock::now() + timeout;
  unsigned char header[4];
  if (auto s = ReadExactly(fd, reinterpret_cast<char*>(header), sizeof(header), deadline);
      !s.ok()) {
    return s.error();
  }
  const uint32_t size =
      header[0] | header[1] << 8 | header[2] << 16 | static_cast<uint32_t>(header[3]) << 24;
  if (size > std::min(max_bytes, kMaxFrameBytes)) {
    return MakeError(ErrorKind::kInternal, "face channel: a frame of " + std::to_string(size) +
                                               " bytes is over the limit");
  }
  std::string payload(size, '\0');
  if (auto s = ReadExactly(fd, payload.data(), size, deadline); !s.ok()) return s.error();
  return payload;
}

}  // namespace tg::face
