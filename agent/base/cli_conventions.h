// What both command lines (`tunnelguard`, `tunnelctl`) share, built on their own CLI11
// definitions so nothing is written twice: `--version`, the parse step with its exit codes,
// and `completion bash|zsh|fish`, a completion script generated from the subcommands and
// flags as declared. The man pages are generated from `--help` by help2man (deploy/CMakeLists.txt).
#ifndef TUNNELGUARD_AGENT_BASE_CLI_CONVENTIONS_H_
#define TUNNELGUARD_AGENT_BASE_CLI_CONVENTIONS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tg::cli_conventions {

// Adds `--version` (prints "NAME VERSION", exit 0) and the `completion SHELL` subcommand,
// whose chosen shell lands in `shell`. Returns that subcommand.
CLI::App* AddStandard(CLI::App& app, std::string_view name, std::string& shell);

// Parses; nullopt to go on, or the exit code: 0 after --help/--version, `usage_exit` after a
// bad command line (one line on stderr naming the problem and where to look).
std::optional<int> Parse(CLI::App& app, int argc, char** argv, int usage_exit);

// A completion script for `shell` (bash, zsh or fish): subcommands with their descriptions,
// and each one's flags. Empty for an unknown shell (the subcommand's check rejects those).
std::string CompletionScript(const CLI::App& app, std::string_view shell);

}  // namespace tg::cli_conventions

#endif  // TUNNELGUARD_AGENT_BASE_CLI_CONVENTIONS_H_
