// The notify socket of the unix-notify family mode (families.h): the one AF_UNIX peer a
// Type=notify tunnel may send datagrams to, written as systemd writes $NOTIFY_SOCKET — a path
// ("/run/systemd/notify") or "@name" for an abstract socket — and as the BPF side compares it:
// the peer socket's bound address (bpf/policy_families.h, struct tg_unix_notify).
#ifndef TUNNELGUARD_AGENT_UNIX_NOTIFY_H_
#define TUNNELGUARD_AGENT_UNIX_NOTIFY_H_

#include <string>
#include <string_view>

#include "agent/base/result.h"

struct tg_unix_notify;

namespace tg {

// The system manager's notify socket on every systemd (PID 1 binds it; services get it as
// $NOTIFY_SOCKET). A user manager's or a container's differs: --notify-socket.
inline constexpr char kDefaultNotifySocket[] = "/run/systemd/notify";

// Checks `address` ("/abs/path" or "@abstract", at most 107 bytes of path or name: sun_path
// holds 108 with the path's NUL or the abstract name's leading NUL) and fills `out` with the
// address as the kernel records a bound socket's.
Status NotifySocketToAbi(std::string_view address, tg_unix_notify& out);

// The address back, as written ("" when `in` holds none).
std::string NotifySocketFromAbi(const tg_unix_notify& in);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_UNIX_NOTIFY_H_
