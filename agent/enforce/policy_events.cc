#include "agent/enforce/policy_events.h"

#include <bpf/bpf.h>
#include <sys/stat.h>

#include <cstring>

#include "agent/enforce/families.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_abi_check.h"
#include "agent/enforce/policy_wx.h"
#include "bpf/policy_abi.h"

namespace tg {
namespace {

int OnEvent(void* ctx, void* data, size_t size) {
  if (size < sizeof(tg_policy_event)) return 0;
  tg_policy_event raw{};
  std::memcpy(&raw, data, sizeof(raw));
  (*static_cast<EventStream::Callback*>(ctx))(DecodeEvent(raw));
  return 0;
}

}  // namespace

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kAllow:
      return "allow";
    case Action::kDeny:
      return "deny";
    case Action::kWouldDeny:
      return "would_deny";
    case Action::kDeniedBySeccomp:
      return "denied_by_seccomp";
  }
  return "unknown";
}

PolicyEvent DecodeEvent(const tg_policy_event& raw) {
  PolicyEvent e;
  e.policy = raw.policy == TG_POLICY_WX ? PolicyKind::kWxMemory : PolicyKind::kAddressFamilies;
  e.action = raw.action == TG_ACT_ALLOW               ? Action::kAllow
             : raw.action == TG_ACT_DENY              ? Action::kDeny
             : raw.action == TG_ACT_DENIED_BY_SECCOMP ? Action::kDeniedBySeccomp
                                                      : Action::kWouldDeny;
  e.detail = e.policy == PolicyKind::kWxMemory ? WxDetailName(raw.detail)
                                               : FamilyToName(static_cast<int>(raw.detail));
  e.time_ns = raw.time_ns;
  e.cgroup_id = raw.cgroup_id;
  e.pid = raw.tgid;
  e.tid = raw.pid;
  e.uid = raw.uid;
  e.comm.assign(raw.comm, strnlen(raw.comm, sizeof(raw.comm)));
  e.arg0 = raw.arg0;
  e.arg1 = raw.arg1;
  return e;
}

Result<EventStream> EventStream::Open(const std::string& base, uint64_t cgroup_id, Callback cb) {
  EventStream s;
  s.callback_ = std::make_unique<Callback>(std::move(cb));
  for (PolicyKind kind : kAllPolicyKinds) {
    const std::string path = PolicyDir(base, cgroup_id, kind) + "/" + ManifestFor(kind).events_map;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // policy not attached
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid()) return FromErrno(errno, "cannot open " + path);
    if (!s.ring_) {
      s.ring_.reset(ring_buffer__new(fd.get(), OnEvent, s.callback_.get(), nullptr));
      if (!s.ring_) return FromLibbpf(-errno, "cannot read events from " + path);
    } else if (const int err =
                   ring_buffer__add(s.ring_.get(), fd.get(), OnEvent, s.callback_.get());
               err != 0) {
      return FromLibbpf(err, "cannot read events from " + path);
    }
    s.fds_.push_back(std::move(fd));
  }
  if (!s.ring_) {
    return MakeError(ErrorKind::kNotFound,
                     "nothing attached to cgroup id " + std::to_string(cgroup_id));
  }
  return s;
}

Result<int> EventStream::Poll(int timeout_ms) {
  const int n = ring_buffer__poll(ring_.get(), timeout_ms);
  if (n == -EINTR) return 0;
  if (n < 0) return FromLibbpf(n, "cannot poll policy events");
  return n;
}

}  // namespace tg
