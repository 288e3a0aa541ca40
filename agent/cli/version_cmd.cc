#include <cstdio>

#include "cli.h"
#include "version.h"

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
