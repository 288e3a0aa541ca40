// tunnelguard: guards and measures a Cloudflare Tunnel's cgroup with eBPF.
#include <cstdio>

#include "agent/base/cli_conventions.h"
#include "agent/base/log.h"
#include "agent/cli/cli.h"

int main(int argc, char** argv) {
  using namespace tg::cli;
  if (auto face = MaybeRunFace(argc, argv)) return *face;
  CLI::App app{"tunnelguard: guards and measures a Cloudflare Tunnel with eBPF", "tunnelguard"};
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
  std::string shell;
  auto* completion = tg::cli_conventions::AddStandard(app, "tunnelguard", shell);

  if (auto exit = tg::cli_conventions::Parse(app, argc, argv, kExitUsage)) return *exit;
  if (completion->parsed()) {
    std::fputs(tg::cli_conventions::CompletionScript(app, shell).c_str(), stdout);
    return kExitOk;
  }
  tg::log::SetMaxLevel(verbose ? tg::log::Level::kDebug : tg::log::Level::kInfo);
  tg::log::RouteLibbpf();
  return action ? action() : kExitUsage;
}
