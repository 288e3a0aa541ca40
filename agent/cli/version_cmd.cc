#include <cstdio>

#include "agent/base/version.h"
#include "agent/cli/cli.h"

namespace tg::cli {

void RegisterVersion(CLI::App& app, Action& action) {
  app.add_subcommand("version", "print the version")->callback([&action] {
    action = [] {
      std::printf("tunnelguard %s\n", kVersion);
      return kExitOk;
    };
  });
}

}  // namespace tg::cli
