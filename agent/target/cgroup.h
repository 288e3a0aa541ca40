// Targets: from a systemd unit or a cgroup path to an open cgroup v2 directory and its id.
// The cgroup2 mount is always found from /proc/mounts (hybrid hosts mount it at
// /sys/fs/cgroup/unified, unified ones at /sys/fs/cgroup), never assumed.
#ifndef TUNNELGUARD_AGENT_CGROUP_H_
#define TUNNELGUARD_AGENT_CGROUP_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"

namespace tg {

struct Cgroup {
  std::string path;      // absolute path, under the cgroup2 mount
  std::string relative;  // path below the mount, "/" for the root ("/system.slice/x.service")
  uint64_t id = 0;       // the kernel's cgroup id (bpf_get_current_cgroup_id() returns it)
  UniqueFd fd;           // O_DIRECTORY fd, what BPF cgroup attachment takes
};

// The mount point of the first cgroup2 filesystem in a /proc/mounts-format text.
Result<std::string> FindCgroup2Mount(std::string_view proc_mounts);
// The same, reading /proc/mounts.
Result<std::string> FindCgroup2Mount();

// Opens a cgroup v2 directory. `path` is absolute (under the cgroup2 mount) or relative to the
// mount ("/system.slice/x.service" as systemd prints it). A cgroup v1 path, a path outside
// cgroupfs or a missing one is an error that says how to fix it.
Result<Cgroup> OpenCgroup(const std::string& path);

// Asks systemd (over D-Bus) for a loaded unit's ControlGroup and opens it.
Result<Cgroup> OpenUnitCgroup(const std::string& unit);

// The cgroup id of an open cgroup directory (its file handle, as systemd reads it).
Result<uint64_t> CgroupId(int dir_fd);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_CGROUP_H_
