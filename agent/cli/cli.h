// The `tunnelguard` command line: a thin face over the agent library. Each subcommand lives in
// its own file and registers itself here; errors from the library become one line on stderr
// and a non-zero exit code, in one place (Fail()).
#ifndef TUNNELGUARD_AGENT_CLI_CLI_H_
#define TUNNELGUARD_AGENT_CLI_CLI_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>

#include "agent/base/result.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/unix_notify.h"
#include "agent/target/cgroup.h"

namespace tg::cli {

// Exit codes (documented in the README).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // the operation failed; stderr says why
inline constexpr int kExitUsage = 2;        // bad flags or arguments
inline constexpr int kExitUnsupported = 3;  // the kernel or system lacks what is needed

// The subcommand chosen on the command line, run after parsing.
using Action = std::function<int()>;

// --cgroup PATH | --unit NAME, shared by every command that takes a target.
struct TargetFlags {
  std::string cgroup;
  std::string unit;
};
void AddTargetFlags(CLI::App& sub, TargetFlags& flags, bool required);
Result<Cgroup> OpenTarget(const TargetFlags& flags);

// --mode, --families, --notify-socket, --wx-memory, --bpffs-dir: the policy flags `attach` and
// `run` share.
struct PolicyFlags {
  std::string mode = "enforce";
  std::string families = "inet,inet6";
  std::string notify_socket = kDefaultNotifySocket;  // unix-notify's peer
  std::string wx_memory = "deny";
  std::string bpffs_dir = kDefaultBpffsDir;
  std::string mechanism = "auto";
  bool observe_seccomp = false;
  std::string observe_hook = "per-call";  // hidden: sys-exit = every call at tp_btf/sys_exit
};
// Returns the --families and --wx-memory options (to tell whether they were given).
std::pair<CLI::Option*, CLI::Option*> AddPolicyFlags(CLI::App& sub, PolicyFlags& flags);
// Flags -> policies; every malformed value is rejected here, before anything is touched.
Result<std::vector<PolicySpec>> BuildPolicies(const PolicyFlags& flags);
// --mechanism: nullopt for auto (chosen by probing).
Result<std::optional<Mechanism>> ParseMechanismFlag(const PolicyFlags& flags);

// Applies a `key = value` file (config_file.h) to `sub`'s long flags; flags already given on
// the command line win. Errors name the file, the line and the key.
Status ApplyConfigFile(CLI::App& sub, const std::string& path);

// Prints "tunnelguard: <message>" and returns the exit code for the error's kind.
int Fail(const Error& error);

void RegisterVersion(CLI::App& app, Action& action);
void RegisterFeatures(CLI::App& app, Action& action);
void RegisterRun(CLI::App& app, Action& action);
void RegisterMeasure(CLI::App& app, Action& action);
void RegisterAttach(CLI::App& app, Action& action);
void RegisterDetach(CLI::App& app, Action& action);
void RegisterStatus(CLI::App& app, Action& action);
void RegisterEvents(CLI::App& app, Action& action);
void RegisterCanary(CLI::App& app, Action& action);

// The daemon's own faces (`tunnelguard __face ...`), before any parsing; nullopt otherwise.
std::optional<int> MaybeRunFace(int argc, char** argv);

}  // namespace tg::cli

#endif  // TUNNELGUARD_AGENT_CLI_CLI_H_
