#include "agent/target/kernel_features.h"

#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/target/cgroup.h"
#include "agent/target/lsm_probe.h"

namespace tg {
namespace {

bool MountedAs(const std::string& fstype, const std::string& path) {
  std::ifstream f("/proc/mounts");
  std::string source, target, type, rest;
  while (f >> source >> target >> type && std::getline(f, rest)) {
    if (target == path && type == fstype) return true;
  }
  return false;
}

}  // namespace

Status EnsureMounted(const std::string& fstype, const std::string& path) {
  if (MountedAs(fstype, path)) return Status::Ok();
  if (::mount(fstype.c_str(), path.c_str(), fstype.c_str(), 0, nullptr) != 0) {
    return FromErrno(errno, "cannot mount " + fstype + " at " + path);
  }
  return Status::Ok();
}

std::vector<std::string> ParseLsmList(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text) {
    if (c == ',' || c == '\n' || c == ' ') {
      if (!item.empty()) out.push_back(std::move(item));
      item.clear();
    } else {
      item.push_back(c);
    }
  }
  if (!item.empty()) out.push_back(std::move(item));
  return out;
}

Result<std::vector<std::string>> ActiveLsms() {
  if (auto st = EnsureMounted("securityfs", "/sys/kernel/security"); !st.ok()) {
    return st.error();
  }
  std::ifstream f("/sys/kernel/security/lsm");
  if (!f) return FromErrno(errno, "cannot read /sys/kernel/security/lsm");
  std::stringstream text;
  text << f.rdbuf();
  return ParseLsmList(text.str());
}

std::string BpfNotListed(const std::vector<std::string>& lsms) {
  return fmt::format("bpf is not in the active LSM list ({})", fmt::join(lsms, ","));
}

std::string LsmListWithBpf(const std::vector<std::string>& lsms) {
  return fmt::format("{},bpf", fmt::join(lsms, ","));
}

KernelFeatures ProbeKernelFeatures() {
  KernelFeatures f;
  struct utsname u {};
  if (::uname(&u) == 0) f.kernel_release = u.release;
  if (auto m = FindCgroup2Mount(); m.ok()) f.cgroup2_mount = *m;

  if (auto st = EnsureMounted("bpf", "/sys/fs/bpf"); st.ok()) {
    f.bpffs = {true, "/sys/fs/bpf"};
  } else {
    f.bpffs = {false, st.error().message};
  }

  if (auto lsms = ActiveLsms(); lsms.ok()) {
    f.lsms = *lsms;
    const bool listed = std::find(f.lsms.begin(), f.lsms.end(), "bpf") != f.lsms.end();
    f.bpf_lsm_listed = {
        listed, listed ? "bpf is in the active LSM list"
                       : BpfNotListed(f.lsms) + "; boot with lsm=" + LsmListWithBpf(f.lsms)};
  } else {
    f.bpf_lsm_listed = {false, lsms.error().message};
  }

  if (auto probe = LsmProbe::Load(AF_UNIX); probe.ok()) {
    f.lsm_cgroup = {true, "the kernel loads lsm_cgroup programs"};
  } else {
    f.lsm_cgroup = {false, probe.error().message};
  }
  // Asked on its own: a kernel could load lsm_cgroup on socket_create and refuse these.
  if (auto st = ProbeUnixNotifyHooks(); st.ok()) {
    f.unix_notify = {true,
                     "the kernel loads lsm_cgroup programs on unix_may_send and "
                     "socket_socketpair (families unix-notify)"};
  } else {
    f.unix_notify = {false, st.error().message + " (families unix-notify cannot be enforced)"};
  }
  return f;
}

nlohmann::json ToJson(const KernelFeatures& f) {
  auto feature = [](const Feature& x) {
    return nlohmann::json{{"available", x.available}, {"detail", x.detail}};
  };
  return {
      {"kernel_release", f.kernel_release},
      {"cgroup2_mount", f.cgroup2_mount},
      {"lsms", f.lsms},
      {"bpffs", feature(f.bpffs)},
      {"bpf_lsm_listed", feature(f.bpf_lsm_listed)},
      {"lsm_cgroup", feature(f.lsm_cgroup)},
      {"unix_notify", feature(f.unix_notify)},
  };
}

}  // namespace tg
