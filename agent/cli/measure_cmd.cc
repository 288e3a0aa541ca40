// `tunnelguard measure`: a foreground view of tunnel -> upstream latency, in the spirit of
// BCC's tools. Attaches the latency programs to the target cgroup, prints per-upstream figures
// every interval (that interval's requests and quantiles; --json: cumulative snapshots, one
// JSON object a line, the schema of docs/json-schema.md) and totals on exit. Ctrl-C/SIGTERM
// detach cleanly (nothing is pinned). A target cgroup that is removed and re-created (the
// tunnel restarted) is followed: the programs are attached to the new one within ~100 ms.
#include <signal.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cli.h"
#include "latency.h"
#include "latency_json.h"
#include "log.h"

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
void PrintTable(const char* title, const LatencySnapshot& shown, const LatencySnapshot& total) {
  std::printf("%s\n", title);
  std::printf("  %-12s %8s %9s %9s %9s %9s %6s %5s %9s %11s %10s %10s %5s\n", "upstream",
              "requests", "p50", "p90", "p99", "max", "conns", "open", "conn p50", "fail r/t/x",
              "sent", "received", "retx");
  for (size_t i = 0; i < shown.upstreams.size(); ++i) {
    const auto& u = shown.upstreams[i];
    const auto& r = u.request_latency;
    char fails[32];
    std::snprintf(
        fails, sizeof(fails), "%llu/%llu/%llu", static_cast<unsigned long long>(u.refused),
        static_cast<unsigned long long>(u.timeout), static_cast<unsigned long long>(u.reset));
    std::printf("  %-12s %8llu %9s %9s %9s %9s %6llu %5llu %9s %11s %10llu %10llu %5llu\n",
                u.name.c_str(), static_cast<unsigned long long>(u.requests),
                Human(QuantileSeconds(r, 0.5)).c_str(), Human(QuantileSeconds(r, 0.9)).c_str(),
                Human(QuantileSeconds(r, 0.99)).c_str(), Human(QuantileSeconds(r, 1.0)).c_str(),
                static_cast<unsigned long long>(u.connections + u.connections_adopted),
                static_cast<unsigned long long>(total.upstreams[i].open_connections()),
                Human(QuantileSeconds(u.connect_latency, 0.5)).c_str(), fails,
                static_cast<unsigned long long>(u.bytes_sent),
                static_cast<unsigned long long>(u.bytes_received),
                static_cast<unsigned long long>(u.retransmits));
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

int Measure(const MeasureFlags& f) {
  auto upstreams = ParseUpstreams(f.upstreams);
  if (!upstreams.ok()) return Fail(upstreams.error());
  if (!(f.interval > 0) || f.duration < 0) {
    return Fail(MakeError(ErrorKind::kInvalidArgument,
                          "--interval must be > 0 and --duration >= 0 seconds"));
  }
  auto cgroup = OpenTarget(f.target);
  if (!cgroup.ok()) return Fail(cgroup.error());
  auto probe = LatencyProbe::Load(*upstreams);
  if (!probe.ok()) return Fail(probe.error());
  if (auto st = probe->Attach(cgroup->fd.get()); !st.ok()) return Fail(st.error());
  uint64_t cgroup_id = cgroup->id;
  log::Info("measure: attached to {} (cgroup id {}), upstreams {}", cgroup->path, cgroup_id,
            f.upstreams);

  // Signals are taken synchronously, so the loop below is the only place that reacts to them
  // and every exit path runs the destructors that detach.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(f.interval);
  auto next_print = start + std::chrono::duration_cast<Clock::duration>(interval);
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(f.duration));
  LatencySnapshot previous;
  if (auto s = probe->Snapshot(); s.ok()) previous = *s;
  bool target_gone = false;
  while (true) {
    const timespec tick{0, 100'000'000};
    const int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    const auto now = Clock::now();
    // Follow a re-created target (the tunnel's unit restarted).
    auto current = OpenTarget(f.target);
    if (!current.ok()) {
      if (!target_gone)
        log::Notice("measure: target is gone ({}); waiting", current.error().message);
      target_gone = true;
    } else if (current->id != cgroup_id) {
      if (auto st = probe->Attach(current->fd.get()); st.ok()) {
        log::Notice("measure: target re-created (cgroup id {} -> {}); re-attached", cgroup_id,
                    current->id);
        cgroup_id = current->id;
        target_gone = false;
      } else {
        log::Warning("measure: cannot re-attach: {}", st.error().message);
      }
    } else {
      target_gone = false;
    }
    const bool finished = f.duration > 0 && now >= end;
    if (now >= next_print || finished) {
      auto snap = probe->Snapshot();
      if (!snap.ok()) return Fail(snap.error());
      if (f.json) {
        std::printf("%s\n", LatencyToJson(*snap).dump().c_str());
        std::fflush(stdout);
      } else {
        PrintTable((WallClock() + " (this interval)").c_str(), Delta(*snap, previous), *snap);
      }
      previous = std::move(snap.value());
      while (next_print <= now) next_print += std::chrono::duration_cast<Clock::duration>(interval);
    }
    if (finished) break;
  }
  auto total = probe->Snapshot();
  if (!total.ok()) return Fail(total.error());
  if (f.json) {
    std::printf("%s\n", LatencyToJson(*total).dump().c_str());
  } else {
    PrintTable("total since attach", *total, *total);
  }
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
