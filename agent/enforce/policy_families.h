// Loader for bpf/policy_families.bpf.c: RestrictAddressFamilies= as a BPF-LSM policy.
#ifndef TUNNELGUARD_AGENT_POLICY_FAMILIES_H_
#define TUNNELGUARD_AGENT_POLICY_FAMILIES_H_

#include <cstdint>
#include <string>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_object.h"

struct tg_setup_exempt;

namespace tg {

// The service manager whose exec children are exempt while they set a service up, until the
// service's exec (bpf/policy_families.bpf.c, tg_fam_setup_exempt; docs/enforcement.md).
struct SetupExemption {
  uint32_t manager_tgid = 0;  // global pid of the service manager (1); 0: exemption off
  std::string manager_exe;    // its executable (/proc/1/exe), "" when it cannot be read
  uint64_t manager_exe_ino = 0;
  // systemd >= 255's systemd-executor next to manager_exe, "" when there is none (systemd <= 254)
  // or manager_exe is unknown. For the record: the kernel finds it by its directory entry.
  std::string executor_exe;
  uint64_t executor_exe_ino = 0;
  std::string off_reason;  // why manager_tgid is 0
};

// PID 1 when this process is in the init pid namespace (so pid 1 is the host's PID 1, the
// service manager); off otherwise. PID 1's executable is read for the record only (the kernel
// compares the caller's executable with its parent's itself).
SetupExemption DetectSetupExemption();
void SetupExemptionToAbi(const SetupExemption& s, tg_setup_exempt& out);
// From a pinned config; `manager_exe` is read now from /proc/<tgid>/exe.
SetupExemption SetupExemptionFromAbi(const tg_setup_exempt& in);
// "pid 1 /usr/lib/systemd/systemd (ino 1234), executor /usr/lib/systemd/systemd-executor
// (ino 5678)", "… (ino 1234), no systemd-executor" or "off: agent not in the init pid namespace".
std::string FormatSetupExemption(const SetupExemption& s);

// Opens, selects the programs of `m`, loads, and writes mode and allow-list (spec.mode,
// spec.allowed_families) and the set-up exemption (DetectSetupExemption) into the config map.
// Nothing is attached yet.
Result<PolicyObject> LoadFamiliesPolicy(const PolicySpec& spec, Mechanism m);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_FAMILIES_H_
