// tunnelguard: guards and measures a Cloudflare Tunnel's cgroup with eBPF.
#include <cstdio>

#include "agent/base/log.h"
#include "agent/cli/cli.h"

int main(int argc, char** argv) {
  using namespace tg::cli;
  CLI::App app{"tunnelguard: guards and measures a Cloudflare Tunnel with eBPF"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "debug logging, libbpf's included");

  Action action;
  RegisterVersion(app, action);
  RegisterFeatures(app, action);
  RegisterRun(app, action);
  RegisterMeasure(app, action);
  RegisterAttach(app, action);
  RegisterDetach(app, action);
  RegisterStatus(app, action);
  RegisterEvents(app, action);
  RegisterCanary(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tunnelguard: %s (see 'tunnelguard --help')\n", e.what());
    return kExitUsage;
  }
  tg::log::SetMaxLevel(verbose ? tg::log::Level::kDebug : tg::log::Level::kInfo);
  tg::log::RouteLibbpf();
  return action ? action() : kExitUsage;
}
