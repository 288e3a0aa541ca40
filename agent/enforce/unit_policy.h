// `attach --policy-from-unit`: the policy a unit asks systemd for, so tunnelguard enforces
// exactly what the unit says and cannot drift from it.
#ifndef TUNNELGUARD_AGENT_UNIT_POLICY_H_
#define TUNNELGUARD_AGENT_UNIT_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/base/result.h"
#include "agent/target/systemd_unit.h"

namespace tg {

struct UnitPolicy {
  std::optional<uint64_t> allowed_families;  // nullopt: the unit restricts no family
  bool wx_memory = false;                    // MemoryDenyWriteExecute=yes
  std::string summary;                       // what was read, as the unit would say it, for the log
};

// From the two directives as systemd reports them. A deny-list (RestrictAddressFamilies=~…)
// becomes every known family but those. Neither directive set is an error naming the flags
// that can stand in. `service_type` is the unit's Type= ("" for a unit that is no service): for
// Type=notify and Type=notify-reload an allow-list naming AF_UNIX is read as sd_notify's need
// and narrowed to unix-notify (families.h): AF_UNIX only for datagrams to the notify socket,
// which systemd's own directive cannot say. --families given explicitly still wins.
Result<UnitPolicy> PolicyFromDirectives(const std::string& unit,
                                        const SystemdUnit::AddressFamilies& families, bool mdwe,
                                        std::string_view service_type = "");

// Reads the directives and the service type from systemd (D-Bus) for a loaded unit.
Result<UnitPolicy> ReadUnitPolicy(const SystemdUnit& unit);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_UNIT_POLICY_H_
