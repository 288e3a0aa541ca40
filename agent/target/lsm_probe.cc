#include "agent/target/lsm_probe.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "agent/base/log.h"
#include "bpf/lsm_probe.h"
#include "lsm_probe.skel.h"

namespace tg {

template <>
void SkeletonDeleter<lsm_probe>::operator()(lsm_probe* skel) const {
  lsm_probe__destroy(skel);
}

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "unknown errno";
}

Result<LsmProbe> LsmProbe::Load(int denied_family) {
  return LoadOne(denied_family, Which::kCgroup);
}

Status ProbeGlobalLsm() {
  auto probe = LsmProbe::LoadOne(AF_UNIX, LsmProbe::Which::kGlobal);
  if (!probe.ok()) return probe.error();
  return Status::Ok();
}

Status ProbeUnixNotifyHooks() {
  auto probe = LsmProbe::LoadOne(AF_UNIX, LsmProbe::Which::kUnixNotify);
  if (!probe.ok()) return probe.error();
  return Status::Ok();
}

Result<LsmProbe> LsmProbe::LoadOne(int denied_family, Which which) {
  const bool global = which == Which::kGlobal;
  LsmProbe probe;
  probe.skel_.reset(lsm_probe__open());
  if (!probe.skel_) return FromLibbpf(-errno, "cannot open the lsm_probe BPF object");
  probe.skel_->rodata->denied_family = denied_family;
  bpf_program__set_autoload(probe.skel_->progs.tg_probe_sock, which == Which::kCgroup);
  bpf_program__set_autoload(probe.skel_->progs.tg_probe_gsock, global);
  bpf_program__set_autoload(probe.skel_->progs.tg_probe_send, which == Which::kUnixNotify);
  bpf_program__set_autoload(probe.skel_->progs.tg_probe_pair, which == Which::kUnixNotify);
  // A refusal is an expected answer here, not a warning: keep libbpf's misleading
  // "try raising ulimit -l" hint out of the log while we ask.
  const libbpf_print_fn_t previous = libbpf_set_print(nullptr);
  const int err = lsm_probe__load(probe.skel_.get());
  libbpf_set_print(previous);
  if (err != 0) {
    const int e = -err;
    log::Debug("lsm_probe: load failed: {}", std::strerror(e));
    Error error =
        MakeError(ErrorKind::kUnsupported,
                  std::string("kernel refused ") + (global ? "lsm" : "lsm_cgroup") + " program" +
                      (which == Which::kUnixNotify ? " on unix_may_send/socket_socketpair" : "") +
                      ": " + ErrnoName(e));
    error.sys_errno = e;
    return error;
  }
  return probe;
}

Status LsmProbe::Attach(int cgroup_fd) {
  bpf_link* link = bpf_program__attach_cgroup(skel_->progs.tg_probe_sock, cgroup_fd);
  if (link == nullptr) return FromLibbpf(-errno, "cannot attach lsm_probe to the cgroup");
  link_.reset(link);
  return Status::Ok();
}

uint64_t LsmProbe::allowed() const { return skel_->bss->tg_probe_hits[TG_PROBE_ALLOWED]; }
uint64_t LsmProbe::denied() const { return skel_->bss->tg_probe_hits[TG_PROBE_DENIED]; }

}  // namespace tg
