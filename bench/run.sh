#!/usr/bin/env bash
# tunnelguard's benchmark suite (issue 9), one command: prints a table and writes JSON.
#   1. request path: wrk through nginx, from inside the tunnel's cgroup and from outside, with
#      no agent and with `tunnelguard run` measuring; interleaved rounds, medians and spread,
#      each throughput ratio beside CPU time per request; probe cost per request from kernel
#      BPF stats (the agent's --bpf-stats) next to an empty program's (the stats' own timing)
#   2. agent footprint at a steady request rate through the cgroup: CPU % of one core, RSS,
#      BPF map memory of the agent's programs
#   4. scrape and API: /metrics response time and size, `tunnelctl stats` round trip
#   5. start-up: `tunnelguard run` to READY=1 (a NOTIFY_SOCKET listener) and to the first
#      counted request in /metrics; the same after a clean restart and after a SIGKILL
# (3, enforcement per-call cost, runs in QEMU: tests/vm/enforce_cost_test.cc; 6, bpftrace, is
# not here yet — see bench/README.md.)
# Usage: sudo bench/run.sh [--smoke] [--rounds N] [--seconds S] [--footprint-seconds S]
#                          [--rate R] [--json FILE]
#   --build DIR: the build tree (default build/)
#   --smoke: every section for ~1 s, 1 round; checks that each figure was produced and that
#   the agent counted the requests, never how fast anything was (ctest bench.smoke).
# Needs a build (cmake --build build), nginx-light, wrk, curl, jq, bpftool, clang.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 seconds=5 fp_seconds=60 rate=5000 smoke=0 json=bench/results.json
build=${TG_BUILD_DIR:-build}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --footprint-seconds) fp_seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$smoke" = 1 ]; then rounds=1 seconds=1 fp_seconds=2 rate=1000; fi
if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (BPF, cgroups)" >&2
  # As a ctest entry outside CI: a skip with the reason (SKIP_RETURN_CODE 77), as TG_REQUIRE does.
  [ "$smoke" = 1 ] && [ "${CI:-false}" != true ] && exit 77
  exit 1
