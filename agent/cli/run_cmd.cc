// `tunnelguard run`: the long-running agent (see agent/daemon/daemon.h).
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/base/log.h"
#include "agent/cli/cli.h"
#include "agent/daemon/components.h"
#include "agent/daemon/daemon.h"
#include "agent/enforce/families.h"
#include "agent/grpc/unix_server.h"
#include "agent/latency/histogram.h"
#include "agent/latency/upstreams.h"
#include "agent/target/target_follower.h"
#include "exporter/metrics_server.h"

namespace tg::cli {
namespace {

// The tunnel guarded when neither --unit nor --cgroup is given.
constexpr char kDefaultUnit[] = "cloudflared-tunnel.service";

struct RunFlags {
  std::vector<std::string> units, cgroups;  // repeatable; a config file gives a list
  std::string config;
  std::string metrics_listen = exporter::kDefaultMetricsListen;
  std::string grpc_socket = grpcapi::kDefaultSocket;
  std::string upstreams = std::string(kDefaultUpstreams);
  PolicyFlags policy;
  bool detach_on_exit = false;
  bool bpf_stats = false;
  int canary_interval = 60;
  int buckets_per_decade = 0;
};

// --unit and --cgroup, in that order: each one tunnel; a name given twice is a mistake (two
// followers would attach twice to one cgroup).
Result<std::vector<TargetSpec>> BuildTargets(const RunFlags& f) {
  std::vector<TargetSpec> targets;
  std::set<std::string> names;
  auto add = [&](TargetSpec spec) -> Status {
    for (std::string* v : {&spec.unit, &spec.cgroup}) CLI::detail::trim(*v);  // "a, b"
    if (spec.name().empty()) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "an empty --unit or --cgroup (a stray comma in the list?); name each "
                       "tunnel once, e.g. --unit a.service --unit b.service");
    }
    if (!names.insert(spec.name()).second) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "tunnel '" + spec.name() + "' is given twice; name each tunnel once");
    }
    targets.push_back(std::move(spec));
    return Status::Ok();
  };
  for (const auto& u : f.units) {
    if (auto st = add({.unit = u}); !st.ok()) return st.error();
  }
  for (const auto& c : f.cgroups) {
    if (auto st = add({.cgroup = c}); !st.ok()) return st.error();
  }
  if (targets.empty()) targets.push_back({.unit = kDefaultUnit});
  return targets;
}

// Each tunnel gets its own latency probe and policy component: nothing shared, so one
// tunnel's failure or restart leaves the others alone. Each concern degrades on its own:
// without latency the agent still enforces and reports.
daemon::DaemonParts MakeParts(std::vector<Upstream> upstreams, std::vector<PolicySpec> policies,
                              std::optional<Mechanism> mechanism, std::string bpffs_dir) {
  daemon::DaemonParts parts;
  parts.events = std::make_shared<EventHub>();
  parts.make_tunnel = [=](const TargetSpec& target, EventHub* events) {
    daemon::TunnelParts t;
    if (auto latency = daemon::LatencyComponent::Create(upstreams); latency.ok()) {
      t.latency = std::move(*latency);
    } else {
      log::Error("latency unavailable for {}: {}", target.name(), latency.error().message);
    }
    if (!policies.empty()) {
      t.policy = std::make_unique<daemon::PolicyComponent>(target.name(), policies, bpffs_dir,
                                                           mechanism, events);
    }
    return t;
  };
  return parts;
}

int RunDaemon(const RunFlags& f) {
  auto targets = BuildTargets(f);
  if (!targets.ok()) return Fail(targets.error());
  auto upstreams = ParseUpstreams(f.upstreams);
  if (!upstreams.ok()) return Fail(upstreams.error());
  auto policies = BuildPolicies(f.policy);
  if (!policies.ok()) return Fail(policies.error());
  auto mechanism = ParseMechanismFlag(f.policy);
  if (!mechanism.ok()) return Fail(mechanism.error());
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());

  daemon::DaemonOptions o;
  o.targets = std::move(*targets);
  o.metrics_listen = f.metrics_listen;
  o.detach_on_exit = f.detach_on_exit;
  o.grpc_socket = f.grpc_socket;
  o.bpf_stats = f.bpf_stats;
  o.canary_interval = std::chrono::seconds(f.canary_interval);
  o.buckets_per_decade = f.buckets_per_decade;
  return daemon::Run(
      o, MakeParts(std::move(*upstreams), std::move(*policies), *mechanism, f.policy.bpffs_dir));
}

