// `tunnelguard run`: the long-running agent (see agent/daemon/daemon.h).
#include <memory>

#include "agent/base/log.h"
#include "agent/cli/cli.h"
#include "agent/daemon/components.h"
#include "agent/daemon/daemon.h"
#include "agent/enforce/families.h"
#include "agent/grpc/unix_server.h"
#include "agent/latency/upstreams.h"
#include "exporter/metrics_server.h"

namespace tg::cli {
namespace {

struct RunFlags {
  TargetFlags target;
  std::string config;
  std::string metrics_listen = exporter::kDefaultMetricsListen;
  std::string grpc_socket = grpcapi::kDefaultSocket;
  std::string upstreams = std::string(kDefaultUpstreams);
  PolicyFlags policy;
  bool detach_on_exit = false;
  bool bpf_stats = false;
  int canary_interval = 60;
};

int RunDaemon(const RunFlags& f) {
  auto upstreams = ParseUpstreams(f.upstreams);
  if (!upstreams.ok()) return Fail(upstreams.error());
  auto policies = BuildPolicies(f.policy);
  if (!policies.ok()) return Fail(policies.error());
  auto mechanism = ParseMechanismFlag(f.policy);
  if (!mechanism.ok()) return Fail(mechanism.error());
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());

  daemon::DaemonParts parts;
  parts.events = std::make_shared<EventHub>();
  // Each concern degrades on its own: without latency the agent still enforces and reports.
  if (auto latency = daemon::LatencyComponent::Create(*upstreams); latency.ok()) {
    parts.latency = std::move(*latency);
  } else {
    log::Error("latency unavailable: {}", latency.error().message);
  }
  if (!policies->empty()) {
    parts.policy = std::make_unique<daemon::PolicyComponent>(
        std::move(*policies), f.policy.bpffs_dir, *mechanism, parts.events.get());
  }
  daemon::DaemonOptions o;
  o.cgroup = f.target.cgroup;
  o.unit = f.target.unit;
  o.metrics_listen = f.metrics_listen;
  o.detach_on_exit = f.detach_on_exit;
  o.grpc_socket = f.grpc_socket;
  o.bpf_stats = f.bpf_stats;
  o.canary_interval = std::chrono::seconds(f.canary_interval);
  return daemon::Run(o, std::move(parts));
}

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
  sub->add_option("--upstream", flags->upstreams,
                  "what latency measures: name=addr:port,... (a name may repeat for more "
                  "addresses; names become the entrypoint label)")
      ->capture_default_str()
      ->check([](const std::string& v) {
        auto parsed = ParseUpstreams(v);
        return parsed.ok() ? std::string() : parsed.error().message;
      });
  AddPolicyFlags(*sub, flags->policy);
  // Checked at parse time too, so a bad value in --config names its file, line and key.
  auto checked = [sub](const char* name, auto parse) {
    sub->get_option(name)->check([parse](const std::string& v) {
      auto r = parse(v);
      return r.ok() ? std::string() : r.error().message;
    });
  };
  checked("--mode", [](const std::string& v) { return ParseMode(v); });
  checked("--families", [](const std::string& v) {
    return v == "off" ? Result<uint64_t>(uint64_t{0}) : ParseFamilies(v);
  });
  checked("--wx-memory", [](const std::string& v) -> Result<bool> {
    if (v == "deny" || v == "off") return v == "deny";
    return MakeError(ErrorKind::kInvalidArgument, "unknown value '" + v + "'; use deny or off");
  });
  checked("--mechanism", [](const std::string& v) -> Result<bool> {
    if (v == "auto") return true;
    auto m = ParseMechanism(v);
    if (!m.ok()) return m.error();
    return true;
  });
  sub->add_option("--canary-interval", flags->canary_interval,
                  "prove enforcement again every SECONDS with a real forbidden attempt")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  sub->add_flag("--bpf-stats", flags->bpf_stats,
                "turn on kernel BPF run-time statistics while running (adds a little cost to "
                "every BPF program run, all of the host's)");
  sub->add_flag("--detach-on-exit", flags->detach_on_exit,
                "remove pinned enforcement on a clean exit (default: keep it in force)");
  sub->callback([&action, flags, sub] {
    action = [flags, sub] {
      if (!flags->config.empty()) {
        if (auto st = ApplyConfigFile(*sub, flags->config); !st.ok()) return Fail(st.error());
      }
      return RunDaemon(*flags);
    };
  });
}

}  // namespace tg::cli
