#include "agent/enforce/policy_status.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/base/clock.h"
#include "agent/base/unique_fd.h"
#include "agent/enforce/families.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/pinned_config.h"
#include "agent/enforce/policy_abi_check.h"
#include "agent/enforce/policy_wx.h"
#include "agent/enforce/unix_notify.h"
#include "agent/target/cgroup.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {
namespace {

// kernfs file handles (cgroupfs): type FILEID_KERNFS, 8 bytes holding the node id.
constexpr int kFileIdKernfs = 0xfe;

Result<UniqueFd> OpenPin(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) return FromErrno(errno, "cannot open pin " + path);
  return fd;
}

void Add(Decisions& d, uint32_t action, uint64_t n) {
  if (action == TG_ACT_ALLOW) d.allow += n;
  if (action == TG_ACT_DENY) d.deny += n;
  if (action == TG_ACT_WOULD_DENY) d.would_deny += n;
  if (action == TG_ACT_DENIED_BY_SECCOMP) d.denied_by_seccomp += n;
  if (action == TG_ACT_EXEMPT_SETUP) d.exempt_setup += n;
}

// Every manifest link pinned, each a live cgroup link of this cgroup.
void CheckLinks(const std::string& dir, uint64_t cgroup_id, PolicyStatus& st) {
  for (const std::string& prog : ManifestFor(st.kind).ProgramsFor(
           st.mechanism.value_or(Mechanism::kLsmCgroup), st.observe_sys_exit_calls)) {
    const std::string path = dir + "/" + LinkPinName(prog);
    auto fd = OpenPin(path);
    if (!fd.ok()) {
      st.problem = "link " + LinkPinName(prog) + " is not pinned";
      return;
    }
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0) {
      st.problem = "cannot inspect link " + LinkPinName(prog);
      return;
    }
    if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id != cgroup_id) {
      st.problem = "link " + LinkPinName(prog) + " is no longer attached (cgroup removed?)";
      return;
    }
  }
  st.active = true;
}

// observe: which calls are hooked at their own exit tracepoint, which at sys_exit (host-wide).
nlohmann::json ObserveHooksJson(const PolicyStatus& p) {
  nlohmann::json per_call = nlohmann::json::array(), sys_exit = nlohmann::json::array();
  for (const ObserveHook& h : ManifestFor(p.kind).observe_hooks) {
    ((h.bit & p.observe_sys_exit_calls) ? sys_exit : per_call).push_back(h.syscall);
  }
  return {{"exit_tracepoint", per_call}, {"sys_exit", sys_exit}};
}

void ReadCanaryState(const tg_canary_state& c, PolicyStatus& st) {
  if (c.last_result == TG_CANARY_PASSED) st.canary_result = "passed";
  if (c.last_result == TG_CANARY_FAILED) st.canary_result = "failed";
  if (c.last_run_ns == 0) return;
  const uint64_t now = BootTimeNs();
  st.canary_age_seconds = now > c.last_run_ns ? static_cast<double>(now - c.last_run_ns) / 1e9 : 0;
}

