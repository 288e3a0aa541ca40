// Address family names as users write them (systemd's AF_* names, lower case, without the
// prefix) and the allow-list bitmap the address_families policy keeps in its BPF map.
#ifndef TUNNELGUARD_AGENT_FAMILIES_H_
#define TUNNELGUARD_AGENT_FAMILIES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "agent/base/result.h"

namespace tg {

struct FamilyName {
  std::string_view name;  // "inet6"
  int family;             // AF_INET6
};

// Every family the kernel defines (Linux 6.x, AF_UNIX..AF_MCTP), by name.
std::span<const FamilyName> KnownFamilies();

// The list token of the unix-notify mode: AF_UNIX only for sd_notify's datagrams to the
// notify socket (unix_notify.h); every other AF_UNIX use is refused. Carried in the mask as
// bit TG_FAM_UNIX_NOTIFY_BIT (bpf/policy_families.h). Exclusive with "unix".
inline constexpr std::string_view kUnixNotifyToken = "unix-notify";
// The mask asks for unix-notify (and does not allow AF_UNIX outright).
bool UnixNotifyOn(uint64_t mask);
// The counter/event details the unix-notify mode adds past the families ("unix_notify",
// "unix_peer", "unix_socketpair"), with their slot numbers.
std::span<const FamilyName> UnixNotifyDetails();

// "inet,inet6" → bit N set for each family N. Names are case-insensitive and may carry the
// AF_ prefix ("AF_INET"); "local" is unix and "route" netlink, as in <sys/socket.h>; "none"
// alone is the empty list (deny every family). Unknown names are an error listing the valid
// ones; an empty list or empty element is an error too.
Result<uint64_t> ParseFamilies(std::string_view list);

// "inet" for AF_INET, a unix-notify reason for its detail slot ("unix_peer"), "af_<n>" for a
// number without a name.
std::string FamilyToName(int family);

// "inet,inet6" for a bitmap ("inet,inet6,unix-notify" with that mode), "none" for 0.
std::string FormatFamilies(uint64_t mask);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_FAMILIES_H_
