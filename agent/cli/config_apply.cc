// Applies a `key = value` config file to a subcommand's flags: each key must be one of the
// subcommand's long flags, and its value goes through that flag's own conversion and checks,
// so the file accepts exactly what the command line accepts. Flags given on the command line
// win over the file. A flag that takes several values (--unit, --cgroup, --upstream) may be
// repeated, one line each, as on the command line; any other key given twice is an error.
#include <algorithm>
#include <map>
#include <set>

#include "agent/cli/cli.h"
#include "agent/config/config_file.h"

namespace tg::cli {
namespace {

std::string ValidKeys(const CLI::App& sub) {
  std::vector<std::string> keys;
  for (const CLI::Option* opt : sub.get_options()) {
    for (const std::string& name : opt->get_lnames()) {
      if (name != "config" && name != "help") keys.push_back(name);
    }
  }
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

}  // namespace

Status ApplyConfigFile(CLI::App& sub, const std::string& path) {
  auto entries = ReadConfigFile(path);
  if (!entries.ok()) return entries.error();
  std::set<const CLI::Option*> on_command_line;
  for (const CLI::Option* opt : sub.get_options()) {
    if (opt->count() > 0) on_command_line.insert(opt);
  }
  std::map<const CLI::Option*, int> first_line;  // of each key the file set
  for (const ConfigEntry& e : *entries) {
    const std::string where = path + ":" + std::to_string(e.line) + ": ";
    CLI::Option* opt =
        e.key == "config" || e.key == "help" ? nullptr : sub.get_option_no_throw("--" + e.key);
    if (opt == nullptr) {
      return MakeError(ErrorKind::kInvalidArgument,
                       where + "unknown key '" + e.key + "'; valid keys: " + ValidKeys(sub));
    }
    if (on_command_line.count(opt) != 0) continue;  // the flag wins
    const auto [first, added] = first_line.emplace(opt, e.line);
    if (!added && opt->get_items_expected_max() <= 1) {
      return MakeError(ErrorKind::kInvalidArgument,
                       where + "'" + e.key + "' is set twice (first on line " +
                           std::to_string(first->second) + "); keep one of the lines");
    }
    try {
      opt->add_result(e.value);
      opt->run_callback();
    } catch (const CLI::Error& err) {
      return MakeError(ErrorKind::kInvalidArgument,
                       where + "bad value for '" + e.key + "': " + err.what());
    }
  }
  return Status::Ok();
}

}  // namespace tg::cli
