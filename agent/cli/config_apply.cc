// Applies a `key = value` config file to a subcommand's flags: each key must be one of the
// subcommand's long flags, and its value goes through that flag's own conversion and checks,
// so the file accepts exactly what the command line accepts. Flags given on the command line
// win over the file.
#include <algorithm>

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
  for (const ConfigEntry& e : *entries) {
    const std::string where = path + ":" + std::to_string(e.line) + ": ";
    CLI::Option* opt =
        e.key == "config" || e.key == "help" ? nullptr : sub.get_option_no_throw("--" + e.key);
    if (opt == nullptr) {
      return MakeError(ErrorKind::kInvalidArgument,
                       where + "unknown key '" + e.key + "'; valid keys: " + ValidKeys(sub));
    }
    if (opt->count() > 0) continue;  // given on the command line: the flag wins
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
