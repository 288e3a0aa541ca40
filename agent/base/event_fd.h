// An eventfd used as a stop signal: one writer wakes every poll/epoll that watches it.
#ifndef TUNNELGUARD_AGENT_BASE_EVENT_FD_H_
#define TUNNELGUARD_AGENT_BASE_EVENT_FD_H_

#include <unistd.h>

#include <cstdint>

namespace tg {

// Makes `fd` (an eventfd) readable; a no-op for -1. Never fails in a way worth reporting: the
// counter only overflows after 2^64 - 1 signals.
inline void SignalEventFd(int fd) {
  if (fd < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_BASE_EVENT_FD_H_
