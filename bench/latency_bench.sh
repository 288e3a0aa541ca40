#!/usr/bin/env bash
# Overhead of tunnelguard's latency programs, measured two ways (see bench/README.md):
#   1. the probes' own cost per request, from kernel BPF stats (kernel.bpf_stats_enabled=1 only
#      while measuring, restored on exit): sum of run_time_ns of the tg_lat_* programs / requests;
#   2. wrk throughput through nginx (1 worker), wrk inside the tunnel's cgroup without and with
#      `tunnelguard measure` attached, and with it attached but wrk outside the cgroup;
#      interleaved rounds, medians (identical runs on this machine kind differ by +-8 %).
# Usage: sudo bench/latency_bench.sh [--rounds N] [--seconds S] [--connections C]
# Needs a build (cmake --build build), nginx-light, wrk, curl, bpftool, clang (tools/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 seconds=5 conns=32
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    *) echo "latency_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "latency_bench: needs root (BPF, cgroups)" >&2; exit 1; }
tg=$PWD/build/agent/tunnelguard
[ -x "$tg" ] || { echo "latency_bench: build first (cmake --build build)" >&2; exit 1; }

work=$(mktemp -d /tmp/tg-bench.XXXXXX)
chmod 755 "$work"
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cgroup="$cg2/tg-bench-$$"
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
pids=()
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -d "$cgroup" ] && { while read -r p; do kill "$p" 2>/dev/null || true; done <"$cgroup/cgroup.procs"; sleep 0.2; rmdir "$cgroup" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=0
while :; do
  port=$((20000 + RANDOM % 20000))
  ss -Htln "sport = :$port" | grep -q . || break
done
mkdir -p "$work/www"; echo "hello" >"$work/www/index.html"
cat >"$work/nginx.conf" <<NGINX
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$port; root $work/www; } }
NGINX
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
mkdir "$cgroup"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

# nginx's CPU time so far (master and worker, user+sys), in clock ticks.
nginx_ticks() {
  local t=0 p
  for p in $(pgrep -f "nginx -c $work/nginx.conf") $(pgrep -P "$(cat "$work/nginx.pid" 2>/dev/null || echo 1)" nginx); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# wrk_run INSIDE(1|0) -> prints "requests_per_second completed_requests cpu_us_per_request"
# CPU per request = (wrk's + nginx's user+sys time) / requests: the probes run in those two
# processes' contexts (egress in the sender's syscall, ingress in the softirq the loopback
# sender runs), and unlike req/s it hardly depends on how much CPU other guests leave us.
wrk_run() {
  local inside=$1 out before after
  before=$(nginx_ticks)
  if [ "$inside" = 1 ]; then
    out=$( { sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cgroup" \
          wrk -t1 -c"$conns" -d"${seconds}s" "http://127.0.0.1:$port/"; }; times)
  else
    out=$( { wrk -t1 -c"$conns" -d"${seconds}s" "http://127.0.0.1:$port/"; }; times)
  fi
  after=$(nginx_ticks)
  local rps reqs wrk_s
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  # `times`' last line: the children's user and sys time, "XmY.YYYs XmY.YYYs".
  wrk_s=$(tail -n 1 <<<"$out" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
  awk -v r="$rps" -v n="$reqs" -v w="$wrk_s" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s %s %.2f\n", r, n, (w + t / hz) * 1e6 / n }'
}

start_measure() {
  # A fresh log: the attach line of a previous run must not count for this one.
  rm -f "$work/measure.log" "$work/measure.json"
  "$tg" measure --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" --interval 3600 --json \
    >"$work/measure.json" 2>"$work/measure.log" &
  measure_pid=$!
  for _ in $(seq 50); do grep -q attached "$work/measure.log" 2>/dev/null && return; sleep 0.1; done
  echo "latency_bench: measure did not attach:" >&2; cat "$work/measure.log" >&2; exit 1
}
stop_measure() { kill -INT "$measure_pid"; wait "$measure_pid" || true; }

median() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'; }

echo "latency_bench: nginx 1 worker on 127.0.0.1:$port, wrk -t1 -c$conns -d${seconds}s, $rounds rounds, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/base"; : >"$work/on_in"; : >"$work/on_out"
: >"$work/base.cpu"; : >"$work/on_in.cpu"; : >"$work/on_out.cpu"
for r in $(seq "$rounds"); do
  # The order rotates each round so slow drift in the machine hits every variant alike.
  for variant in $(case $((r % 3)) in 0) echo base on_in on_out ;; 1) echo on_in on_out base ;; *) echo on_out base on_in ;; esac); do
    case $variant in
      base) read -r rps _ cpu < <(wrk_run 1) ;;
      on_in) start_measure; read -r rps _ cpu < <(wrk_run 1); stop_measure ;;
      on_out) start_measure; read -r rps _ cpu < <(wrk_run 0); stop_measure ;;
    esac
    echo "$rps" >>"$work/$variant"
    echo "$cpu" >>"$work/$variant.cpu"
    printf '  round %d %-7s %10.0f req/s %8.2f us CPU/request\n' "$r" "$variant" "$rps" "$cpu"
  done
