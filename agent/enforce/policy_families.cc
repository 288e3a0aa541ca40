#include "agent/enforce/policy_families.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/enforce/observe_hooks.h"
#include "agent/enforce/policy_abi_check.h"
#include "agent/enforce/unix_notify.h"
#include "bpf/policy_families.h"
#include "policy_families.skel.h"

namespace tg {
namespace {

// The inode number of the initial pid namespace (include/linux/proc_ns.h, PROC_PID_INIT_INO):
// /proc/self/ns/pid has it exactly when this process sees the host's pids.
constexpr ino_t kProcPidInitIno = 0xEFFFFFFCU;

std::string ReadExe(uint32_t tgid) {
  char buf[PATH_MAX];
  const std::string link = "/proc/" + std::to_string(tgid) + "/exe";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// systemd >= 255 spawns services through this file next to PID 1's executable (NixOS included).
void ReadExecutor(SetupExemption& s) {
  const size_t slash = s.manager_exe.rfind('/');
  if (slash == std::string::npos) return;
  const std::string path = s.manager_exe.substr(0, slash) + "/systemd-executor";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  s.executor_exe = path;
  s.executor_exe_ino = st.st_ino;
}

}  // namespace

SetupExemption DetectSetupExemption() {
  SetupExemption s;
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) != 0) {
    s.off_reason = std::string("cannot read /proc/self/ns/pid: ") + std::strerror(errno);
    return s;
  }
  if (ns.st_ino != kProcPidInitIno) {
    s.off_reason = "agent not in the init pid namespace";
    return s;
  }
  s.manager_tgid = 1;
  // Reading PID 1's exe needs ptrace read access to it (root with CAP_SYS_PTRACE, or all of its
  // capabilities): `attach` in ExecStartPre=+ has it, the sandboxed daemon does not. Only the
  // record needs it; the kernel-side check does not.
  struct stat exe {};
  if (::stat("/proc/1/exe", &exe) == 0) s.manager_exe_ino = exe.st_ino;
  s.manager_exe = ReadExe(1);
  ReadExecutor(s);
  return s;
}

void SetupExemptionToAbi(const SetupExemption& s, tg_setup_exempt& out) {
  out.tgid = s.manager_tgid;
  out.exe_ino = s.manager_exe_ino;
  out.pad = 0;
}

SetupExemption SetupExemptionFromAbi(const tg_setup_exempt& in) {
  SetupExemption s;
  s.manager_tgid = in.tgid;
  s.manager_exe_ino = in.exe_ino;
  if (in.tgid == 0) {
    s.off_reason = "the attaching agent was not in the init pid namespace";
  } else {
    s.manager_exe = ReadExe(in.tgid);
    ReadExecutor(s);
  }
  return s;
}

std::string FormatSetupExemption(const SetupExemption& s) {
  if (s.manager_tgid == 0) return "off: " + s.off_reason;
  std::string out = "pid " + std::to_string(s.manager_tgid) + " " +
                    (s.manager_exe.empty() ? "(executable not readable)" : s.manager_exe);
  if (s.manager_exe_ino != 0) out += " (ino " + std::to_string(s.manager_exe_ino) + ")";
  if (s.manager_exe.empty()) return out;
  if (s.executor_exe.empty()) return out + ", no systemd-executor";
  return out + ", executor " + s.executor_exe + " (ino " + std::to_string(s.executor_exe_ino) + ")";
}

template <>
void SkeletonDeleter<policy_families>::operator()(policy_families* skel) const {
  policy_families__destroy(skel);
}

Result<PolicyObject> LoadFamiliesPolicy(const PolicySpec& spec, Mechanism m) {
  const std::string_view name = PolicyName(PolicyKind::kAddressFamilies);
  Skeleton<policy_families> skel(policy_families__open());
  if (!skel) return FromLibbpf(-errno, "cannot open the address_families BPF object");
  const ObservePlan plan = m == Mechanism::kObserve ? PlanObserve(PolicyKind::kAddressFamilies,
                                                                  spec.observe_sys_exit_calls)
                                                    : ObservePlan{};
  skel->rodata->tg_fam_sys_exit_calls = plan.sys_exit_calls;
  if (auto st = m == Mechanism::kObserve
                    ? SelectObservePrograms(skel->obj, PolicyKind::kAddressFamilies, plan)
                    : SelectPrograms(skel->obj, m, name);
      !st.ok()) {
    return st.error();
  }
  if (auto st = LoadObject(skel->obj, m, name); !st.ok()) return st.error();
  tg_fam_config cfg{ModeToAbi(spec.mode),
                    MechanismToAbi(m),
                    spec.allowed_families,
                    {},
                    {spec.observe_seccomp ? 1u : 0u, plan.sys_exit_calls, 0, 0},
                    {},
                    {}};
  SetupExemptionToAbi(DetectSetupExemption(), cfg.setup);
  if (!spec.notify_socket.empty()) {
    if (auto st = NotifySocketToAbi(spec.notify_socket, cfg.notify); !st.ok()) return st.error();
  }
  if (auto st = WriteConfig(skel->maps.tg_fam_cfg, &cfg, sizeof(cfg), name); !st.ok()) {
    return st.error();
  }
  bpf_object* obj = skel->obj;
  return PolicyObject(PolicyKind::kAddressFamilies, m, std::move(skel), obj);
}

}  // namespace tg
