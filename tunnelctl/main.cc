// tunnelctl: talks to a running tunnelguard agent over its unix socket.
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/api/defaults.h"
#include "agent/base/cli_conventions.h"
#include "tunnelctl/client.h"
#include "tunnelctl/stats_view.h"

namespace {

using tg::ctl::Client;
using tg::ctl::CtlError;

int Fail(const CtlError& e) {
  std::fprintf(stderr, "tunnelctl: %s\n", e.message.c_str());
  return e.exit_code;
}

grpc::ClientContext* WithDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return ctx;
}

nlohmann::json PoliciesJson(
    const google::protobuf::RepeatedPtrField<tunnelguard::v1::PolicyStatus>& policies) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : policies) {
    out.push_back({{"name", p.name()},
                   {"mode", p.mode()},
                   {"mechanism", p.mechanism()},
                   {"active", p.active()},
                   {"enforced", p.enforced()},
                   {"canary", p.canary()},
                   {"problem", p.canary_detail()},
                   {"allowed_families", p.allowed_families()},
                   {"notify_socket", p.notify_socket()},
                   {"decisions", tg::ctl::DecisionsJson(p.decisions())}});
  }
  return out;
}

// The top-level target fields are the first tunnel's (as before an agent guarded several);
// tunnels[] has each.
nlohmann::json StatusJson(const tunnelguard::v1::GetStatusResponse& r) {
  nlohmann::json j = {{"version", r.version()},
                      {"target", r.target()},
                      {"cgroup", r.cgroup()},
                      {"cgroup_id", r.cgroup_id()},
                      {"target_present", r.target_present()},
                      {"uptime_seconds", r.uptime_seconds()},
                      {"events_dropped", r.events_dropped()},
                      {"policies", PoliciesJson(r.policies())},
                      {"tunnels", nlohmann::json::array()},
                      {"features", nlohmann::json::array()}};
  for (const auto& t : r.tunnels()) {
    j["tunnels"].push_back({{"target", t.target()},
                            {"cgroup", t.cgroup()},
                            {"cgroup_id", t.cgroup_id()},
                            {"target_present", t.target_present()},
                            {"events_dropped", t.events_dropped()},
                            {"policies", PoliciesJson(t.policies())}});
  }
  for (const auto& f : r.features()) {
    j["features"].push_back(
        {{"name", f.name()}, {"available", f.available()}, {"detail", f.detail()}});
  }
  return j;
}

// Each tunnel: its target line, then its policies (one tunnel reads as it always did).
void PrintTunnel(const tunnelguard::v1::TunnelStatus& t) {
  std::printf("target   %s: %s\n", t.target().c_str(),
              t.target_present() ? ("cgroup " + t.cgroup()).c_str() : "waiting (not running)");
  for (const auto& p : t.policies()) {
    std::printf("policy   %-16s %-7s %s\n", p.name().c_str(), p.mode().c_str(),
                p.enforced() ? ("enforced with " + p.mechanism()).c_str()
                : p.active() ? ("active with " + p.mechanism() + ", cannot deny").c_str()
                             : ("NOT IN FORCE: " + p.canary_detail()).c_str());
    if (!p.notify_socket().empty()) {  // unix-notify: say what AF_UNIX is still allowed to do
      std::printf("         allowed %s: AF_UNIX only for sd_notify datagrams to %s\n",
                  p.allowed_families().c_str(), p.notify_socket().c_str());
    }
  }
}

int Status(Client& client, bool json) {
  grpc::ClientContext ctx;
  tunnelguard::v1::GetStatusResponse r;
  const auto st = client.stub().GetStatus(WithDeadline(&ctx), {}, &r);
  if (!st.ok()) return Fail(client.Explain(st, "GetStatus"));
  if (json) {
    std::printf("%s\n", StatusJson(r).dump(2).c_str());
    return tg::ctl::kExitOk;
  }
  std::printf("tunnelguard %s, up %.0f s\n", r.version().c_str(), r.uptime_seconds());
  if (r.tunnels_size() == 0) {  // an agent from before several tunnels
    tunnelguard::v1::TunnelStatus t;
    t.set_target(r.target());
    t.set_cgroup(r.cgroup());
    t.set_target_present(r.target_present());
    *t.mutable_policies() = r.policies();
    PrintTunnel(t);
  }
  for (const auto& t : r.tunnels()) PrintTunnel(t);
  std::printf("kernel features:\n");
  for (const auto& f : r.features()) {
    std::printf("  %-16s %-4s %s\n", f.name().c_str(), f.available() ? "yes" : "no",
                f.detail().c_str());
  }
  return tg::ctl::kExitOk;
}

int Stats(Client& client, bool json, bool histogram, double watch) {
  for (;;) {
    grpc::ClientContext ctx;
    tunnelguard::v1::GetStatsRequest req;
    req.set_include_histogram(histogram);
    tunnelguard::v1::GetStatsResponse r;
    const auto st = client.stub().GetStats(WithDeadline(&ctx), req, &r);
    if (!st.ok()) return Fail(client.Explain(st, "GetStats"));
    if (json) {
      std::printf("%s\n", tg::ctl::StatsJson(r).dump(watch > 0 ? -1 : 2).c_str());
    } else {
      std::printf("%s", tg::ctl::StatsTable(r).c_str());
      if (histogram) std::printf("%s", tg::ctl::HistogramText(r).c_str());
    }
    std::fflush(stdout);
    if (watch <= 0) return tg::ctl::kExitOk;
    std::this_thread::sleep_for(std::chrono::duration<double>(watch));
    if (!json) std::printf("\n");
  }
}

