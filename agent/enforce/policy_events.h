// Denials as they happen: the enforcement objects' ring buffers, read from their bpffs pins,
// decoded into PolicyEvent. Counters are never derived from events (events may drop;
// counters stay exact), so this is for logs and streams only.
#ifndef TUNNELGUARD_AGENT_POLICY_EVENTS_H_
#define TUNNELGUARD_AGENT_POLICY_EVENTS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/base/bpf_owners.h"
#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/enforce/policy.h"

struct tg_policy_event;

namespace tg {

enum class Action { kAllow, kDeny, kWouldDeny, kDeniedBySeccomp };
// "allow", "deny", "would_deny", "denied_by_seccomp"
std::string_view ActionName(Action a);

struct PolicyEvent {
  PolicyKind policy = PolicyKind::kAddressFamilies;
  Action action = Action::kDeny;
  std::string detail;    // family name ("packet") or memory operation ("mmap_wx")
  uint64_t time_ns = 0;  // CLOCK_BOOTTIME
  uint64_t cgroup_id = 0;
  uint32_t pid = 0;  // process id (the kernel's tgid)
  uint32_t tid = 0;  // thread id (the kernel's pid)
  uint32_t uid = 0;
  std::string comm;
  uint64_t arg0 = 0;  // see bpf/policy_abi.h
  uint64_t arg1 = 0;
  // The tunnel it came from, as `tunnelctl status` names it (its unit or cgroup); set by the
  // daemon, which knows which tunnel's pins it reads. Empty from the bare event stream.
  std::string target;
};

PolicyEvent DecodeEvent(const tg_policy_event& raw);

class EventStream {
 public:
  using Callback = std::function<void(const PolicyEvent&)>;

  // Subscribes to the events of every policy pinned for one target.
  static Result<EventStream> Open(const std::string& base, uint64_t cgroup_id, Callback cb);

  // Waits up to timeout_ms and delivers what arrived; returns how many. EINTR counts as 0.
  Result<int> Poll(int timeout_ms);

 private:
  std::unique_ptr<Callback> callback_;  // stable address for libbpf's ctx pointer
  std::vector<UniqueFd> fds_;
  RingBuffer ring_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_EVENTS_H_