done
base=$(median <"$work/base"); on_in=$(median <"$work/on_in"); on_out=$(median <"$work/on_out")
cbase=$(median <"$work/base.cpu"); con_in=$(median <"$work/on_in.cpu"); con_out=$(median <"$work/on_out.cpu")

# Probe cost per request from kernel BPF stats, one run with stats on.
start_measure
sysctl -qw kernel.bpf_stats_enabled=1
read -r _ reqs _ < <(wrk_run 1)
# Only the programs attached to our cgroup (other tunnelguard instances may run meanwhile);
# `bpftool prog show id N`: "ID: TYPE  name NAME  tag … run_time_ns NS run_cnt CNT".
for id in $(bpftool cgroup show "$cgroup" | awk '/tg_lat_/ { print $1 }'); do
  bpftool prog show id "$id"
done | awk -v reqs="$reqs" '
  / name tg_lat_/ && / run_cnt / {
    for (i = 1; i <= NF; i++) { if ($i == "name") n = $(i + 1); if ($i == "run_time_ns") ns = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }
    total += ns
    printf "  %-16s runs %9d  %7.0f ns/run  %5.2f runs/request\n", n, c, ns / (c ? c : 1), c / reqs
  }
  END { printf "  probe cost per request: %.0f ns (sum of run_time_ns / %d requests)\n", total / reqs, reqs }' >"$work/cost"
sysctl -qw kernel.bpf_stats_enabled="$stats_before"
stop_measure

# The floor: what BPF stats report for an empty cgroup_skb program on the same traffic (the
# stats' own timing), so the figure above can be read net of it.
cat >"$work/empty.bpf.c" <<'BPF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("cgroup_skb/egress") int tg_bench_empty(struct __sk_buff *skb) { return 1; }
BPF
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$work/empty.bpf.c" -o "$work/empty.o"
bpftool prog load "$work/empty.o" /sys/fs/bpf/tg_bench_empty_$$ type cgroup/skb
bpftool cgroup attach "$cgroup" egress pinned /sys/fs/bpf/tg_bench_empty_$$ multi
sysctl -qw kernel.bpf_stats_enabled=1
wrk_run 1 >/dev/null
sysctl -qw kernel.bpf_stats_enabled="$stats_before"
floor=$(bpftool prog show pinned /sys/fs/bpf/tg_bench_empty_$$ | awk '
  { for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") ns = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
  END { printf "%.0f", ns / (c ? c : 1) }')
bpftool cgroup detach "$cgroup" egress pinned /sys/fs/bpf/tg_bench_empty_$$
rm -f /sys/fs/bpf/tg_bench_empty_$$
counted=$(tail -n 1 "$work/measure.json" | grep -o '"requests":[0-9]*' | head -n 1 | cut -d: -f2)

echo
echo "throughput (median of $rounds rounds, req/s):"
printf '  wrk in cgroup, no probes      %10.0f\n' "$base"
printf '  wrk in cgroup, measuring      %10.0f   ratio %.3f\n' "$on_in" "$(awk -v a="$on_in" -v b="$base" 'BEGIN { print a / b }')"
printf '  wrk outside cgroup, measuring %10.0f   ratio %.3f\n' "$on_out" "$(awk -v a="$on_out" -v b="$base" 'BEGIN { print a / b }')"
echo "CPU per request, wrk + nginx (median of $rounds rounds):"
printf '  wrk in cgroup, no probes      %8.2f us\n' "$cbase"
printf '  wrk in cgroup, measuring      %8.2f us   %+.0f ns\n' "$con_in" "$(awk -v a="$con_in" -v b="$cbase" 'BEGIN { print (a - b) * 1000 }')"
printf '  wrk outside cgroup, measuring %8.2f us   %+.0f ns\n' "$con_out" "$(awk -v a="$con_out" -v b="$cbase" 'BEGIN { print (a - b) * 1000 }')"
echo "kernel BPF stats (one ${seconds}s wrk run in the cgroup; wrk completed $reqs requests, tunnelguard counted $counted):"
cat "$work/cost"
echo "  an empty cgroup_skb program on the same traffic: $floor ns/run (the stats' own timing;"
echo "  tunnelguard runs 2 programs per request, so subtract ~$((2 * floor)) ns for the net cost)"
