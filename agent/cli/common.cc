#include <algorithm>
#include <cstdio>
#include <string_view>

#include "agent/cli/cli.h"
#include "agent/enforce/families.h"
#include "agent/enforce/observe_hooks.h"
#include "agent/enforce/pin_layout.h"
#include "bpf/policy_families.h"

namespace tg::cli {

void AddTargetFlags(CLI::App& sub, TargetFlags& flags, bool required) {
  auto* cg = sub.add_option("--cgroup", flags.cgroup,
                            "target cgroup v2 directory (absolute, or relative to the cgroup2 "
                            "mount)");
  auto* unit =
      sub.add_option("--unit", flags.unit, "target systemd unit; its cgroup is asked from systemd");
  cg->excludes(unit);
  if (required) {
    auto* group = sub.add_option_group("target", "what to guard or measure");
    group->add_option(cg);
    group->add_option(unit);
    group->require_option(1);
  }
}

Result<Cgroup> OpenTarget(const TargetFlags& flags) {
  if (!flags.unit.empty()) return OpenUnitCgroup(flags.unit);
  return OpenCgroup(flags.cgroup);
}

std::pair<CLI::Option*, CLI::Option*> AddPolicyFlags(CLI::App& sub, PolicyFlags& flags) {
  sub.add_option("--mode", flags.mode, "enforce (deny) or audit (allow, report would_deny)")
      ->capture_default_str();
  auto* families =
      sub.add_option("--families", flags.families,
                     "allowed address families, comma-separated (unix, inet, inet6, netlink, "
                     "packet, vsock, alg, xdp, …); unix-notify allows AF_UNIX only for sd_notify "
                     "datagrams to --notify-socket (Type=notify units); 'none' allows none, "
                     "'off' attaches no family policy")
          ->capture_default_str();
  sub.add_option("--notify-socket", flags.notify_socket,
                 "with unix-notify in --families: the one AF_UNIX peer allowed, a path or "
                 "@NAME (abstract), as systemd's $NOTIFY_SOCKET")
      ->capture_default_str()
      ->check([](const std::string& v) {
        tg_unix_notify abi{};
        auto st = NotifySocketToAbi(v, abi);
        return st.ok() ? std::string() : st.error().message;
      });
  auto* wx = sub.add_option("--wx-memory", flags.wx_memory, "deny W+X memory (deny) or not (off)")
                 ->capture_default_str();
  sub.add_option("--bpffs-dir", flags.bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub.add_option("--mechanism", flags.mechanism,
                 "auto (probe: lsm-cgroup, else lsm-global, else observe for --mode audit), "
                 "lsm-cgroup, lsm-global, observe (audit only; host-wide cost, see status)")
      ->capture_default_str();
  sub.add_flag("--observe-seccomp", flags.observe_seccomp,
               "observe: also count systemd's own seccomp refusals (RestrictAddressFamilies=, "
               "MemoryDenyWriteExecute=) as denied_by_seccomp");
  // Hidden (empty group): sys-exit hooks every watched call at the host-wide sys_exit
  // tracepoint (the older design), so the benchmarks measure both designs in one run;
  // sys-exit=CALL,... only those calls (the per-call fallback of a kernel that lacks their
  // tracepoints, made on purpose by the tests). Checked in BuildPolicies.
  sub.add_option("--observe-hook", flags.observe_hook,
                 "observe: per-call (each call's exit tracepoint), sys-exit (host-wide), or "
                 "sys-exit=CALL[,CALL...] (those calls host-wide)")
      ->group("");
  return {families, wx};
}

namespace {

// --observe-hook: the TG_OBS_* bits of `kind`'s calls to hook at the host-wide sys_exit.
Result<uint32_t> ParseObserveHook(const std::string& value, PolicyKind kind) {
  if (value == "per-call") return 0u;
  if (value == "sys-exit") return ~0u;
  constexpr std::string_view kPrefix = "sys-exit=";
  const auto bad = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "--observe-hook '" + value + "': " + why +
                         "; use per-call, sys-exit or sys-exit=CALL[,CALL...] (calls: " +
                         ObserveCallNames(PolicyKind::kAddressFamilies, ~0u) + ", " +
                         ObserveCallNames(PolicyKind::kWxMemory, ~0u) + ")");
  };
  if (value.rfind(kPrefix, 0) != 0) return bad("unknown value");
  if (value.size() == kPrefix.size()) return bad("names no call");
  uint32_t bits = 0;
  std::string_view rest = std::string_view(value).substr(kPrefix.size());
  while (!rest.empty()) {
    const size_t comma = std::min(rest.find(','), rest.size());
    const std::string call(rest.substr(0, comma));
    rest.remove_prefix(std::min(comma + 1, rest.size()));
    const auto& own = ManifestFor(kind).observe_hooks;
    const auto& other = ManifestFor(kind == PolicyKind::kWxMemory ? PolicyKind::kAddressFamilies
                                                                  : PolicyKind::kWxMemory)
                            .observe_hooks;
    const auto named = [&](const ObserveHook& h) { return h.syscall == call; };
    if (auto it = std::find_if(own.begin(), own.end(), named); it != own.end()) {
      bits |= it->bit;
    } else if (std::none_of(other.begin(), other.end(), named)) {
      return bad("no policy watches '" + call + "'");
    }
  }
  return bits;
}

}  // namespace

Result<std::vector<PolicySpec>> BuildPolicies(const PolicyFlags& f) {
  auto mode = ParseMode(f.mode);
  if (!mode.ok()) return mode.error();
  std::vector<PolicySpec> policies;
  if (f.families != "off") {
    auto mask = ParseFamilies(f.families);
    if (!mask.ok()) return mask.error();
    policies.push_back({PolicyKind::kAddressFamilies, *mode, *mask,
                        UnixNotifyOn(*mask) ? f.notify_socket : std::string()});
  }
  if (f.wx_memory == "deny") {
    policies.push_back({PolicyKind::kWxMemory, *mode, 0});
  } else if (f.wx_memory != "off") {
    return MakeError(ErrorKind::kInvalidArgument,
                     "unknown --wx-memory value '" + f.wx_memory + "'; use deny or off");
  }
  for (PolicySpec& p : policies) {
    p.observe_seccomp = f.observe_seccomp;
    auto calls = ParseObserveHook(f.observe_hook, p.kind);
    if (!calls.ok()) return calls.error();
    p.observe_sys_exit_calls = *calls;
  }
  return policies;
}

Result<std::optional<Mechanism>> ParseMechanismFlag(const PolicyFlags& f) {
  if (f.mechanism == "auto") return std::optional<Mechanism>();
  auto m = ParseMechanism(f.mechanism);
  if (!m.ok()) return m.error();
  return std::optional<Mechanism>(*m);
}

int Fail(const Error& error) {
  std::fprintf(stderr, "tunnelguard: %s\n", error.message.c_str());
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
      return kExitUsage;
    case ErrorKind::kUnsupported:
      return kExitUnsupported;
    default:
      return kExitFailure;
  }
}

}  // namespace tg::cli
