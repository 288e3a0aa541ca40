// `tunnelguard events (--cgroup PATH | --unit NAME) [--json] [--bpffs-dir DIR]`: follows a
// target's denials until SIGINT/SIGTERM: JSON lines, or rate-limited log lines.
#include <csignal>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/enforce/denial_log.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_control.h"
#include "agent/enforce/policy_events.h"

namespace tg::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct EventsFlags {
  TargetFlags target;
  bool json = false;
  std::string bpffs_dir = kDefaultBpffsDir;
};

int Run(const EventsFlags& f) {
  if (auto st = RequireRoot(); !st.ok()) return Fail(st.error());
  auto target = OpenTarget(f.target);
  if (!target.ok()) return Fail(target.error());
  DenialLog denials;
  const bool json = f.json;
  const std::string name = f.target.unit.empty() ? f.target.cgroup : f.target.unit;
  auto stream = EventStream::Open(f.bpffs_dir, target->id, [&](PolicyEvent e) {
    e.target = name;
    if (!json) {
      denials.Log(e, RateLimiter::Clock::now());
      return;
    }
    const nlohmann::json j = {{"policy", PolicyName(e.policy)},
                              {"action", ActionName(e.action)},
                              {"detail", e.detail},
                              {"time_ns", e.time_ns},
                              {"cgroup_id", e.cgroup_id},
                              {"target", e.target},
                              {"pid", e.pid},
                              {"tid", e.tid},
                              {"uid", e.uid},
                              {"comm", e.comm}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  });
  if (!stream.ok()) return Fail(stream.error());
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  while (!g_stop) {
    if (auto n = stream->Poll(500); !n.ok()) return Fail(n.error());
    denials.Tick(RateLimiter::Clock::now());
  }
  denials.Flush();
  return kExitOk;
}

}  // namespace

void RegisterEvents(CLI::App& app, Action& action) {
  auto flags = std::make_shared<EventsFlags>();
  auto* sub = app.add_subcommand("events", "follow a target's denials (until Ctrl-C)");
  AddTargetFlags(*sub, flags->target, /*required=*/true);
  sub->add_flag("--json", flags->json, "one JSON object per event");
  sub->add_option("--bpffs-dir", flags->bpffs_dir, "where links and maps are pinned")
      ->capture_default_str();
  sub->callback([&action, flags] { action = [flags] { return Run(*flags); }; });
}

}  // namespace tg::cli
