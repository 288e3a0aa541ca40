// `tunnelguard measure`: a foreground view of tunnel -> upstream latency, in the spirit of
// BCC's tools. Attaches the latency programs to the target cgroup, prints per-upstream figures
// every interval (that interval's requests and quantiles; --json: cumulative snapshots, one
// JSON object a line, the schema of docs/json-schema.md) and totals on exit. Ctrl-C/SIGTERM
// detach cleanly (nothing is pinned). A target cgroup that is removed and re-created (the
// tunnel restarted) is followed: the programs are attached to the new one within ~100 ms
// (--cgroup) or ~500 ms (--unit).
#include <fmt/core.h>
#include <signal.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "agent/base/log.h"
#include "agent/cli/cli.h"
#include "agent/latency/latency.h"
#include "agent/latency/latency_json.h"
#include "agent/target/target_follower.h"

namespace tg::cli {
namespace {

struct MeasureFlags {
  TargetFlags target;
  std::string upstreams{kDefaultUpstreams};
  double interval = 1.0;
  double duration = 0.0;
  bool json = false;
};

std::string Human(double seconds) {
  char buf[32];
  if (seconds <= 0) return "-";
  if (seconds < 1e-3) {
    std::snprintf(buf, sizeof(buf), "%.0fus", seconds * 1e6);
  } else if (seconds < 1.0) {
    std::snprintf(buf, sizeof(buf), "%.2fms", seconds * 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2fs", seconds);
  }
  return buf;
}

// `conns` counts connections opened and connections adopted (open before we attached); `open`
// is the gauge, always from the cumulative snapshot.
void PrintTable(const std::string& title, const LatencySnapshot& shown,
                const LatencySnapshot& total) {
  fmt::print("{}\n", title);
  fmt::print(
      "  {:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>5} {:>9} {:>11} {:>10} {:>10} {:>5}\n",
      "upstream", "requests", "p50", "p90", "p99", "max", "conns", "open", "conn p50", "fail r/t/x",
      "sent", "received", "retx");
  for (size_t i = 0; i < shown.upstreams.size(); ++i) {
    const auto& u = shown.upstreams[i];
    const auto& r = u.request_latency;
    fmt::print(
        "  {:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>5} {:>9} {:>11} {:>10} {:>10} {:>5}\n",
        u.name + " " + (u.addresses.empty() ? "" : u.addresses[0]), u.requests,
        Human(QuantileSeconds(r, 0.5)), Human(QuantileSeconds(r, 0.9)),
        Human(QuantileSeconds(r, 0.99)), Human(QuantileSeconds(r, 1.0)),
        u.connections + u.connections_adopted, total.upstreams[i].open_connections(),
        Human(QuantileSeconds(u.connect_latency, 0.5)),
        fmt::format("{}/{}/{}", u.refused, u.timeout, u.reset), u.bytes_sent, u.bytes_received,
        u.retransmits);
  }
  std::fflush(stdout);
}

std::string WallClock() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

// Keeps the probe on the target's current cgroup: a tunnel whose unit restarted has a new one
// (an attach that failed is tried again at the next poll).
void Follow(TargetFollower& follower, LatencyProbe& probe, uint64_t& attached_id) {
  if (follower.Poll() == TargetFollower::Change::kLost) {
    log::Notice("measure: target is gone ({}); waiting", follower.wait_reason());
  }
  const auto& cg = follower.current();
  if (!cg || cg->id == attached_id) return;
  if (auto st = probe.Attach(cg->fd.get()); !st.ok()) {
    log::Warning("measure: cannot re-attach: {}", st.error().message);
    return;
  }
  log::Notice("measure: target re-created (cgroup id {} -> {}); re-attached", attached_id, cg->id);
  attached_id = cg->id;
}

void Print(const MeasureFlags& f, const std::string& title, const LatencySnapshot& shown,
           const LatencySnapshot& total) {
  if (f.json) {
    std::printf("%s\n", LatencyToJson(total).dump().c_str());
    std::fflush(stdout);
  } else {
    PrintTable(title, shown, total);
  }
}

// Signals are taken synchronously, so the loop is the only place that reacts to them and every
// exit path runs the destructors that detach.
sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

// Until Ctrl-C/SIGTERM or --duration: every 100 ms the target is followed (a unit only every
// 5th tick or at a report: a D-Bus round trip), and every --interval the figures are printed.
Status Loop(const MeasureFlags& f, TargetFollower& follower, LatencyProbe& probe,
            uint64_t attached_id) {
  sigset_t stop = BlockStopSignals();
  using Clock = std::chrono::steady_clock;
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.interval));
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(f.duration));
  auto next_print = Clock::now() + interval;
  LatencySnapshot previous;
  if (auto s = probe.Snapshot(); s.ok()) previous = *s;
  for (unsigned ticks = 0;; ++ticks) {
    const timespec tick{0, 100'000'000};
    const int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) return Status::Ok();
    const auto now = Clock::now();
    if (follower.spec().unit.empty() || ticks % 5 == 4 || now >= next_print) {
      Follow(follower, probe, attached_id);
    }
    const bool finished = f.duration > 0 && now >= end;
    if (now >= next_print || finished) {
      auto snap = probe.Snapshot();
      if (!snap.ok()) return snap.error();
      Print(f, WallClock() + " (this interval)", Delta(*snap, previous), *snap);
      previous = std::move(snap.value());
      while (next_print <= now) next_print += interval;
    }
    if (finished) return Status::Ok();
  }
}

