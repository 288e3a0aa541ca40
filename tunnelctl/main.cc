// tunnelctl: talks to a running tunnelguard agent over its unix socket.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "client.h"
#include "grpc/defaults.h"

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

int Status(Client& client, bool json) {
  grpc::ClientContext ctx;
  tunnelguard::v1::GetStatusResponse r;
  const auto st = client.stub().GetStatus(WithDeadline(&ctx), {}, &r);
  if (!st.ok()) return Fail(client.Explain(st, "GetStatus"));
  if (json) {
    nlohmann::json j = {{"version", r.version()},
                        {"target", r.target()},
                        {"cgroup", r.cgroup()},
                        {"cgroup_id", r.cgroup_id()},
                        {"target_present", r.target_present()},
                        {"uptime_seconds", r.uptime_seconds()},
                        {"features", nlohmann::json::array()}};
    for (const auto& f : r.features()) {
      j["features"].push_back(
          {{"name", f.name()}, {"available", f.available()}, {"detail", f.detail()}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return tg::ctl::kExitOk;
  }
  std::printf("tunnelguard %s, up %.0f s\n", r.version().c_str(), r.uptime_seconds());
  std::printf("target   %s: %s\n", r.target().c_str(),
              r.target_present() ? ("cgroup " + r.cgroup()).c_str() : "waiting (not running)");
  for (const auto& f : r.features()) {
    std::printf("  %-16s %-4s %s\n", f.name().c_str(), f.available() ? "yes" : "no",
                f.detail().c_str());
  }
  return tg::ctl::kExitOk;
}

int SetMode(Client& client, const std::string& policy, const std::string& mode) {
  grpc::ClientContext ctx;
  tunnelguard::v1::SetModeRequest req;
  req.set_policy(policy);
  req.set_mode(mode);
  tunnelguard::v1::SetModeResponse r;
  const auto st = client.stub().SetMode(WithDeadline(&ctx), req, &r);
  if (!st.ok()) return Fail(client.Explain(st, "SetMode"));
  std::printf("%s: %s -> %s\n", policy.c_str(), r.previous_mode().c_str(), r.mode().c_str());
  return tg::ctl::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tunnelctl: ask a running tunnelguard agent"};
  app.require_subcommand(1);
  std::string socket = tg::grpcapi::kDefaultSocket;
  app.add_option("--socket", socket, "the agent's API socket")->capture_default_str();

  bool json = false;
  auto* status = app.add_subcommand("status", "what is guarded, how, and whether it is proven");
  status->add_flag("--json", json, "print JSON");

  std::string policy, mode;
  auto* mode_cmd = app.add_subcommand("mode", "switch a policy between enforce and audit (root)");
  mode_cmd->add_option("policy", policy, "address_families | wx_memory")->required();
  mode_cmd->add_option("mode", mode, "enforce | audit")
      ->required()
      ->check(CLI::IsMember({"enforce", "audit"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tunnelctl: %s (see 'tunnelctl --help')\n", e.what());
    return tg::ctl::kExitUsage;
  }
  auto connected = Client::Connect(socket);
  if (auto* err = std::get_if<CtlError>(&connected)) return Fail(*err);
  Client& client = std::get<Client>(connected);
  if (status->parsed()) return Status(client, json);
  if (mode_cmd->parsed()) return SetMode(client, policy, mode);
  return tg::ctl::kExitUsage;
}
