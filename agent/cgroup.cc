#include "cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <systemd/sd-bus.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace tg {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// /proc/mounts escapes spaces and friends as \ooo.
std::string UnescapeMountField(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size()) {
      const std::string oct(in.substr(i + 1, 3));
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

struct BusDeleter {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};

// The D-Bus interface that carries ControlGroup for a unit of this type.
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

}  // namespace

Result<std::string> FindCgroup2Mount(std::string_view proc_mounts) {
  std::istringstream in{std::string(proc_mounts)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source, target, fstype;
    if (fields >> source >> target >> fstype && fstype == "cgroup2") {
      return UnescapeMountField(target);
    }
  }
  return MakeError(ErrorKind::kUnsupported,
                   "no cgroup2 filesystem is mounted (see /proc/mounts); mount one with "
                   "'mount -t cgroup2 none /sys/fs/cgroup' or boot with cgroup v2 enabled");
}

Result<std::string> FindCgroup2Mount() {
  std::ifstream f("/proc/mounts");
  if (!f) return FromErrno(errno, "cannot read /proc/mounts");
  std::stringstream text;
  text << f.rdbuf();
  return FindCgroup2Mount(text.str());
}

Result<uint64_t> CgroupId(int dir_fd) {
  // struct file_handle with room for the 8-byte cgroup id (kernfs node id).
  union {
    struct file_handle fh;
    char storage[sizeof(struct file_handle) + sizeof(uint64_t)];
  } h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (::name_to_handle_at(dir_fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0) {
    return FromErrno(errno, "cannot read the cgroup id");
  }
  uint64_t id = 0;
  std::memcpy(&id, h.fh.f_handle, sizeof(id));
  return id;
}

Result<Cgroup> OpenCgroup(const std::string& path) {
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return mount.error();
  std::string full = path;
  struct stat st {};
  const bool under_mount = StartsWith(path, *mount + "/") || path == *mount;
  if (path.empty() || path[0] != '/' ||
      (!under_mount && ::stat(path.c_str(), &st) != 0 && errno == ENOENT)) {
    // Not an existing absolute path: read it as relative to the cgroup2 mount.
    full = *mount + (path.empty() || path[0] != '/' ? "/" : "") + path;
  }
  while (full.size() > 1 && full.back() == '/') full.pop_back();

  UniqueFd fd(::open(full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return MakeError(ErrorKind::kNotFound, "no such cgroup: " + path + " (looked for " + full +
                                                 "); give a directory under the cgroup2 mount " +
                                                 *mount);
    }
    return FromErrno(errno, "cannot open cgroup " + full);
  }
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0) return FromErrno(errno, "cannot statfs " + full);
  if (fs.f_type == CGROUP_SUPER_MAGIC) {
    return MakeError(ErrorKind::kInvalidArgument,
                     full +
                         " is a cgroup v1 directory; BPF attaches only to cgroup v2: use the "
                         "same cgroup under the cgroup2 mount " +
                         *mount);
  }
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    return MakeError(ErrorKind::kInvalidArgument,
                     full +
                         " is not a cgroup directory; give a directory under the cgroup2 "
                         "mount " +
                         *mount);
  }
  auto id = CgroupId(fd.get());
  if (!id.ok()) return id.error();
  Cgroup cg;
  cg.path = full;
  cg.relative = StartsWith(full, *mount) ? full.substr(mount->size()) : full;
  if (cg.relative.empty()) cg.relative = "/";
  cg.id = *id;
  cg.fd = std::move(fd);
  return cg;
}

Result<Cgroup> OpenUnitCgroup(const std::string& unit) {
  const char* iface = UnitInterface(unit);
  if (iface == nullptr) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "'" + unit +
                         "' is not a unit name with a cgroup; give e.g. "
                         "cloudflared-tunnel.service");
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  std::unique_ptr<sd_bus, BusDeleter> bus(raw);
  if (r < 0) {
    return MakeError(ErrorKind::kUnsupported, "cannot reach systemd on the system bus to resolve " +
                                                  unit + " (" + std::strerror(-r) +
                                                  "); is systemd PID 1? Use --cgroup PATH instead");
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call_method(bus.get(), "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                         "org.freedesktop.systemd1.Manager", "GetUnit", &err, &reply, "s",
                         unit.c_str());
  if (r < 0) {
    std::string why = err.message != nullptr ? err.message : std::strerror(-r);
    sd_bus_error_free(&err);
    return MakeError(ErrorKind::kNotFound,
                     "systemd has no loaded unit " + unit + " (" + why +
                         "); start it first or check the name with 'systemctl status'");
  }
  const char* object = nullptr;
  r = sd_bus_message_read(reply, "o", &object);
  std::string object_path = r >= 0 && object != nullptr ? object : "";
  sd_bus_message_unref(reply);
  if (object_path.empty()) return FromErrno(-r, "bad GetUnit reply for " + unit);

  char* cgroup = nullptr;
  r = sd_bus_get_property_string(bus.get(), "org.freedesktop.systemd1", object_path.c_str(), iface,
                                 "ControlGroup", &err, &cgroup);
  std::unique_ptr<char, decltype(&free)> cgroup_owner(cgroup, &free);
  if (r < 0) {
    std::string why = err.message != nullptr ? err.message : std::strerror(-r);
    sd_bus_error_free(&err);
    return MakeError(ErrorKind::kInternal, "cannot read ControlGroup of " + unit + ": " + why);
  }
  if (cgroup == nullptr || cgroup[0] == '\0') {
    return MakeError(ErrorKind::kNotFound, unit +
                                               " has no cgroup (it is not running); start "
                                               "it, or attach from its ExecStartPre=");
  }
  return OpenCgroup(cgroup);
}

}  // namespace tg
