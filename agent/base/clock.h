// CLOCK_BOOTTIME is the clock BPF programs read (bpf_ktime_get_boot_ns): times the kernel
// records (events, the canary's last run) are compared with it here, and turned into wall-clock
// time only for display.
#ifndef TUNNELGUARD_AGENT_BASE_CLOCK_H_
#define TUNNELGUARD_AGENT_BASE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace tg {

inline uint64_t TimespecNs(const timespec& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

inline uint64_t BootTimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return TimespecNs(ts);
}

// A CLOCK_BOOTTIME instant as nanoseconds since the Unix epoch.
inline uint64_t BootToUnixNs(uint64_t boot_ns) {
  timespec rt{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  return boot_ns + TimespecNs(rt) - BootTimeNs();
}

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_BASE_CLOCK_H_
