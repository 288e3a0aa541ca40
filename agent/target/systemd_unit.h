// Asking systemd (PID 1, over the system D-Bus) about a loaded unit: its cgroup and the
// sandbox directives tunnelguard mirrors. Every answer comes from systemd itself, never from a
// guessed path or a parsed unit file, so drop-ins and defaults are accounted for.
#ifndef TUNNELGUARD_AGENT_SYSTEMD_UNIT_H_
#define TUNNELGUARD_AGENT_SYSTEMD_UNIT_H_

#include <memory>
#include <string>
#include <vector>

#include "agent/base/result.h"

typedef struct sd_bus sd_bus;

namespace tg {

class SystemdUnit {
 public:
  // Connects to the system bus and finds the loaded unit. Errors say whether systemd is
  // unreachable (not PID 1: use --cgroup) or the unit is not loaded (check the name).
  static Result<SystemdUnit> Find(const std::string& unit);

  // The unit's ControlGroup below the cgroup2 mount; kNotFound when it is not running.
  Result<std::string> ControlGroup() const;
  // The unit's SubState ("start-pre" while its ExecStartPre= commands run, "running", ...).
  Result<std::string> SubState() const;

  // RestrictAddressFamilies=: (allow_list, names), names like "AF_INET"; both empty when the
  // directive is not set. A deny-list (=~AF_PACKET) has allow_list false and names.
  struct AddressFamilies {
    bool allow_list = false;
    std::vector<std::string> names;
  };
  Result<AddressFamilies> RestrictAddressFamilies() const;
  Result<bool> MemoryDenyWriteExecute() const;
  // A service's Type= ("simple", "notify", "notify-reload", ...); "" for other unit kinds.
  Result<std::string> ServiceType() const;

  const std::string& name() const { return unit_; }

 private:
  struct BusDeleter {
    void operator()(sd_bus* bus) const;
  };
  std::string unit_;
  std::string object_path_;
  const char* interface_ = nullptr;  // org.freedesktop.systemd1.Service, .Scope, ...
  std::unique_ptr<sd_bus, BusDeleter> bus_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_SYSTEMD_UNIT_H_
