#include "agent/target/systemd_unit.h"

#include <systemd/sd-bus.h>

#include <cstring>
#include <string_view>

namespace tg {
namespace {

constexpr char kSystemd[] = "org.freedesktop.systemd1";

// The D-Bus interface that carries a unit type's cgroup and sandbox properties.
const char* UnitInterface(std::string_view unit) {
  const auto dot = unit.rfind('.');
  const std::string_view type = dot == std::string_view::npos ? "" : unit.substr(dot + 1);
  if (type == "service") return "org.freedesktop.systemd1.Service";
  if (type == "scope") return "org.freedesktop.systemd1.Scope";
  if (type == "slice") return "org.freedesktop.systemd1.Slice";
  if (type == "socket") return "org.freedesktop.systemd1.Socket";
  if (type == "mount") return "org.freedesktop.systemd1.Mount";
  if (type == "swap") return "org.freedesktop.systemd1.Swap";
  return nullptr;
}

// Frees an sd_bus_error on every path and says what went wrong.
class BusError {
 public:
  ~BusError() { sd_bus_error_free(&e_); }
  sd_bus_error* get() { return &e_; }
  std::string Why(int r) const { return e_.message != nullptr ? e_.message : std::strerror(-r); }

 private:
  sd_bus_error e_ = SD_BUS_ERROR_NULL;
};

}  // namespace

void SystemdUnit::BusDeleter::operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }

Result<SystemdUnit> SystemdUnit::Find(const std::string& unit) {
  SystemdUnit u;
  u.unit_ = unit;
  u.interface_ = UnitInterface(unit);
  if (u.interface_ == nullptr) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "'" + unit + "' is not a unit name with a cgroup; give e.g. " +
                         "cloudflared-tunnel.service");
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  u.bus_.reset(raw);
  if (r < 0) {
    return MakeError(ErrorKind::kUnsupported, "cannot reach systemd on the system bus to resolve " +
                                                  unit + " (" + std::strerror(-r) +
                                                  "); is systemd PID 1? Use --cgroup PATH instead");
  }
  BusError err;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call_method(u.bus_.get(), kSystemd, "/org/freedesktop/systemd1",
                         "org.freedesktop.systemd1.Manager", "GetUnit", err.get(), &reply, "s",
                         unit.c_str());
  if (r < 0) {
    return MakeError(ErrorKind::kNotFound,
                     "systemd has no loaded unit " + unit + " (" + err.Why(r) +
                         "); start it first or check the name with 'systemctl status'");
  }
  const char* object = nullptr;
  r = sd_bus_message_read(reply, "o", &object);
  if (r >= 0 && object != nullptr) u.object_path_ = object;
  sd_bus_message_unref(reply);
  if (u.object_path_.empty()) return FromErrno(-r, "bad GetUnit reply for " + unit);
  return u;
}

Result<std::string> SystemdUnit::ControlGroup() const {
  BusError err;
  char* cgroup = nullptr;
  const int r = sd_bus_get_property_string(bus_.get(), kSystemd, object_path_.c_str(), interface_,
                                           "ControlGroup", err.get(), &cgroup);
  std::unique_ptr<char, decltype(&free)> owner(cgroup, &free);
  if (r < 0) {
    return MakeError(ErrorKind::kInternal,
                     "cannot read ControlGroup of " + unit_ + ": " + err.Why(r));
  }
  if (cgroup == nullptr || cgroup[0] == '\0') {
    return MakeError(ErrorKind::kNotFound,
                     unit_ +
                         " has no cgroup (it is not running); start it, or attach from its "
                         "ExecStartPre=");
  }
  return std::string(cgroup);
}

Result<std::string> SystemdUnit::SubState() const {
  BusError err;
  char* state = nullptr;
  const int r =
      sd_bus_get_property_string(bus_.get(), kSystemd, object_path_.c_str(),
                                 "org.freedesktop.systemd1.Unit", "SubState", err.get(), &state);
  std::unique_ptr<char, decltype(&free)> owner(state, &free);
  if (r < 0) {
    return MakeError(ErrorKind::kInternal, "cannot read SubState of " + unit_ + ": " + err.Why(r));
  }
  return std::string(state != nullptr ? state : "");
}

Result<SystemdUnit::AddressFamilies> SystemdUnit::RestrictAddressFamilies() const {
  BusError err;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_get_property(bus_.get(), kSystemd, object_path_.c_str(), interface_,
                              "RestrictAddressFamilies", err.get(), &reply, "(bas)");
  if (r < 0) {
    return MakeError(ErrorKind::kInternal,
                     "cannot read RestrictAddressFamilies of " + unit_ + ": " + err.Why(r));
  }
  AddressFamilies out;
  int allow = 0;
  char** names = nullptr;
  if ((r = sd_bus_message_enter_container(reply, 'r', "bas")) >= 0 &&
      (r = sd_bus_message_read(reply, "b", &allow)) >= 0 &&
      (r = sd_bus_message_read_strv(reply, &names)) >= 0) {
    out.allow_list = allow != 0;
    for (char** n = names; n != nullptr && *n != nullptr; ++n) {
      out.names.emplace_back(*n);
      free(*n);
    }
    free(names);
  }
  sd_bus_message_unref(reply);
  if (r < 0) return FromErrno(-r, "bad RestrictAddressFamilies reply for " + unit_);
  return out;
}

Result<std::string> SystemdUnit::ServiceType() const {
  if (interface_ == nullptr || std::string_view(interface_) != "org.freedesktop.systemd1.Service") {
    return std::string();
  }
  BusError err;
  char* type = nullptr;
  const int r = sd_bus_get_property_string(bus_.get(), kSystemd, object_path_.c_str(), interface_,
                                           "Type", err.get(), &type);
  std::unique_ptr<char, decltype(&free)> owner(type, &free);
  if (r < 0)
    return MakeError(ErrorKind::kInternal, "cannot read Type of " + unit_ + ": " + err.Why(r));
  return std::string(type != nullptr ? type : "");
}

Result<bool> SystemdUnit::MemoryDenyWriteExecute() const {
  BusError err;
  int value = 0;
  const int r = sd_bus_get_property_trivial(bus_.get(), kSystemd, object_path_.c_str(), interface_,
                                            "MemoryDenyWriteExecute", err.get(), 'b', &value);
  if (r < 0) {
    return MakeError(ErrorKind::kInternal,
                     "cannot read MemoryDenyWriteExecute of " + unit_ + ": " + err.Why(r));
  }
  return value != 0;
}

}  // namespace tg
