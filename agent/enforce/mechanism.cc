#include "agent/enforce/mechanism.h"

#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "agent/base/log.h"
#include "agent/target/kernel_features.h"
#include "agent/target/lsm_probe.h"

namespace tg {
namespace {

Error Unavailable(const std::string& why, int err = 0) {
  Error e = MakeError(ErrorKind::kUnsupported, "enforcement unavailable: " + why);
  e.sys_errno = err;
  return e;
}

// lsm_cgroup works when the kernel loads such a program *and* bpf is an active LSM: with
// `bpf` missing from lsm=, programs load and attach and are never called.
Status CheckLsmList(bool check_lsm_list) {
  if (!check_lsm_list) return Status::Ok();
  auto lsms = ActiveLsms();
  if (!lsms.ok()) return Unavailable("cannot read the active LSM list: " + lsms.error().message);
  if (std::find(lsms->begin(), lsms->end(), "bpf") == lsms->end()) {
    return Unavailable(BpfNotListed(*lsms) + "; boot with lsm=" + LsmListWithBpf(*lsms));
  }
  return Status::Ok();
}

Result<Mechanism> ChooseLsm(std::optional<Mechanism> requested, bool check_lsm_list);

// observe cannot deny: it sees system calls at exit, after the fact.
Result<Mechanism> Observe(Mode mode, const std::string& why) {
  if (mode == Mode::kEnforce) {
    return Unavailable(why + (why.empty() ? "" : "; ") +
                       "the observe mechanism (syscall exit tracepoints) can only audit, it "
                       "cannot deny: use --mode audit, or a kernel with BPF-LSM to enforce");
  }
  if (!why.empty()) log::Notice("BPF-LSM unavailable ({}); using observe (audit only)", why);
  return Mechanism::kObserve;
}

}  // namespace

Result<Mechanism> ChooseMechanism(std::optional<Mechanism> requested, Mode mode,
                                  bool check_lsm_list) {
  if (requested == Mechanism::kObserve) return Observe(mode, "");
  auto chosen = ChooseLsm(requested, check_lsm_list);
  if (chosen.ok() || requested.has_value()) return chosen;
  // No usable BPF-LSM (refused, or bpf missing from lsm=): audit still works through observe.
  if (mode == Mode::kAudit) return Observe(mode, chosen.error().message);
  Error e = chosen.error();
  e.message += " (--mode audit works without BPF-LSM, through the observe mechanism)";
  return e;
}

namespace {

Result<Mechanism> ChooseLsm(std::optional<Mechanism> requested, bool check_lsm_list) {
  if (requested == Mechanism::kLsmGlobal) {
    if (auto st = ProbeGlobalLsm(); !st.ok()) {
      return Unavailable(st.error().message, st.error().sys_errno);
    }
    if (auto st = CheckLsmList(check_lsm_list); !st.ok()) return st.error();
    return Mechanism::kLsmGlobal;
  }
  auto cgroup_probe = LsmProbe::Load(AF_UNIX);
  if (cgroup_probe.ok() || requested == Mechanism::kLsmCgroup) {
    if (!cgroup_probe.ok()) {
      return Unavailable(cgroup_probe.error().message, cgroup_probe.error().sys_errno);
    }
    if (auto st = CheckLsmList(check_lsm_list); !st.ok()) return st.error();
    return Mechanism::kLsmCgroup;
  }
  // lsm_cgroup refused (kernels 5.7-5.19 have BPF-LSM without it): global lsm/ programs
  // filtered by cgroup carry the same policies.
  if (auto st = ProbeGlobalLsm(); !st.ok()) {
    return Unavailable(cgroup_probe.error().message + "; lsm_global: " + st.error().message,
                       cgroup_probe.error().sys_errno);
  }
  log::Notice("lsm_cgroup unavailable ({}); using lsm_global", cgroup_probe.error().message);
  if (auto st = CheckLsmList(check_lsm_list); !st.ok()) return st.error();
  return Mechanism::kLsmGlobal;
}

}  // namespace
}  // namespace tg
