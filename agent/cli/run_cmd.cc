// `tunnelguard run`: the long-running agent (see agent/daemon/daemon.h).
#include <memory>

#include "cli.h"
#include "daemon/daemon.h"
#include "grpc/unix_server.h"
#include "metrics_server.h"

namespace tg::cli {
namespace {

struct RunFlags {
  TargetFlags target;
  std::string config;
  std::string metrics_listen = exporter::kDefaultMetricsListen;
  std::string grpc_socket = grpcapi::kDefaultSocket;
  bool detach_on_exit = false;
};

}  // namespace

void RegisterRun(CLI::App& app, Action& action) {
  auto flags = std::make_shared<RunFlags>();
  flags->target.unit = "cloudflared-tunnel.service";
  auto* sub = app.add_subcommand("run", "run the agent: follow the tunnel, serve /metrics");
  AddTargetFlags(*sub, flags->target, /*required=*/false);
  sub->get_option("--unit")->capture_default_str();
  sub->add_option("--config", flags->config,
                  "read settings from FILE ('key = value' lines; keys are these flags' names, "
                  "flags given here win)");
  sub->add_option("--metrics-listen", flags->metrics_listen,
                  "address of the Prometheus /metrics endpoint")
      ->capture_default_str()
      ->check([](const std::string& v) {
        auto parsed = exporter::ParseListenAddress(v);
        return parsed.ok() ? std::string() : parsed.error().message;
      });
  sub->add_option("--grpc-socket", flags->grpc_socket,
                  "unix socket of the gRPC API used by tunnelctl (\"\" to serve none)")
      ->capture_default_str();
  sub->add_flag("--detach-on-exit", flags->detach_on_exit,
                "remove pinned enforcement on a clean exit (default: keep it in force)");
  sub->callback([&action, flags, sub] {
    action = [flags, sub] {
      if (!flags->config.empty()) {
        if (auto st = ApplyConfigFile(*sub, flags->config); !st.ok()) return Fail(st.error());
      }
      daemon::DaemonOptions o;
      o.cgroup = flags->target.cgroup;
      o.unit = flags->target.unit;
      o.metrics_listen = flags->metrics_listen;
      o.detach_on_exit = flags->detach_on_exit;
      o.grpc_socket = flags->grpc_socket;
      return daemon::Run(o, {});
    };
  });
}

}  // namespace tg::cli
