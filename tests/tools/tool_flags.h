// Command-line conventions shared by the test tools (CLI11): the flags several tools have
// (--port, --host, --path, --cgroup, durations), last occurrence wins, and bad usage is one line
// on stderr naming the problem and exit status 2 (--help prints the usage and exits 0).
#ifndef TUNNELGUARD_TESTS_TOOLS_TOOL_FLAGS_H_
#define TUNNELGUARD_TESTS_TOOLS_TOOL_FLAGS_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "net_util.h"

namespace tg::tools {

// An app named `name` (the tool's name, which prefixes every error line).
inline void ConfigureApp(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.option_defaults()->always_capture_default();
  const std::string name = app.get_name();
  app.failure_message([name](const CLI::App*, const CLI::Error& e) {
    return name + ": " + e.what() + " (see --help)\n";
  });
}

// Parses argv into the options' variables. Returns the exit status when the tool must stop now
// (0 after --help, 2 on a usage error, the message printed), nullopt to carry on.
inline std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// A usage error found after parsing: one line, exit status 2.
inline int UsageError(const CLI::App& app, const std::string& why) {
  std::fprintf(stderr, "%s: %s (see --help)\n", app.get_name().c_str(), why.c_str());
  return 2;
}

inline CLI::Option* AddPort(CLI::App& app, int& port, const std::string& what) {
  return app.add_option("--port", port, what);
}

inline CLI::Option* AddHost(CLI::App& app, std::string& host) {
  return app.add_option("--host", host, "numeric IPv4/IPv6 address");
}

inline CLI::Option* AddPath(CLI::App& app, std::string& path) {
  return app.add_option("--path", path, "request path");
}

inline CLI::Option* AddCgroup(CLI::App& app, std::string& cgroup) {
  return app.add_option("--cgroup", cgroup, "cgroup directory to join first")->type_name("DIR");
}

// The flags of the tools that are HTTP clients in a cgroup: --port, --host, --path, --cgroup into
// the like-named members of `cfg`.
template <typename ClientConfig>
void AddClientFlags(CLI::App& app, ClientConfig& cfg) {
  AddPort(app, cfg.port, "server port (required)");
  AddHost(app, cfg.host);
  AddPath(app, cfg.path);
  AddCgroup(app, cfg.cgroup);
}

// A duration in ParseDuration's syntax ("10ms", "250us", "1.5s", "3" seconds) into nanoseconds.
inline CLI::Option* AddDuration(CLI::App& app, const std::string& flag, int64_t& ns,
                                const std::string& what) {
  return app
      .add_option_function<std::string>(
          flag, [&ns](const std::string& text) { ns = ParseDuration(text).value_or(0); }, what)
      ->check(CLI::Validator(
          [](std::string& text) {
            return ParseDuration(text) ? std::string() : "bad duration '" + text + "'";
          },
          "DURATION"));
}

}  // namespace tg::tools

#endif  // TUNNELGUARD_TESTS_TOOLS_TOOL_FLAGS_H_
