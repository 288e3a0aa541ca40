#include "mechanism.h"

#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "kernel_features.h"
#include "lsm_probe.h"

namespace tg {
namespace {

Error Unavailable(const std::string& why, int err = 0) {
  Error e = MakeError(ErrorKind::kUnsupported, "enforcement unavailable: " + why);
  e.sys_errno = err;
  return e;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// lsm_cgroup works when the kernel loads such a program *and* bpf is an active LSM: with
// `bpf` missing from lsm=, programs load and attach and are never called (kernel-facts §2).
Status ProbeLsmCgroup(bool check_lsm_list) {
  auto probe = LsmProbe::Load(AF_UNIX);
  if (!probe.ok()) return Unavailable(probe.error().message, probe.error().sys_errno);
  if (!check_lsm_list) return Status::Ok();
  auto lsms = ActiveLsms();
  if (!lsms.ok()) return Unavailable("cannot read the active LSM list: " + lsms.error().message);
  if (std::find(lsms->begin(), lsms->end(), "bpf") == lsms->end()) {
    return Unavailable("bpf is not in the active LSM list (" + Join(*lsms) +
                       "); boot with lsm=" + Join(*lsms) + ",bpf");
  }
  return Status::Ok();
}

}  // namespace

Result<Mechanism> ChooseMechanism(std::optional<Mechanism> requested, Mode /*mode*/,
                                  bool check_lsm_list) {
  const Mechanism wanted = requested.value_or(Mechanism::kLsmCgroup);
  if (wanted != Mechanism::kLsmCgroup) {
    return Unavailable("mechanism " + std::string(MechanismName(wanted)) +
                       " is not implemented yet; use lsm_cgroup");
  }
  if (auto st = ProbeLsmCgroup(check_lsm_list); !st.ok()) return st.error();
  return Mechanism::kLsmCgroup;
}

}  // namespace tg