// --unit/--cgroup on the command line replace the config file's whole list of tunnels (a
// tunnel named on the command line does not join the file's).
Status ApplyConfig(CLI::App& sub, RunFlags& f) {
  const bool given = !f.units.empty() || !f.cgroups.empty();
  const auto units = f.units, cgroups = f.cgroups;
  if (auto st = ApplyConfigFile(sub, f.config); !st.ok()) return st;
  if (given) {
    f.units = units;
    f.cgroups = cgroups;
  }
  return Status::Ok();
}

}  // namespace

namespace {

void AddTunnelFlags(CLI::App& sub, RunFlags& flags) {
  sub.add_option("--unit", flags.units,
                 std::string("a tunnel's systemd unit; repeat it (or give a comma-separated "
                             "list) for several tunnels [default: ") +
                     kDefaultUnit + " when no --cgroup is given either]")
      ->delimiter(',')
      ->type_name("NAME");
  sub.add_option("--cgroup", flags.cgroups,
                 "a tunnel's cgroup v2 directory (absolute, or relative to the cgroup2 mount); "
                 "repeatable like --unit, and may be mixed with it")
      ->delimiter(',')
      ->type_name("PATH");
  sub.add_option("--config", flags.config,
                 "read settings from FILE ('key = value' lines; keys are these flags' names, "
                 "flags given here win)");
}

// What the agent serves and measures: /metrics, the API, the upstreams and their histograms.
void AddServingFlags(CLI::App& sub, RunFlags& flags) {
  sub.add_option("--metrics-listen", flags.metrics_listen,
                 "address of the Prometheus /metrics endpoint")
      ->capture_default_str()
      ->check([](const std::string& v) {
        auto parsed = exporter::ParseListenAddress(v);
        return parsed.ok() ? std::string() : parsed.error().message;
      });
  sub.add_option("--grpc-socket", flags.grpc_socket,
                 "unix socket of the gRPC API used by tunnelctl (\"\" to serve none)")
      ->capture_default_str();
  sub.add_option("--upstream", flags.upstreams,
                 "what latency measures: name=addr:port,... (a name may repeat for more "
                 "addresses; names become the entrypoint label)")
      ->capture_default_str()
      ->check([](const std::string& v) {
        auto parsed = ParseUpstreams(v);
        return parsed.ok() ? std::string() : parsed.error().message;
      });
  sub.add_option("--histogram-buckets-per-decade", flags.buckets_per_decade,
                 "classic le bounds per decade of the latency histograms, 10 us to 60 s (0: the "
                 "16 default bounds; 40 keeps histogram_quantile within ~1.2 % of the kernel's "
                 "quantiles at 275 series per histogram). A Prometheus started with "
                 "--enable-feature=native-histograms gets native buckets (schema 5) instead, "
                 "in one series")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxBucketsPerDecade));
}

// The policy flags' values checked at parse time too, so a bad value in --config names its
// file, line and key.
void CheckPolicyFlagsAtParse(CLI::App& sub) {
  auto checked = [&sub](const char* name, auto parse) {
    sub.get_option(name)->check([parse](const std::string& v) {
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
}

}  // namespace

void RegisterRun(CLI::App& app, Action& action) {
  auto flags = std::make_shared<RunFlags>();
  auto* sub = app.add_subcommand("run", "run the agent: follow the tunnels, serve /metrics");
  AddTunnelFlags(*sub, *flags);
  AddServingFlags(*sub, *flags);
  AddPolicyFlags(*sub, flags->policy);
  CheckPolicyFlagsAtParse(*sub);
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
        if (auto st = ApplyConfig(*sub, *flags); !st.ok()) return Fail(st.error());
      }
      return RunDaemon(*flags);
    };
  });
}

}  // namespace tg::cli
