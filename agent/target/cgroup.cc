#include "agent/target/cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "agent/target/systemd_unit.h"

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
  auto u = SystemdUnit::Find(unit);
  if (!u.ok()) return u.error();
  auto cgroup = u->ControlGroup();
  if (!cgroup.ok()) return cgroup.error();
  return OpenCgroup(*cgroup);
}

}  // namespace tg
