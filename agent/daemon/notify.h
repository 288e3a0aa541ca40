// systemd's notify protocol (Type=notify): READY=1, STATUS=, STOPPING=1, WATCHDOG=1, via
// libsystemd's sd_notify(). Without $NOTIFY_SOCKET every call is a no-op, so the daemon runs
// the same outside systemd.
#ifndef TUNNELGUARD_AGENT_DAEMON_NOTIFY_H_
#define TUNNELGUARD_AGENT_DAEMON_NOTIFY_H_

#include <chrono>
#include <string_view>

namespace tg::daemon {

void NotifyReady(std::string_view status);
void NotifyStatus(std::string_view status);
void NotifyStopping();
void NotifyWatchdog();

// Half of WatchdogSec= when the service manager asked for pings, else zero.
std::chrono::microseconds WatchdogPingInterval();

}  // namespace tg::daemon

#endif  // TUNNELGUARD_AGENT_DAEMON_NOTIFY_H_