PolicyStatus ReadPolicy(const std::string& dir, uint64_t cgroup_id, PolicyKind kind) {
  PolicyStatus st;
  st.kind = kind;
  const PinManifest& m = ManifestFor(kind);
  const bool families = kind == PolicyKind::kAddressFamilies;

  if (auto abi = CheckPinnedAbi(dir, kind); !abi.ok()) {
    // Another version's maps: reading them into this build's structs would be wrong (or worse).
    st.problem = abi.error().message;
    return st;
  }
  if (auto c = ReadPinnedConfig(dir, kind); c.ok()) {
    ReadCanaryState(c->canary(), st);
    st.observe_seccomp = c->observe().seccomp != 0;
    st.observe_sys_exit_calls = c->observe().sys_exit_calls;
    st.observe_bare_ns = static_cast<double>(c->observe().cost_bare_ps) / 1000.0;
    st.observe_on_ns = static_cast<double>(c->observe().cost_on_ps) / 1000.0;
    st.mode = ModeFromAbi(c->mode());
    st.mechanism = MechanismFromAbi(c->mechanism());
    if (families) {
      st.allowed_families = FormatFamilies(c->fam.allowed);
      if (UnixNotifyOn(c->fam.allowed)) st.notify_socket = NotifySocketFromAbi(c->fam.notify);
      st.setup = SetupExemptionFromAbi(c->fam.setup);
    }
  }

  const uint32_t details = families ? TG_FAM_SLOTS : TG_WX_DETAILS;
  if (auto counts = ReadPerCpuCounters(dir + "/" + m.counters_map, TG_ACTIONS * details);
      counts.ok()) {
    for (uint32_t action = 0; action < TG_ACTIONS; ++action) {
      for (uint32_t detail = 0; detail < details; ++detail) {
        const uint64_t n = (*counts)[action * details + detail];
        if (n == 0) continue;
        Add(st.decisions, action, n);
        const std::string name =
            families ? FamilyToName(static_cast<int>(detail)) : WxDetailName(detail);
        Add(st.by_detail[name], action, n);
      }
    }
  }
  if (auto drops = ReadPerCpuCounters(dir + "/" + m.drops_map, 1); drops.ok()) {
    st.events_dropped = (*drops)[0];
  }
  if (auto canary = ReadPerCpuCounters(dir + "/" + m.canary_map, TG_ACTIONS); canary.ok()) {
    for (uint32_t action = 0; action < TG_ACTIONS; ++action) {
      Add(st.canary, action, (*canary)[action]);
    }
  }
  CheckLinks(dir, cgroup_id, st);
  return st;
}

nlohmann::json DecisionsJson(const Decisions& d) {
  return {{"allow", d.allow},
          {"deny", d.deny},
          {"would_deny", d.would_deny},
          {"denied_by_seccomp", d.denied_by_seccomp},
          {"exempt_setup", d.exempt_setup}};
}

}  // namespace

// Sum over possible CPUs of every entry of a per-CPU u64 array.
Result<std::vector<uint64_t>> ReadPerCpuCounters(const std::string& path, uint32_t entries) {
  auto fd = OpenPin(path);
  if (!fd.ok()) return fd.error();
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return FromLibbpf(cpus, "cannot count possible CPUs");
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  std::vector<uint64_t> sums(entries);
  for (uint32_t key = 0; key < entries; ++key) {
    if (bpf_map_lookup_elem(fd->get(), &key, per_cpu.data()) != 0) {
      return FromErrno(errno, "cannot read " + path);
    }
    for (uint64_t v : per_cpu) sums[key] += v;
  }
  return sums;
}

