// What this kernel and system offer, probed once per concern. Each feature degrades on its
// own: a missing one is reported with its cause, never faked.
#ifndef TUNNELGUARD_AGENT_KERNEL_FEATURES_H_
#define TUNNELGUARD_AGENT_KERNEL_FEATURES_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/base/result.h"

namespace tg {

// Mounts a pseudo filesystem (bpf, securityfs, tracefs) at `path` unless one of that type is
// already mounted there. The agent needs them; a fresh boot may not have them.
Status EnsureMounted(const std::string& fstype, const std::string& path);

// Splits securityfs's "lockdown,capability,bpf" into names.
std::vector<std::string> ParseLsmList(std::string_view text);
// The active LSMs from /sys/kernel/security/lsm (mounting securityfs when needed).
Result<std::vector<std::string>> ActiveLsms();
// The one wording of every message about a missing bpf LSM: "bpf is not in the active LSM list
// (lockdown,capability)", and the lsm= value that fixes it ("lockdown,capability,bpf").
std::string BpfNotListed(const std::vector<std::string>& lsms);
std::string LsmListWithBpf(const std::vector<std::string>& lsms);

struct Feature {
  bool available = false;
  std::string detail;  // what was found, or why it is unavailable
};

struct KernelFeatures {
  std::string kernel_release;
  std::string cgroup2_mount;
  std::vector<std::string> lsms;  // empty when securityfs could not be read
  Feature bpffs;
  Feature bpf_lsm_listed;  // `bpf` in the active LSM list
  Feature lsm_cgroup;      // the kernel loads an lsm_cgroup program
  Feature unix_notify;     // ... and on unix_may_send/socket_socketpair (families unix-notify)
};

KernelFeatures ProbeKernelFeatures();
nlohmann::json ToJson(const KernelFeatures& f);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_KERNEL_FEATURES_H_