// One event as `tunnelguard events --json` prints it, with the wall clock instead of the
// kernel's boot-time clock (time_unix_ns) and the events this reader lost before it.
nlohmann::json EventJson(const tunnelguard::v1::Event& e) {
  return {{"policy", e.policy()},
          {"action", e.action()},
          {"detail", e.detail()},
          {"time_unix_ns", e.time_unix_nanos()},
          {"cgroup_id", e.cgroup_id()},
          {"target", e.target()},
          {"pid", e.tgid()},
          {"tid", e.pid()},
          {"uid", e.uid()},
          {"comm", e.comm()},
          {"dropped_before", e.dropped_before()}};
}

int Events(Client& client, const std::string& policy, const std::string& target, bool follow,
           bool json) {
  grpc::ClientContext ctx;
  if (!follow) ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  tunnelguard::v1::WatchEventsRequest req;
  req.set_policy(policy);
  req.set_target(target);
  auto reader = client.stub().WatchEvents(&ctx, req);
  tunnelguard::v1::Event e;
  while (reader->Read(&e)) {
    if (json) {
      std::printf("%s\n", EventJson(e).dump().c_str());
      std::fflush(stdout);
      continue;
    }
    if (e.dropped_before() > 0) {
      std::printf("(%llu events lost: this reader fell behind)\n",
                  static_cast<unsigned long long>(e.dropped_before()));
    }
    const time_t secs = static_cast<time_t>(e.time_unix_nanos() / 1000000000);
    char when[32];
    std::strftime(when, sizeof(when), "%H:%M:%S", std::localtime(&secs));
    std::printf("%s %-16s %-10s %-10s pid %u (%s) uid %u in %s (cgroup %llu)\n", when,
                e.policy().c_str(), e.action().c_str(), e.detail().c_str(), e.tgid(),
                e.comm().c_str(), e.uid(), e.target().empty() ? "?" : e.target().c_str(),
                static_cast<unsigned long long>(e.cgroup_id()));
    std::fflush(stdout);
  }
  const auto st = reader->Finish();
  if (!st.ok() && st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(client.Explain(st, "WatchEvents"));
  }
  return tg::ctl::kExitOk;
}

int SetMode(Client& client, const std::string& policy, const std::string& mode,
            const std::string& target) {
  grpc::ClientContext ctx;
  tunnelguard::v1::SetModeRequest req;
  req.set_policy(policy);
  req.set_mode(mode);
  req.set_target(target);
  tunnelguard::v1::SetModeResponse r;
  const auto st = client.stub().SetMode(WithDeadline(&ctx), req, &r);
  if (!st.ok()) return Fail(client.Explain(st, "SetMode"));
  std::printf("%s: %s -> %s\n", policy.c_str(), r.previous_mode().c_str(), r.mode().c_str());
  return tg::ctl::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tunnelctl: ask a running tunnelguard agent", "tunnelctl"};
  app.require_subcommand(1);
  std::string socket = tg::grpcapi::kDefaultSocket;
  app.add_option("--socket", socket, "the agent's API socket")->capture_default_str();

  bool json = false;
  auto* status = app.add_subcommand("status", "what is guarded, how, and whether it is proven");
  status->add_flag("--json", json, "print JSON");

  bool stats_json = false, histogram = false;
  double watch = 0;
  auto* stats = app.add_subcommand("stats", "latency per upstream and decisions per policy");
  stats->add_flag("--json", stats_json,
                  "JSON (the schema of 'tunnelguard measure --json' plus "
                  "policies[])");
  stats->add_flag("--histogram", histogram, "draw the request latency distribution");
  stats->add_option("--watch", watch, "repeat every SECONDS")->check(CLI::PositiveNumber);

  std::string events_policy, events_target;
  bool follow = false;
  auto* events = app.add_subcommand("events", "denial events (recent ones arrive as they happen)");
  events->add_option("--policy", events_policy, "address_families | wx_memory")
      ->check(CLI::IsMember({"address_families", "wx_memory"}));
  events->add_option("--unit", events_target,
                     "only this tunnel's (its unit or cgroup as 'tunnelctl status' names it)");
  events->add_flag("--follow", follow, "keep following until Ctrl-C (default: 2 s)");
  bool events_json = false;
  events->add_flag("--json", events_json,
                   "one JSON object per event (the keys of 'tunnelguard events --json')");

  std::string policy, mode, mode_target;
  auto* mode_cmd = app.add_subcommand("mode", "switch a policy between enforce and audit (root)");
  mode_cmd->add_option("--unit", mode_target,
                       "only this tunnel (its unit or cgroup as 'tunnelctl status' names it; "
                       "default: every tunnel)");
  mode_cmd->add_option("policy", policy, "address_families | wx_memory")->required();
  mode_cmd->add_option("mode", mode, "enforce | audit")
      ->required()
      ->check(CLI::IsMember({"enforce", "audit"}));

  std::string shell;
  auto* completion = tg::cli_conventions::AddStandard(app, "tunnelctl", shell);

  if (auto exit = tg::cli_conventions::Parse(app, argc, argv, tg::ctl::kExitUsage)) return *exit;
  if (completion->parsed()) {
    std::fputs(tg::cli_conventions::CompletionScript(app, shell).c_str(), stdout);
    return tg::ctl::kExitOk;
  }
  auto connected = Client::Connect(socket);
  if (auto* err = std::get_if<CtlError>(&connected)) return Fail(*err);
  Client& client = std::get<Client>(connected);
  if (status->parsed()) return Status(client, json);
  if (stats->parsed()) return Stats(client, stats_json, histogram, watch);
  if (events->parsed()) return Events(client, events_policy, events_target, follow, events_json);
  if (mode_cmd->parsed()) return SetMode(client, policy, mode, mode_target);
  return tg::ctl::kExitUsage;
}