fi
case $build in /*) ;; *) build=$PWD/$build ;; esac
tg=$build/agent/tunnelguard ctl=$build/tunnelctl/tunnelctl
client=$build/tests/tools/tg-http-client listen=$build/tests/tools/tg-notify-listen
for b in "$tg" "$ctl" "$client" "$listen"; do
  [ -x "$b" ] || { echo "bench: $b missing; build first (cmake --build $build)" >&2; exit 1; }
done
for t in wrk nginx curl jq bpftool clang; do
  command -v "$t" >/dev/null || { echo "bench: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tg-bench.XXXXXX)
chmod 755 "$work"
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cgroup="$cg2/tg-bench-$$"
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
pids=() agent_pid=""
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" $agent_pid; do wait "$p" 2>/dev/null || true; done
  if [ -d "$cgroup" ]; then
    while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$cgroup/cgroup.procs"
    sleep 0.2; rmdir "$cgroup" 2>/dev/null || true
  fi
  rm -f "/sys/fs/bpf/tg_bench_empty_$$"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  while :; do p=$((20000 + RANDOM % 20000)); ss -Htln "sport = :$p" | grep -q . || break; done
  echo "$p"
}
port=$(free_port)
mkdir -p "$work/www"; echo "hello" >"$work/www/index.html"
cat >"$work/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$port; root $work/www; } }
NGINX
nginx -c "$work/nginx.conf" -p "$work" & nginx_pid=$!; pids+=("$nginx_pid")
mkdir "$cgroup"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
mport=$(free_port)
sock=$work/tg.sock
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000 ))e-3; }

# --- the agent ------------------------------------------------------------------------------
# start_agent [extra flags...]: `tunnelguard run` measuring our cgroup, no policies (this host
# refuses BPF-LSM); returns once it reports the target present.
start_agent() {
  "$tg" run --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" --families off --wx-memory off \
    --metrics-listen "127.0.0.1:$mport" --grpc-socket "$sock" "$@" >>"$work/agent.log" 2>&1 &
  agent_pid=$!
  for _ in $(seq 200); do
    "$ctl" --socket "$sock" status --json 2>/dev/null | grep -q '"target_present": true' && return
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: the agent did not start:" >&2; tail -n 20 "$work/agent.log" >&2; exit 1
}
stop_agent() {
  [ -n "$agent_pid" ] || return 0
  kill -TERM "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
}
agent_requests() { "$ctl" --socket "$sock" stats --json | jq '[.upstreams[].requests] | add'; }

# --- helpers --------------------------------------------------------------------------------
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "null"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'; }
# "min max" of a column of numbers
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s %s\n", lo, hi }'; }
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
in_cgroup() { sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cgroup" "$@"; }

# wrk_run in|out -> "req/s p99_ms completed cpu_us_per_request": CPU = wrk's + nginx's
# user+sys time per completed request (the probes run in those processes' contexts), steadier
# than req/s when other guests take CPU from us.
wrk_run() {
  local where=$1 out before after
  before=$(ticks_of "$nginx_pid")
  if [ "$where" = in ]; then
    out=$( { in_cgroup wrk -t1 -c32 -d"${seconds}s" --latency "http://127.0.0.1:$port/"; }; times)
  else
    out=$( { wrk -t1 -c32 -d"${seconds}s" --latency "http://127.0.0.1:$port/"; }; times)
  fi
  after=$(ticks_of "$nginx_pid")
  local rps reqs p99 wrk_s
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  # wrk prints "99%  1.23ms" (or us / s)
  p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
          f = (u == "us") ? 1e-3 : (u == "s") ? 1e3 : 1; print v * f }' <<<"$out")
  wrk_s=$(tail -n 1 <<<"$out" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
  awk -v r="$rps" -v p="$p99" -v n="$reqs" -v w="$wrk_s" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s %s %s %.3f\n", r, p, n, (w + t / hz) * 1e6 / n }'
}

lscpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_mib=$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)
machine_json=$(jq -n --arg cpu "$lscpu_model" --argjson cores "$(nproc)" --arg kernel "$(uname -r)" \
  --argjson mem "$mem_mib" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg date "$(date -u +%FT%TZ)" \
  --arg nginx "$(nginx -v 2>&1 | sed 's/.*\///')" --arg wrk "$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }')" \
  '{cpu: $cpu, cores: $cores, kernel: $kernel, memory_mib: $mem, load_at_start: $load, date: $date,
    nginx: $nginx, wrk: $wrk}')
echo "== machine: $lscpu_model, $(nproc) cores, $mem_mib MiB, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$smoke" = 1 ] && echo "== SMOKE run: 1 round of ${seconds}s each; the figures below are not measurements"

# --- 1. request path ------------------------------------------------------------------------
echo "== 1. request path: nginx 1 worker on 127.0.0.1:$port, wrk -t1 -c32 -d${seconds}s, $rounds interleaved rounds"
variants="off_in on_in off_out on_out"
for v in $variants; do : >"$work/$v"; done
for r in $(seq "$rounds"); do
  # The order rotates each round so slow drift in the machine hits every variant alike.
  set -- $variants
  for _ in $(seq $(( (r - 1) % 4 ))); do set -- "${@:2}" "$1"; done
  for v in "$@"; do
    case $v in on_*) start_agent ;; esac
    line=$(wrk_run "${v#*_}")
    case $v in on_*) stop_agent ;; esac
    echo "$line" >>"$work/$v"
    read -r rps p99 n cpu <<<"$line"
    printf '  round %d %-8s %9.0f req/s  p99 %7.3f ms  %7.2f us CPU/request\n' "$r" "$v" "$rps" "$p99" "$cpu"
  done
done
path_json='{}'
for v in $variants; do
  rps=$(cut -d' ' -f1 "$work/$v" | median); p99=$(cut -d' ' -f2 "$work/$v" | median)
  cpu=$(cut -d' ' -f4 "$work/$v" | median); read -r lo hi < <(cut -d' ' -f1 "$work/$v" | spread)
  path_json=$(jq --arg v "$v" --argjson rps "$rps" --argjson p99 "$p99" --argjson cpu "$cpu" \
    --argjson lo "$lo" --argjson hi "$hi" '.[$v] = {rps_median: $rps, rps_min: $lo, rps_max: $hi,
    p99_ms_median: $p99, cpu_us_per_request_median: $cpu}' <<<"$path_json")
done

# Probe cost per request: one run with the agent's --bpf-stats; the agent counts too.
start_agent --bpf-stats
before=$(agent_requests)
read -r _ _ reqs _ < <(wrk_run in)
sleep 0.2
counted=$(( $(agent_requests) - before ))
probe_lines=$(for id in $(bpftool cgroup show "$cgroup" | awk '/tg_/ { print $1 }'); do bpftool prog show id "$id"; done |
  awk -v reqs="$reqs" '/ name tg_/ && / run_cnt / {
    for (i = 1; i <= NF; i++) { if ($i == "name") n = $(i + 1); if ($i == "run_time_ns") ns = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }
    printf "%s %d %.0f %.3f\n", n, c, ns / (c ? c : 1), c / reqs; total += ns }
    END { printf "TOTAL %.0f\n", total / reqs }')
stop_agent
probe_ns=$(awk '$1 == "TOTAL" { print $2 }' <<<"$probe_lines")
# The floor: BPF stats' own timing, from an empty cgroup_skb program on the same traffic.
cat >"$work/empty.bpf.c" <<'BPF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("cgroup_skb/egress") int tg_bench_empty(struct __sk_buff *skb) { return 1; }
BPF
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$work/empty.bpf.c" -o "$work/empty.o"
bpftool prog load "$work/empty.o" "/sys/fs/bpf/tg_bench_empty_$$" type cgroup/skb
bpftool cgroup attach "$cgroup" egress pinned "/sys/fs/bpf/tg_bench_empty_$$" multi
sysctl -qw kernel.bpf_stats_enabled=1
wrk_run in >/dev/null
sysctl -qw kernel.bpf_stats_enabled="$stats_before"
floor=$(bpftool prog show pinned "/sys/fs/bpf/tg_bench_empty_$$" | awk '
  { for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") ns = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
  END { printf "%.0f", ns / (c ? c : 1) }')
bpftool cgroup detach "$cgroup" egress pinned "/sys/fs/bpf/tg_bench_empty_$$"
rm -f "/sys/fs/bpf/tg_bench_empty_$$"
runs_per_req=$(awk '$1 != "TOTAL" { s += $4 } END { printf "%.2f", s }' <<<"$probe_lines")
path_json=$(jq --argjson probe "${probe_ns:-null}" --argjson floor "$floor" --argjson reqs "$reqs" \
  --argjson counted "$counted" --argjson rpr "$runs_per_req" --arg progs "$probe_lines" \
  '. + {probe_ns_per_request: $probe, empty_program_ns_per_run: $floor, runs_per_request: $rpr,
   probe_net_ns_per_request: ($probe - $rpr * $floor), stats_run_requests_wrk: $reqs,
   stats_run_requests_agent: $counted, programs: ($progs | split("\n") | map(select(startswith("tg_")) | split(" ") |
   {name: .[0], runs: (.[1] | tonumber), ns_per_run: (.[2] | tonumber), runs_per_request: (.[3] | tonumber)}))}' <<<"$path_json")

# --- 2. agent footprint ---------------------------------------------------------------------
echo "== 2. agent footprint: tg-http-client at $rate req/s (8 keep-alive connections) in the cgroup for ${fp_seconds}s"
start_agent
t0=$(ticks_of "$agent_pid"); w0=$(now_ns)
"$client" --port "$port" --cgroup "$cgroup" --connections 8 --rate "$rate" --duration "${fp_seconds}s" \
  --requests 1000000000 >"$work/fp-client.json" 2>"$work/fp-client.err"
t1=$(ticks_of "$agent_pid"); w1=$(now_ns)
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent_pid/status")
hwm_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$agent_pid/status")
# RSS counts the shared libraries' pages (gRPC, protobuf, libbpf); RssAnon is the agent's own.
anon_kib=$(awk '/^RssAnon/ { print $2 }' "/proc/$agent_pid/status")
map_bytes=0 map_count=0
for mid in $(for id in $(bpftool cgroup show "$cgroup" | awk '/tg_/ { print $1 }'); do
               bpftool prog show id "$id" -j | jq -r '.map_ids[]?'; done | sort -u); do
  b=$(bpftool map show id "$mid" -j | jq '.bytes_memlock // 0')
  map_bytes=$((map_bytes + b)); map_count=$((map_count + 1))
done
fp_requests=$(jq .requests "$work/fp-client.json")
fp_json=$(jq -n --argjson ticks $((t1 - t0)) --argjson hz "$(getconf CLK_TCK)" --argjson ns $((w1 - w0)) \
  --argjson rss "$rss_kib" --argjson hwm "$hwm_kib" --argjson anon "$anon_kib" --argjson mb "$map_bytes" --argjson mc "$map_count" \
  --argjson reqs "$fp_requests" --argjson target "$rate" \
  '{target_rps: $target, achieved_rps: ($reqs / ($ns / 1e9)), seconds: ($ns / 1e9),
    agent_cpu_percent_of_one_core: (100 * ($ticks / $hz) / ($ns / 1e9)), agent_rss_mib: ($rss / 1024),
    agent_peak_rss_mib: ($hwm / 1024), agent_rss_anon_mib: ($anon / 1024), bpf_map_memlock_kib: ($mb / 1024), bpf_maps: $mc}')

# --- 4. scrape and API ----------------------------------------------------------------------
echo "== 4. /metrics and tunnelctl stats (agent still running, series populated by section 2)"
n_scrapes=$([ "$smoke" = 1 ] && echo 5 || echo 50)
: >"$work/scrape"; : >"$work/ctl"
for _ in $(seq "$n_scrapes"); do
  curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$mport/metrics" >>"$work/scrape"
  s=$(now_ns); "$ctl" --socket "$sock" stats --json >/dev/null; echo "$(( ($(now_ns) - s) / 1000 ))e-3" >>"$work/ctl"
done
series=$(curl -s "http://127.0.0.1:$mport/metrics" | grep -c '^tunnelguard_' || true)
scrape_json=$(jq -n --argjson ms "$(awk '{ print $1 * 1000 }' "$work/scrape" | median)" \
  --argjson bytes "$(awk '{ print $2 }' "$work/scrape" | median)" --argjson series "$series" \
  --argjson ctl "$(median <"$work/ctl")" --argjson n "$n_scrapes" \
  '{scrapes: $n, metrics_ms_median: $ms, metrics_bytes: $bytes, tunnelguard_series: $series,
    tunnelctl_stats_ms_median: $ctl}')
stop_agent

# --- 5. start-up ----------------------------------------------------------------------------
echo "== 5. start-up: to READY=1 and to the first counted request (a client at 200 req/s runs in the cgroup)"
"$client" --port "$port" --cgroup "$cgroup" --connections 2 --rate 200 --duration 600s \
  --requests 1000000000 >/dev/null 2>&1 & bg_client=$!; pids+=("$bg_client")
"$listen" "$work/notify.sock" >"$work/notify.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.02; done
# startup_once LABEL: starts the agent, prints "ready_ms first_metric_ms"
startup_once() {
  : >"$work/notify.log"
  local t0; t0=$(now_ns)
  NOTIFY_SOCKET=$work/notify.sock "$tg" run --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" \
    --families off --wx-memory off --metrics-listen "127.0.0.1:$mport" --grpc-socket "$sock" \
    >>"$work/agent.log" 2>&1 &
  agent_pid=$!
  local first=""
  for _ in $(seq 1000); do
    if curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null |
        grep -q '^tunnelguard_upstream_requests_total{.*} [1-9]'; then first=$(now_ns); break; fi
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.005
  done
  local ready
  ready=$(awk '/READY=1/ { print $1; exit }' "$work/notify.log")
  [ -n "$first" ] && [ -n "$ready" ] || { echo "bench: start-up not observed" >&2; tail "$work/agent.log" >&2; exit 1; }
  echo "$(( (ready - t0) / 1000 ))e-3 $(( (first - t0) / 1000 ))e-3"
}
n_starts=$([ "$smoke" = 1 ] && echo 1 || echo 5)
: >"$work/cold"; : >"$work/restart"; : >"$work/kill9"
for _ in $(seq "$n_starts"); do
  startup_once >>"$work/cold"
  stop_agent
  startup_once >>"$work/restart"   # after a clean stop
  kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
  startup_once >>"$work/kill9"     # stale socket file left by the killed agent
  stop_agent
done
kill "$bg_client" 2>/dev/null || true
startup_json='{}'
for k in cold restart kill9; do
  startup_json=$(jq --arg k "$k" --argjson r "$(cut -d' ' -f1 "$work/$k" | median)" \
    --argjson f "$(cut -d' ' -f2 "$work/$k" | median)" '.[$k] = {ready_ms: $r, first_metric_ms: $f}' <<<"$startup_json")
done

# --- report ---------------------------------------------------------------------------------
jq -n --argjson machine "$machine_json" --argjson path "$path_json" --argjson fp "$fp_json" \
  --argjson scrape "$scrape_json" --argjson startup "$startup_json" --argjson smoke "$smoke" \
  --argjson rounds "$rounds" --argjson seconds "$seconds" \
  '{smoke: ($smoke == 1), rounds: $rounds, seconds_per_run: $seconds, machine: $machine,
    request_path: $path, footprint: $fp, scrape: $scrape, startup: $startup}' >"$json.tmp"
mv "$json.tmp" "$json"
r() { jq -r "$1" "$json"; }
echo
echo "tunnelguard bench — $(r .machine.cpu), $(r .machine.cores) cores, $(r .machine.memory_mib) MiB, kernel $(r .machine.kernel), $(r .machine.date)"
echo "1. request path (median of $rounds rounds, ${seconds}s each; spread = min..max req/s)"
printf '   %-30s %9s %17s %9s %8s %12s\n' variant "req/s" "spread" ratio "p99 ms" "CPU us/req"
for v in off_in on_in off_out on_out; do
  base=$(case $v in *_in) echo off_in ;; *) echo off_out ;; esac)
  printf '   %-30s %9.0f %8.0f..%-8.0f %9.3f %8.3f %12.2f\n' \
    "$(case $v in off_in) echo 'in cgroup, no agent' ;; on_in) echo 'in cgroup, measuring' ;;
       off_out) echo 'outside cgroup, no agent' ;; on_out) echo 'outside cgroup, agent on' ;; esac)" \
    "$(r ".request_path.$v.rps_median")" "$(r ".request_path.$v.rps_min")" "$(r ".request_path.$v.rps_max")" \
    "$(r ".request_path.$v.rps_median / .request_path.$base.rps_median")" \
    "$(r ".request_path.$v.p99_ms_median")" "$(r ".request_path.$v.cpu_us_per_request_median")"
done
printf '   CPU per request, measuring vs not: inside %+.0f ns, outside %+.0f ns\n' \
  "$(r '(.request_path.on_in.cpu_us_per_request_median - .request_path.off_in.cpu_us_per_request_median) * 1000')" \
  "$(r '(.request_path.on_out.cpu_us_per_request_median - .request_path.off_out.cpu_us_per_request_median) * 1000')"
printf '   probe cost (kernel BPF stats): %s ns/request gross, %s runs/request, empty program %s ns/run -> ~%s ns net\n' \
  "$(r .request_path.probe_ns_per_request)" "$(r .request_path.runs_per_request)" \
  "$(r .request_path.empty_program_ns_per_run)" "$(r '.request_path.probe_net_ns_per_request | floor')"
printf '   requests in the stats run: wrk completed %s, the agent counted %s\n' \
  "$(r .request_path.stats_run_requests_wrk)" "$(r .request_path.stats_run_requests_agent)"
printf '2. footprint at %s req/s (achieved %.0f) for %ss: agent CPU %.2f %% of one core, RSS %.1f MiB (peak %.1f, anonymous %.1f), BPF maps %.0f KiB in %s maps\n' \
  "$(r .footprint.target_rps)" "$(r .footprint.achieved_rps)" "$(r '.footprint.seconds | floor')" \
  "$(r .footprint.agent_cpu_percent_of_one_core)" "$(r .footprint.agent_rss_mib)" "$(r .footprint.agent_peak_rss_mib)" \
  "$(r .footprint.agent_rss_anon_mib)" \
  "$(r .footprint.bpf_map_memlock_kib)" "$(r .footprint.bpf_maps)"
printf '4. /metrics: %.2f ms median for %s bytes (%s tunnelguard_ lines); tunnelctl stats --json round trip (process included): %.1f ms median\n' \
  "$(r .scrape.metrics_ms_median)" "$(r .scrape.metrics_bytes)" "$(r .scrape.tunnelguard_series)" "$(r .scrape.tunnelctl_stats_ms_median)"
printf '5. start-up (median of %s): to READY=1 / to first counted request in /metrics\n' "$n_starts"
for k in cold restart kill9; do
  printf '   %-34s %8.1f ms %8.1f ms\n' "$(case $k in cold) echo 'first start' ;; restart) echo 'after a clean stop' ;;
    kill9) echo 'after SIGKILL (stale socket file)' ;; esac)" "$(r ".startup.$k.ready_ms")" "$(r ".startup.$k.first_metric_ms")"
done
echo "JSON: $json"

if [ "$smoke" = 1 ]; then
  # Breakage, not slowness: every figure present, and the agent counted what wrk completed
  # (up to the 32 requests in flight when wrk stops).
  fail=0
  for q in .request_path.off_in.rps_median .request_path.on_in.rps_median .request_path.probe_ns_per_request \
           .footprint.agent_rss_mib .footprint.bpf_map_memlock_kib .scrape.metrics_bytes \
           .startup.cold.ready_ms .startup.kill9.first_metric_ms; do
    v=$(r "$q"); { [ "$v" = null ] || [ "$v" = 0 ]; } && { echo "bench smoke: $q missing ($v)" >&2; fail=1; }
  done
  d=$(r '.request_path.stats_run_requests_agent - .request_path.stats_run_requests_wrk')
  { [ "$d" -lt 0 ] || [ "$d" -gt 32 ]; } && { echo "bench smoke: agent counted $d requests more than wrk (expected 0..32)" >&2; fail=1; }
  exit "$fail"
fi