namespace {

// Opens a cgroup v2 directory by its id: the id is its kernfs file handle. An open error
// keeps its errno in Error::sys_errno.
Result<UniqueFd> OpenCgroupById(uint64_t cgroup_id) {
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return mount.error();
  UniqueFd mount_fd(::open(mount->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd.valid()) return FromErrno(errno, "cannot open " + *mount);
  union {
    struct file_handle fh;
    char storage[sizeof(struct file_handle) + sizeof(uint64_t)];
  } h{};
  h.fh.handle_bytes = sizeof(uint64_t);
  h.fh.handle_type = kFileIdKernfs;
  std::memcpy(h.fh.f_handle, &cgroup_id, sizeof(cgroup_id));
  UniqueFd fd(::open_by_handle_at(mount_fd.get(), &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return FromErrno(errno, "cannot look up cgroup id " + std::to_string(cgroup_id));
  }
  return fd;
}

}  // namespace

Result<bool> CgroupExists(uint64_t cgroup_id) {
  auto fd = OpenCgroupById(cgroup_id);
  if (fd.ok()) return true;
  // kernfs answers ESTALE (or ENOENT) for an id that no longer names a node.
  if (fd.error().sys_errno == ESTALE || fd.error().sys_errno == ENOENT) return false;
  return fd.error();
}

std::string CgroupPathFromId(uint64_t cgroup_id) {
  auto opened = OpenCgroupById(cgroup_id);
  if (!opened.ok()) return "";
  const UniqueFd& fd = *opened;
  char buf[PATH_MAX];
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  const ssize_t n = ::readlink(proc.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

Result<TargetStatus> ReadTargetStatus(const std::string& base, uint64_t cgroup_id) {
  TargetStatus t;
  t.cgroup_id = cgroup_id;
  t.cgroup = CgroupPathFromId(cgroup_id);
  if (auto exists = CgroupExists(cgroup_id); exists.ok()) t.stale = !*exists;
  t.pin_dir = TargetDir(base, cgroup_id);
  struct stat st {};
  if (::stat(t.pin_dir.c_str(), &st) != 0) {
    return MakeError(ErrorKind::kNotFound,
                     "nothing attached to cgroup id " + std::to_string(cgroup_id));
  }
  for (PolicyKind kind : kAllPolicyKinds) {
    const std::string dir = PolicyDir(base, cgroup_id, kind);
    if (::stat(dir.c_str(), &st) != 0) continue;
    t.policies.push_back(ReadPolicy(dir, cgroup_id, kind));
  }
  return t;
}

Result<StatusReport> ReadStatus(const std::string& base) {
  StatusReport report;
  report.bpffs_dir = base;
  for (uint64_t id : PinnedTargets(base)) {
    auto t = ReadTargetStatus(base, id);
    if (!t.ok()) continue;  // detached meanwhile
    for (const PolicyStatus& p : t->policies) report.events_dropped += p.events_dropped;
    report.targets.push_back(std::move(*t));
  }
  return report;
}

nlohmann::json ToJson(const StatusReport& report) {
  nlohmann::json targets = nlohmann::json::array();
  for (const TargetStatus& t : report.targets) {
    nlohmann::json policies = nlohmann::json::array();
    for (const PolicyStatus& p : t.policies) {
      nlohmann::json details = nlohmann::json::object();
      for (const auto& [name, d] : p.by_detail) details[name] = DecisionsJson(d);
      nlohmann::json j = {
          {"name", PolicyName(p.kind)},
          {"mode", p.mode ? nlohmann::json(ModeName(*p.mode)) : nlohmann::json(nullptr)},
          {"mechanism",
           p.mechanism ? nlohmann::json(MechanismName(*p.mechanism)) : nlohmann::json(nullptr)},
          {"active", p.active},
          {"decisions", DecisionsJson(p.decisions)},
          {"details", details},
          {"events_dropped", p.events_dropped},
      };
      if (!p.problem.empty()) j["problem"] = p.problem;
      if (p.mechanism == Mechanism::kObserve) {
        j["observe"] = {
            {"can_deny", false},
            {"seccomp_denials_counted", p.observe_seccomp},
            {"hooks", ObserveHooksJson(p)},
            {"host_wide_cost",
             {{"getppid_ns_without", p.observe_bare_ns},
              {"getppid_ns_with", p.observe_on_ns},
              {"ratio", p.observe_bare_ns > 0 ? p.observe_on_ns / p.observe_bare_ns : 0.0}}}};
      }
      j["canary"] = {
          {"result", p.canary_result},
          {"seconds_ago", p.canary_age_seconds < 0 ? nlohmann::json(nullptr)
                                                   : nlohmann::json(p.canary_age_seconds)},
          {"decisions", DecisionsJson(p.canary)}};
      if (p.kind == PolicyKind::kAddressFamilies) j["allowed_families"] = p.allowed_families;
      if (!p.notify_socket.empty()) j["notify_socket"] = p.notify_socket;
      if (p.setup) {
        j["setup_exemption"] =
            p.setup->manager_tgid == 0
                ? nlohmann::json{{"manager_pid", nullptr}, {"off", p.setup->off_reason}}
                : nlohmann::json{{"manager_pid", p.setup->manager_tgid},
                                 {"manager_exe", p.setup->manager_exe},
                                 {"manager_exe_ino", p.setup->manager_exe_ino},
                                 {"executor_exe", p.setup->executor_exe.empty()
                                                      ? nlohmann::json(nullptr)
                                                      : nlohmann::json(p.setup->executor_exe)},
                                 {"executor_exe_ino", p.setup->executor_exe_ino}};
      }
      policies.push_back(std::move(j));
    }
    targets.push_back(
        {{"cgroup", t.cgroup.empty() ? nlohmann::json(nullptr) : nlohmann::json(t.cgroup)},
         {"cgroup_id", t.cgroup_id},
         {"stale", t.stale},
         {"pin_dir", t.pin_dir},
         {"policies", policies}});
  }
  return {{"bpffs_dir", report.bpffs_dir},
          {"targets", targets},
          {"events_dropped", report.events_dropped}};
}

}  // namespace tg