int Measure(const MeasureFlags& f) {
  auto upstreams = ParseUpstreams(f.upstreams);
  if (!upstreams.ok()) return Fail(upstreams.error());
  if (!(f.interval > 0) || f.duration < 0) {
    return Fail(MakeError(ErrorKind::kInvalidArgument,
                          "--interval must be > 0 and --duration >= 0 seconds"));
  }
  TargetFollower follower({.unit = f.target.unit, .cgroup = f.target.cgroup});
  if (follower.Poll() != TargetFollower::Change::kFound) {
    return Fail(MakeError(ErrorKind::kNotFound, follower.wait_reason()));
  }
  const Cgroup& cgroup = *follower.current();
  auto probe = LatencyProbe::Load(*upstreams);
  if (!probe.ok()) return Fail(probe.error());
  if (auto st = probe->Attach(cgroup.fd.get()); !st.ok()) return Fail(st.error());
  log::Info("measure: attached to {} (cgroup id {}), upstreams {}", cgroup.path, cgroup.id,
            f.upstreams);
  if (auto st = Loop(f, follower, *probe, cgroup.id); !st.ok()) return Fail(st.error());
  auto total = probe->Snapshot();
  if (!total.ok()) return Fail(total.error());
  Print(f, "total since attach", *total, *total);
  probe->Detach();
  return kExitOk;
}

}  // namespace

void RegisterMeasure(CLI::App& app, Action& action) {
  auto flags = std::make_shared<MeasureFlags>();
  auto* sub = app.add_subcommand(
      "measure", "attach to the tunnel's cgroup and print upstream latency until Ctrl-C");
  AddTargetFlags(*sub, flags->target, /*required=*/true);
  sub->add_option("--upstream", flags->upstreams,
                  "upstreams to measure: name=addr:port[,...]; a name may repeat")
      ->capture_default_str();
  sub->add_option("--interval", flags->interval, "seconds between reports")->capture_default_str();
  sub->add_option("--duration", flags->duration, "stop after this many seconds (0: until Ctrl-C)")
      ->capture_default_str();
  sub->add_flag("--json", flags->json, "one JSON snapshot a line (docs/json-schema.md)");
  sub->callback([&action, flags] { action = [flags] { return Measure(*flags); }; });
}

}  // namespace tg::cli
