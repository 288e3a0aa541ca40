#!/usr/bin/env bash
# tunnelguard's benchmark suite, one command: prints a table and writes JSON.
#   1. request path: wrk through nginx, from inside the tunnel's cgroup and from outside, with
#      no agent, with `tunnelguard run` measuring, and (inside) measuring plus both policies in
#      audit mode through the observe mechanism; interleaved rounds, medians and spread, each
#      throughput ratio beside CPU time per request; probe cost per request from kernel BPF
#      stats (the agent's --bpf-stats) next to an empty program's (the stats' own timing)
#   2. agent footprint at a steady request rate through the cgroup: CPU % of one core, RSS,
#      BPF map memory of the agent's programs; then the same with 10,000 keep-alive
#      connections held open (tg-conn-holder) and the agent's open-connection gauge
#   3. enforcement per call in QEMU (TCG; BPF-LSM is refused on this host): socket, mmap,
#      mprotect and getppid under no policy, lsm_cgroup, lsm-global, systemd's seccomp filters
#      and PR_SET_MDWE, inside and outside the cgroup (tests/vm/enforce_cost_test.cc); ratios
#   4. scrape and API: /metrics response time and size, `tunnelctl stats` round trip; the same
#      while the tunnel's cgroup holds 100 idle and 100 byte-a-second connections to each of
#      /metrics and the API socket (tg-hostile-client, re-opened whenever the agent closes them)
#   5. start-up: `tunnelguard run` to READY=1 (a NOTIFY_SOCKET listener) and to the first
#      counted request in /metrics; the same after a clean restart and after a SIGKILL
#   6. bpftrace baseline: the same request-latency histogram taken by a bpftrace script
#      (syscall tracepoints) on known-delay traffic, against the client's own timings and
#      tunnelguard's; its BPF ns per request and CPU per request, interleaved with
#      tunnelguard-only and none
# Usage: sudo bench/run.sh [--smoke] [--rounds N] [--seconds S] [--footprint-seconds S]
#                          [--rate R] [--hold-connections N] [--vm-kernels "6.12 6.1"|""]
#                          [--json FILE]
#   --build DIR: the build tree (default build/)
#   --vm-kernels: the kernels of section 3 (default "6.12 6.1"; smoke: the first; "" skips)
#   --smoke: every section for ~1 s, 1 round (200 held connections; the VM with 1 round of
#   300 calls, booted in the background); checks that each figure was produced and that
#   the agent counted the requests, never how fast anything was (ctest bench.smoke).
# Needs a build (cmake --build build), nginx-light, wrk, curl, jq, bpftool, clang, qemu
# (tools/install-deps.sh); installs Debian's bpftrace itself when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=5 seconds=5 fp_seconds=60 rate=5000 smoke=0 json=bench/results.json
hold_conns=10000 vm_kernels="6.12 6.1"
build=${TG_BUILD_DIR:-build}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --footprint-seconds) fp_seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --hold-connections) hold_conns=$2; shift 2 ;;
    --vm-kernels) vm_kernels=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$smoke" = 1 ]; then rounds=1 seconds=1 fp_seconds=2 rate=1000 hold_conns=200; fi
# Section 3's guest: rounds x calls per configuration (TCG runs 3-4.5x slower than native).
vm_rounds=9 vm_calls=20000
[ "$smoke" = 1 ] && vm_rounds=1 vm_calls=300 vm_kernels=${vm_kernels%% *}
if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (BPF, cgroups)" >&2
  # As a ctest entry outside CI: a skip with the reason (SKIP_RETURN_CODE 77), as TG_REQUIRE does.
  [ "$smoke" = 1 ] && [ "${CI:-false}" != true ] && exit 77
  exit 1
fi
case $build in /*) ;; *) build=$PWD/$build ;; esac
tg=$build/agent/tunnelguard ctl=$build/tunnelctl/tunnelctl
client=$build/tests/tools/tg-http-client listen=$build/tests/tools/tg-notify-listen
holder=$build/tests/tools/tg-conn-holder hostile=$build/tests/tools/tg-hostile-client
delay_server=$build/tests/tools/tg-delay-server
vm_bin=$build/tests/vm/tg_vm_enforce
for b in "$tg" "$ctl" "$client" "$listen" "$holder" "$delay_server"; do
  [ -x "$b" ] || { echo "bench: $b missing; build first (cmake --build $build)" >&2; exit 1; }
done
for t in wrk nginx curl jq bpftool clang; do
  command -v "$t" >/dev/null || { echo "bench: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done
# Section 6 compares with Debian's bpftrace; a bench-only dependency, installed here if missing.
if ! command -v bpftrace >/dev/null; then
  echo "bench: installing Debian's bpftrace for section 6 (apt-get install bpftrace)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bpftrace >/dev/null ||
    echo "bench: could not install bpftrace; section 6 will be skipped" >&2
fi
# 10,000 held connections need that many descriptors in nginx and in the client: the soft
# limit goes up to the hard one (raising the hard limit needs CAP_SYS_RESOURCE, which a
# container may lack); fewer connections are held if even that is too low, and said so.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((hold_conns + 1100)) ]; then
  echo "bench: open-file limit $(ulimit -n) is too low for $hold_conns held connections; holding $(( $(ulimit -n) - 1100 ))" >&2
  hold_conns=$(( $(ulimit -n) - 1100 ))
fi

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
  if [ -n "${bt_pid:-}" ]; then kill -INT "$bt_pid" 2>/dev/null || true; wait "$bt_pid" 2>/dev/null || true; fi
  # Section 3's guest: the background job and what it started (run-in-vm.sh, timeout, qemu).
  if [ -n "${vm_pid:-}" ]; then kill_tree "$vm_pid"; wait "$vm_pid" 2>/dev/null || true; fi
  if [ "${mounted_tracefs:-0}" = 1 ]; then umount /sys/kernel/tracing 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds, for at most SECONDS (a
# deadline, not a number of tries: on a loaded machine each try takes longer).
wait_until() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
free_port() {
  local p
  while :; do p=$((20000 + RANDOM % 20000)); ss -Htln "sport = :$p" | grep -q . || break; done
  echo "$p"
}
port=$(free_port) dport=$(free_port) delay_port=$(free_port)
mkdir -p "$work/www"; echo "hello" >"$work/www/index.html"
# :port serves a static file (sections 1, 2, 4, 5); :dport proxies to tg-delay-server, whose
# answers take a known time (section 6). worker_connections fits section 2's held connections.
cat >"$work/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections $((hold_conns + 1024)); }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 600s;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  upstream delay { server 127.0.0.1:$delay_port; keepalive 64; }
  server { listen 127.0.0.1:$port backlog=4096; root $work/www; }
  server { listen 127.0.0.1:$dport; location / { proxy_pass http://delay;
    proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
nginx -c "$work/nginx.conf" -p "$work" & nginx_pid=$!; pids+=("$nginx_pid")
# 90 % of answers after 2 ms, 10 % after 20 ms: p50 and p99 are known.
delay_mix=2ms:90,20ms:10
"$delay_server" --port "$delay_port" --mix "$delay_mix" >/dev/null & pids+=($!)
mkdir "$cgroup"
wait_until 30 curl -s -o /dev/null "http://127.0.0.1:$port/" || true
wait_until 30 curl -s -o /dev/null "http://127.0.0.1:$dport/" || true
mport=$(free_port)
sock=$work/tg.sock
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000 ))e-3; }

# The agent (start_agent, stop_agent, agent_requests) and the helpers (median, spread,
# in_cgroup, tracefs_ready, kill_tree) are in bench/lib.sh.
upstreams="web=127.0.0.1:$port,delay=127.0.0.1:$dport"
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

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
# Other engineers' QEMU guests share these CPUs: sampled every 2 s for the whole run (load
# average, qemu processes, CPU time stolen by the hypervisor) and reported with the figures.
( while :; do
    read -r la _ </proc/loadavg
    echo "$la $(pgrep -c qemu-system || true) $(awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9; exit }' /proc/stat)"
    sleep 2
  done ) >"$work/load" 2>/dev/null & load_pid=$!; pids+=("$load_pid")
load_summary() {
  local la_med la_max q_med q_max steal
  la_med=$(cut -d' ' -f1 "$work/load" | median); la_max=$(cut -d' ' -f1 "$work/load" | sort -g | tail -n 1)
  q_med=$(cut -d' ' -f2 "$work/load" | median); q_max=$(cut -d' ' -f2 "$work/load" | sort -g | tail -n 1)
  steal=$(awk 'NR == 1 { t0 = $3; s0 = $4 } { t1 = $3; s1 = $4 } END { printf "%.1f", (t1 > t0) ? 100 * (s1 - s0) / (t1 - t0) : 0 }' "$work/load")
  jq -n --argjson lm "$la_med" --argjson lx "$la_max" --argjson qm "$q_med" --argjson qx "$q_max" --argjson st "$steal" \
    --argjson cores "$(nproc)" \
    '{loadavg1_median: $lm, loadavg1_max: $lx, qemu_processes_median: $qm, qemu_processes_max: $qx,
      steal_percent: $st, text: "1-min load average median \($lm) (max \($lx)) on \($cores) cores; qemu processes median \($qm) (max \($qx), ours included in section 3); CPU stolen by the hypervisor \($st) %"}'
}
echo "== machine: $lscpu_model, $(nproc) cores, $mem_mib MiB, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$smoke" = 1 ] && echo "== SMOKE run: 1 round of ${seconds}s each; the figures below are not measurements"

# --- 3. enforcement in QEMU: helpers (the run itself comes after section 6) ------------------
# vm_start: boots each kernel of $vm_kernels in turn, in the background, with the guest's cost
# benchmark; vm_collect waits and turns its TG-COST lines into JSON. The smoke run boots it
# while the host sections run (speed is not judged there); the full run boots it last, so our
# own guest does not compete with the host sections.
vm_pid="" vm_json='{}' vm_note=""
vm_start() {
  [ -n "$vm_kernels" ] || return 0
  if [ ! -x "$vm_bin" ]; then vm_note="skipped: $vm_bin not built"; return 0; fi
  (
    for k in $vm_kernels; do
      rc=0
      tests/vm/run-in-vm.sh --kernel "$k" --timeout 1800 --workdir "$work/vm-$k" \
        --env "TG_COST_ROUNDS=$vm_rounds" --env "TG_COST_CALLS=$vm_calls" \
        -- "$vm_bin" --gtest_filter='Cost.*' >"$work/vm-$k.log" 2>&1 || rc=$?
      echo "$rc" >"$work/vm-$k.rc"
    done
  ) &
  vm_pid=$!
}
vm_collect() {
  [ -n "$vm_pid" ] || return 0
  wait "$vm_pid" || true; vm_pid=""
  local k rc kjson
  for k in $vm_kernels; do
    rc=$(cat "$work/vm-$k.rc" 2>/dev/null || echo 2)
    if [ "$rc" = 77 ]; then
      vm_note="$vm_note kernel $k skipped ($(grep -m1 'SKIP' "$work/vm-$k.log" | sed 's/^run-in-vm: //'))"
      continue
    fi
    # key=value pairs of the guest's lines; label="..." holds spaces.
    kjson=$(sed -n 's/^  guest| //p' "$work/vm-$k.log" | awk '
      function obj(line,   out, key, val, rest) {
        out = ""; rest = line
        while (match(rest, /[a-z_]+=("[^"]*"|[^ ]*)/)) {
          key = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
          val = substr(key, index(key, "=") + 1); key = substr(key, 1, index(key, "=") - 1)
          if (val !~ /^"/ && val !~ /^-?[0-9.]+$/) val = "\"" val "\""
          out = out (out == "" ? "" : ",") "\"" key "\":" val
        }
        return "{" out "}"
      }
      /^TG-COST-INFO / { print "{\"info\":" obj(substr($0, 14)) "}" }
      /^TG-COST-OP /   { print "{\"op\":" obj(substr($0, 12)) "}" }
      /^TG-COST-NA /   { print "{\"na\":" obj(substr($0, 12)) "}" }
      /^TG-COST /      { print "{\"row\":" obj(substr($0, 9)) "}" }' |
      jq -s --arg rc "$rc" --arg rel "$(sed -n 's/^run-in-vm: kernel [^ ]* = \([^ ]*\).*/\1/p' "$work/vm-$k.log" | head -n 1)" \
        '{exit_code: ($rc | tonumber), kernel_release: $rel, info: (map(.info // empty) | .[0]),
          ops: map(.op // empty), rows: map(.row // empty), not_applicable: map(.na // empty)}')
    vm_json=$(jq --arg k "$k" --argjson v "$kjson" '.[$k] = $v' <<<"$vm_json")
    [ "$rc" = 0 ] || { echo "bench: section 3 on kernel $k failed (rc $rc); log:" >&2; tail -n 30 "$work/vm-$k.log" >&2; }
  done
}
[ "$smoke" = 1 ] && vm_start

# --- 1. request path ------------------------------------------------------------------------
echo "== 1. request path: nginx 1 worker on 127.0.0.1:$port, wrk -t1 -c32 -d${seconds}s, $rounds interleaved rounds"
# obs_in: measuring, and both policies in audit mode through the observe mechanism (syscall
# exit tracepoints: host-wide cost, nginx's syscalls pay too).
variants="off_in on_in obs_in off_out on_out"
for v in $variants; do : >"$work/$v"; done
tracefs_ready
for r in $(seq "$rounds"); do
  # The order rotates each round so slow drift in the machine hits every variant alike.
  set -- $variants
  for _ in $(seq $(( (r - 1) % 5 ))); do set -- "${@:2}" "$1"; done
  for v in "$@"; do
    case $v in on_*) start_agent ;; obs_*) start_agent --policies-observe ;; esac
    line=$(wrk_run "${v#*_}")
    case $v in on_* | obs_*) stop_agent ;; esac
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
# The observe programs' own time per request: each watched call's exit tracepoint runs its
# program for every task on the host that makes that call (bench/observe_cost.sh compares the
# older tp_btf/sys_exit design, which ran on every syscall exit). The other half of observe's
# price, every syscall taking the tracing slow path, is not BPF time and shows only in the CPU
# per request above.
# Counted from just before wrk starts: the agent's own attach-time measurement of observe's
# cost (getppid loops) runs these programs too.
start_agent --policies-observe --bpf-stats
obs_snapshot() { bpftool prog show -j | jq '[.[] | select(.name | startswith("tg_fam_obs") or startswith("tg_wx_obs"))
  | {id, name, runs: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}]'; }
obs_before=$(obs_snapshot)
read -r _ _ obs_reqs _ < <(wrk_run in)
obs_progs=$(jq -n --argjson a "$obs_before" --argjson b "$(obs_snapshot)" '[$b[] | . as $p
  | ($a[] | select(.id == $p.id)) as $q | {name, runs: (.runs - $q.runs), run_time_ns: (.run_time_ns - $q.run_time_ns)}]')
stop_agent
runs_per_req=$(awk '$1 != "TOTAL" { s += $4 } END { printf "%.2f", s }' <<<"$probe_lines")
path_json=$(jq --argjson obs "$obs_progs" --argjson obs_reqs "$obs_reqs" '. + {observe_stats_run: {requests: $obs_reqs,
  programs: $obs, ns_per_request: (($obs | map(.run_time_ns) | add // 0) / $obs_reqs),
  runs_per_request: (($obs | map(.runs) | add // 0) / $obs_reqs)}}' <<<"$path_json")
path_json=$(jq --argjson probe "${probe_ns:-null}" --argjson floor "$floor" --argjson reqs "$reqs" \
  --argjson counted "$counted" --argjson rpr "$runs_per_req" --arg progs "$probe_lines" \
  '. + {probe_ns_per_request: $probe, empty_program_ns_per_run: $floor, runs_per_request: $rpr,
   probe_net_ns_per_request: ($probe - $rpr * $floor), stats_run_requests_wrk: $reqs,
   stats_run_requests_agent: $counted, programs: ($progs | split("\n") | map(select(startswith("tg_")) | split(" ") |
   {name: .[0], runs: (.[1] | tonumber), ns_per_run: (.[2] | tonumber), runs_per_request: (.[3] | tonumber)}))}' <<<"$path_json")

# --- 2. agent footprint ---------------------------------------------------------------------
echo "== 2. agent footprint: tg-http-client at $rate req/s (8 keep-alive connections) in the cgroup for ${fp_seconds}s"
# One field of the agent's /proc status, in KiB.
agent_status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$agent_pid/status"; }
# "BYTES COUNT": memlock of the maps used by the tg_ programs attached to the cgroup.
cgroup_map_memlock() {
  local bytes=0 count=0 mid
  for mid in $(for id in $(bpftool cgroup show "$cgroup" | awk '/tg_/ { print $1 }'); do
                 bpftool prog show id "$id" -j | jq -r '.map_ids[]?'; done | sort -u); do
    bytes=$((bytes + $(bpftool map show id "$mid" -j | jq '.bytes_memlock // 0')))
    count=$((count + 1))
  done
  echo "$bytes $count"
}
start_agent
t0=$(ticks_of "$agent_pid"); w0=$(now_ns)
"$client" --port "$port" --cgroup "$cgroup" --connections 8 --rate "$rate" --duration "${fp_seconds}s" \
  --requests 1000000000 >"$work/fp-client.json" 2>"$work/fp-client.err"
t1=$(ticks_of "$agent_pid"); w1=$(now_ns)
rss_kib=$(agent_status_kib VmRSS)
hwm_kib=$(agent_status_kib VmHWM)
# RSS counts the shared libraries' pages (gRPC, protobuf, libbpf); RssAnon is the agent's own.
anon_kib=$(agent_status_kib RssAnon)
read -r map_bytes map_count < <(cgroup_map_memlock)
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
# The same under attack from inside the tunnel's cgroup (each client re-opens what is closed).
hostile_pids=()
for mode in idle trickle; do
  for dest in "--port $mport" "--unix $sock"; do
    # shellcheck disable=SC2086 # $dest is two words on purpose
    "$hostile" --cgroup "$cgroup" --connections 100 --mode "$mode" --duration 600 $dest \
      --ready-file "$work/hostile-ready-${#hostile_pids[@]}" >/dev/null 2>&1 &
    hostile_pids+=($!)
  done
done
for i in "${!hostile_pids[@]}"; do
  wait_until 60 test -e "$work/hostile-ready-$i" || true
done
: >"$work/scrape-hostile"; : >"$work/ctl-hostile"
for _ in $(seq "$n_scrapes"); do
  curl -s -o /dev/null -m 30 -w '%{time_total}\n' "http://127.0.0.1:$mport/metrics" >>"$work/scrape-hostile"
  s=$(now_ns); "$ctl" --socket "$sock" stats --json >/dev/null; echo "$(( ($(now_ns) - s) / 1000 ))e-3" >>"$work/ctl-hostile"
done
kill "${hostile_pids[@]}" 2>/dev/null; wait "${hostile_pids[@]}" 2>/dev/null || true
scrape_json=$(jq -n --argjson ms "$(awk '{ print $1 * 1000 }' "$work/scrape" | median)" \
  --argjson bytes "$(awk '{ print $2 }' "$work/scrape" | median)" --argjson series "$series" \
  --argjson ctl "$(median <"$work/ctl")" --argjson n "$n_scrapes" \
  --argjson hms "$(awk '{ print $1 * 1000 }' "$work/scrape-hostile" | median)" \
  --argjson hmax "$(awk '{ print $1 * 1000 }' "$work/scrape-hostile" | sort -n | tail -n 1)" \
  --argjson hctl "$(median <"$work/ctl-hostile")" \
  '{scrapes: $n, metrics_ms_median: $ms, metrics_bytes: $bytes, tunnelguard_series: $series,
    tunnelctl_stats_ms_median: $ctl,
    hostile_connections: {per_face: 200, metrics_ms_median: $hms, metrics_ms_max: $hmax,
                          tunnelctl_stats_ms_median: $hctl}}')
stop_agent

# --- 2 (cont.). footprint with many connections held open ---------------------------------
echo "== 2. footprint with $hold_conns keep-alive connections held open in the cgroup (tg-conn-holder), ${fp_seconds}s"
hold_rate=$([ "$smoke" = 1 ] && echo 200 || echo 1000)
start_agent
t0=$(ticks_of "$agent_pid"); w0=$(now_ns)
rm -f "$work/hold.ready"
"$holder" --port "$port" --cgroup "$cgroup" --connections "$hold_conns" --rate "$hold_rate" \
  --duration "$((fp_seconds + 3))s" --ready-file "$work/hold.ready" >"$work/hold.json" 2>"$work/hold.err" &
holder_pid=$!; pids+=("$holder_pid")
for _ in $(seq 1200); do [ -e "$work/hold.ready" ] && break; sleep 0.1; done
[ -e "$work/hold.ready" ] || { echo "bench: tg-conn-holder did not get its connections open:" >&2; cat "$work/hold.err" >&2; exit 1; }
t1=$(ticks_of "$agent_pid"); w1=$(now_ns)
sleep 1
open_gauge() { curl -s "http://127.0.0.1:$mport/metrics" | awk '/^tunnelguard_upstream_open_connections\{.*upstream="127.0.0.1:'"$port"'"/ { s += $2 } END { print s + 0 }'; }
gauge_start=$(open_gauge)
t2=$(ticks_of "$agent_pid"); w2=$(now_ns)
sleep "$((fp_seconds - 1 > 1 ? fp_seconds - 1 : 1))"
t3=$(ticks_of "$agent_pid"); w3=$(now_ns)
gauge_end=$(open_gauge)
hold_rss=$(agent_status_kib VmRSS)
hold_anon=$(agent_status_kib RssAnon)
read -r hold_map_bytes hold_maps < <(cgroup_map_memlock)
# Per-socket flow state lives in sk_storage, charged to each socket's memory, not to the map:
# the kernel's own count of socket memory (pages) and sockets in use, for scale.
tcp_line=$(awk '$1 == "TCP:" { print $3, $11 }' /proc/net/sockstat)
wait "$holder_pid" 2>/dev/null || true
stop_agent
hold_json=$(jq -n --argjson n "$hold_conns" --argjson rate "$hold_rate" --argjson client "$(cat "$work/hold.json")" \
  --argjson hz "$(getconf CLK_TCK)" --argjson open_ticks $((t1 - t0)) --argjson open_ns $((w1 - w0)) \
  --argjson ticks $((t3 - t2)) --argjson ns $((w3 - w2)) --argjson g0 "$gauge_start" --argjson g1 "$gauge_end" \
  --argjson rss "$hold_rss" --argjson anon "$hold_anon" --argjson mb "$hold_map_bytes" --argjson mc "$hold_maps" \
  --argjson tcp_inuse "${tcp_line% *}" --argjson tcp_pages "${tcp_line#* }" \
  '{connections: $n, trickle_rps: $rate, client: $client, open_seconds: ($open_ns / 1e9),
    agent_cpu_percent_while_opening: (100 * ($open_ticks / $hz) / ($open_ns / 1e9)),
    seconds: ($ns / 1e9), agent_cpu_percent_of_one_core: (100 * ($ticks / $hz) / ($ns / 1e9)),
    agent_rss_mib: ($rss / 1024), agent_rss_anon_mib: ($anon / 1024), bpf_map_memlock_kib: ($mb / 1024),
    bpf_maps: $mc, open_gauge_start: $g0, open_gauge_end: $g1, host_tcp_inuse: $tcp_inuse,
    host_tcp_mem_pages: $tcp_pages}')

# --- 5. start-up ----------------------------------------------------------------------------
echo "== 5. start-up: to READY=1 and to the first counted request (a client at 200 req/s runs in the cgroup)"
"$client" --port "$port" --cgroup "$cgroup" --connections 2 --rate 200 --duration 600s \
  --requests 1000000000 >/dev/null 2>&1 & bg_client=$!; pids+=("$bg_client")
"$listen" "$work/notify.sock" >"$work/notify.log" & pids+=($!)
wait_until 30 test -S "$work/notify.sock" || true
# startup_once LABEL: starts the agent, prints "ready_ms first_metric_ms"
startup_once() {
  : >"$work/notify.log"
  local t0; t0=$(now_ns)
  NOTIFY_SOCKET=$work/notify.sock "$tg" run --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" \
    --families off --wx-memory off --metrics-listen "127.0.0.1:$mport" --grpc-socket "$sock" \
    >>"$work/agent.log" 2>&1 &
  agent_pid=$!
  # Until both are seen (a deadline, not a count of polls: a loaded machine starts slower; the
  # times are taken when each is seen, so waiting longer changes no figure).
  local first="" ready="" deadline=$(($(date +%s) + 120))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ -z "$first" ] && curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null |
        grep -q '^tunnelguard_upstream_requests_total{.*} [1-9]'; then first=$(now_ns); fi
    [ -n "$ready" ] || ready=$(awk '/READY=1/ { print $1; exit }' "$work/notify.log")
    [ -n "$first" ] && [ -n "$ready" ] && break
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.005
  done
  [ -n "$first" ] && [ -n "$ready" ] || {
    echo "bench: start-up not observed within 120 s (first counted request: ${first:-no}, READY=1: ${ready:-no})" >&2
    tail "$work/agent.log" >&2; exit 1; }
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

# --- 6. bpftrace baseline ------------------------------------------------------------------
# The same request latency taken by a bpftrace script, the way a user without tunnelguard would:
# this kernel has no kprobes (CONFIG_KPROBES off) and refuses fentry/fexit, so tcp_sendmsg /
# tcp_rcv_established probes are out; what bpftrace can attach to here are tracepoints. The
# script times, per thread and fd, a write()/sendto() by a task in the cgroup to the next
# read()/recvfrom() returning data on that fd: request sent -> first response byte, in the
# client's syscalls (so it includes the client's own wake-up, and cannot tell which peer an fd
# talks to; it takes every socket of the cgroup). Syscall tracepoints are host-wide: every
# task's read/write runs the programs and returns at the cgroup check.
bt_json=null bt_note=""
bt_script=$work/latency.bt
cat >"$bt_script" <<BT
tracepoint:syscalls:sys_enter_getppid /cgroup == cgroupid("$cgroup")/ { printf("ready\\n"); }
tracepoint:syscalls:sys_enter_write /cgroup == cgroupid("$cgroup")/ { @start[tid, (uint64)args->fd] = nsecs; }
tracepoint:syscalls:sys_enter_sendto /cgroup == cgroupid("$cgroup")/ { @start[tid, (uint64)args->fd] = nsecs; }
tracepoint:syscalls:sys_enter_read /cgroup == cgroupid("$cgroup")/ { @rfd[tid] = (uint64)args->fd + 1; }
tracepoint:syscalls:sys_enter_recvfrom /cgroup == cgroupid("$cgroup")/ { @rfd[tid] = (uint64)args->fd + 1; }
tracepoint:syscalls:sys_exit_read, tracepoint:syscalls:sys_exit_recvfrom
/cgroup == cgroupid("$cgroup") && @rfd[tid]/ {
  \$fd = @rfd[tid] - 1;
  delete(@rfd[tid]);
  \$t0 = @start[tid, \$fd];
  if (args->ret > 0 && \$t0 > 0) {
    \$us = (nsecs - \$t0) / 1000;
    @usecs = hist(\$us);
    @lin_us = lhist(\$us, 0, 40000, 50);
    @requests = count();
    delete(@start[tid, \$fd]);
  }
}
END { clear(@start); clear(@rfd); }
BT
bt_pid=""
# bt_start: runs the script; returns once its probes fire (a getppid() from the cgroup is seen),
# setting bt_attach_ms.
bt_start() {
  local t0; t0=$(now_ns)
  : >"$work/bt.out"
  bt_ids_before=$(bpftool prog show -j | jq -c '[.[].id]')
  # (bpftrace 0.17 warns that it cannot raise RLIMIT_MEMLOCK; since 5.11 BPF memory is charged
  # to the cgroup instead, so the warning is harmless.)
  bpftrace -f json "$bt_script" >"$work/bt.out" 2>"$work/bt.err" & bt_pid=$!
  for _ in $(seq 300); do
    in_cgroup python3 -c 'import os; os.getppid()'
    grep -q '"ready' "$work/bt.out" && { bt_attach_ms=$(( ($(now_ns) - t0) / 1000000 )); return 0; }
    kill -0 "$bt_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: bpftrace did not attach:" >&2; cat "$work/bt.err" >&2; return 1
}
bt_stop() { kill -INT "$bt_pid" 2>/dev/null || true; wait "$bt_pid" 2>/dev/null || true; bt_pid=""; }
# quantiles of bpftrace's linear histogram (JSON lines on stdout), interpolated in 50 us buckets
bt_quantiles() {
  jq -s '(map(select(.type == "hist" and .data["@lin_us"])) | .[0].data["@lin_us"]) as $b
    | ($b | map(.count) | add) as $n
    | def q(p): (p * $n) as $want | reduce $b[] as $x ({acc: 0, v: null};
        if .v == null and .acc + $x.count >= $want then
          .v = (($x.min // 0) + (($want - .acc) / $x.count) * ((($x.max // ($x.min + 50)) + 1) - ($x.min // 0)))
        else . end | .acc += $x.count) | .v;
      {requests: (map(select(.type == "stats" or .type == "map") | .data["@requests"] // empty) | .[0]),
       count_in_histogram: $n, p50_us: q(0.5), p90_us: q(0.9), p99_us: q(0.99),
       log2: (map(select(.type == "hist" and .data["@usecs"])) | .[0].data["@usecs"])}' "$1"
}
if command -v bpftrace >/dev/null; then
  tracefs_ready
  bt_seconds=$([ "$smoke" = 1 ] && echo 1 || echo 20)
  echo "== 6. bpftrace baseline: accuracy on known-delay traffic ($delay_mix via nginx :$dport), ${bt_seconds}s at 400 req/s"
  # Both attached to the same requests; kernel BPF stats on for this phase only, so each one's
  # BPF time per request is taken on identical traffic.
  start_agent
  bt_start
  sysctl -qw kernel.bpf_stats_enabled=1
  "$client" --port "$dport" --cgroup "$cgroup" --connections 8 --rate 400 --duration "${bt_seconds}s" \
    --requests 1000000000 --realtime >"$work/bt-client.json" 2>/dev/null
  # bpftrace's programs: the tracepoint programs it loaded (this bpftool shows no owner pids).
  bt_progs=$(bpftool prog show -j | jq --argjson before "$bt_ids_before" '[.[] | select(.type == "tracepoint"
    and (.name // "" | startswith("sys_")) and (.id as $i | $before | index($i) | not))
    | {name, type, runs: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}]')
  tg_progs=$(for id in $(bpftool cgroup show "$cgroup" | awk '/tg_/ { print $1 }'); do bpftool prog show id "$id" -j; done |
    jq -s '[.[] | {name, type, runs: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}]')
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  sleep 0.2
  "$ctl" --socket "$sock" stats --json >"$work/bt-agent.json"
  bt_stop
  stop_agent
  acc_attach_ms=$bt_attach_ms
  cp "$work/bt.out" "$work/bt-accuracy.out"
  bt_acc=$(bt_quantiles "$work/bt-accuracy.out")
  echo "== 6. bpftrace baseline: cost, wrk -t1 -c32 in the cgroup, none / tunnelguard / bpftrace, $rounds interleaved rounds"
  for v in none tg bt; do : >"$work/bt-$v"; done
  bt_attach_all=()
  for r in $(seq "$rounds"); do
    set -- none tg bt
    for _ in $(seq $(( (r - 1) % 3 ))); do set -- "${@:2}" "$1"; done
    for v in "$@"; do
      case $v in tg) start_agent ;; bt) bt_start; bt_attach_all+=("$bt_attach_ms") ;; esac
      line=$(wrk_run in)
      case $v in tg) stop_agent ;; bt) bt_stop ;; esac
      echo "$line" >>"$work/bt-$v"
      read -r rps p99 n cpu <<<"$line"
      printf '  round %d %-5s %9.0f req/s  p99 %7.3f ms  %7.2f us CPU/request\n' "$r" "$v" "$rps" "$p99" "$cpu"
    done
  done
  bt_cost='{}'
  for v in none tg bt; do
    rps=$(cut -d' ' -f1 "$work/bt-$v" | median); cpu=$(cut -d' ' -f4 "$work/bt-$v" | median)
    read -r lo hi < <(cut -d' ' -f1 "$work/bt-$v" | spread)
    bt_cost=$(jq --arg v "$v" --argjson rps "$rps" --argjson cpu "$cpu" --argjson lo "$lo" --argjson hi "$hi" \
      '.[$v] = {rps_median: $rps, rps_min: $lo, rps_max: $hi, cpu_us_per_request_median: $cpu}' <<<"$bt_cost")
  done
  bt_json=$(jq -n --argjson acc "$bt_acc" --argjson client "$(cat "$work/bt-client.json")" \
    --argjson agent "$(jq '.upstreams[] | select(.name == "delay")' "$work/bt-agent.json")" \
    --argjson cost "$bt_cost" --argjson progs "$bt_progs" --argjson tgprogs "$tg_progs" \
    --argjson attach "$(printf '%s\n' "$acc_attach_ms" "${bt_attach_all[@]}" | median)" \
    --arg mix "$delay_mix" --argjson secs "$bt_seconds" --arg version "$(bpftrace --version | awk '{ print $2 }')" \
    '{bpftrace: $version, delay_mix: $mix, accuracy_seconds: $secs, attach_ms_median: $attach,
      accuracy: {client: {requests: $client.requests, p50_us: ($client.request_seconds.p50 * 1e6),
                          p90_us: ($client.request_seconds.p90 * 1e6), p99_us: ($client.request_seconds.p99 * 1e6)},
                 tunnelguard: {requests: $agent.requests, p50_us: ($agent.request_latency_seconds.p50 * 1e6),
                          p90_us: ($agent.request_latency_seconds.p90 * 1e6), p99_us: ($agent.request_latency_seconds.p99 * 1e6)},
                 bpftrace: $acc},
      cost: $cost,
      bpf_stats: {requests: $client.requests,
        bpftrace: {programs: $progs, ns_per_request: (($progs | map(.run_time_ns) | add) / $client.requests),
                   runs_per_request: (($progs | map(.runs) | add) / $client.requests)},
        tunnelguard: {programs: $tgprogs, ns_per_request: (($tgprogs | map(.run_time_ns) | add) / $client.requests),
                   runs_per_request: (($tgprogs | map(.runs) | add) / $client.requests)}}}')
else
  bt_note="skipped: bpftrace is not installed"
fi

# --- 3. enforcement in QEMU -----------------------------------------------------------------
if [ -n "$vm_kernels" ]; then
  echo "== 3. enforcement per call in QEMU (TCG), kernels: $vm_kernels; $vm_rounds interleaved rounds of $vm_calls calls"
  [ "$smoke" = 1 ] || vm_start
  vm_collect
fi

# --- report ---------------------------------------------------------------------------------
kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true
load_json=$(load_summary)
jq -n --argjson machine "$machine_json" --argjson path "$path_json" --argjson fp "$fp_json" \
  --argjson hold "$hold_json" --argjson vm "$vm_json" --arg vm_note "$vm_note" --argjson bt "$bt_json" \
  --arg bt_note "$bt_note" --argjson load "$load_json" \
  --argjson scrape "$scrape_json" --argjson startup "$startup_json" --argjson smoke "$smoke" \
  --argjson rounds "$rounds" --argjson seconds "$seconds" \
  '{smoke: ($smoke == 1), rounds: $rounds, seconds_per_run: $seconds, machine: ($machine + {load_during_run: $load}),
    request_path: $path, footprint: ($fp + {held_connections: $hold}),
    enforcement_vm: ($vm + (if $vm_note != "" then {note: $vm_note} else {} end)),
    scrape: $scrape, startup: $startup,
    bpftrace_baseline: (if $bt == null then {note: $bt_note} else $bt end)}' >"$json.tmp"
mv "$json.tmp" "$json"
r() { jq -r "$1" "$json"; }
echo
echo "tunnelguard bench — $(r .machine.cpu), $(r .machine.cores) cores, $(r .machine.memory_mib) MiB, kernel $(r .machine.kernel), $(r .machine.date)"
echo "load while it ran: $(r .machine.load_during_run.text)"
echo "1. request path (median of $rounds rounds, ${seconds}s each; spread = min..max req/s)"
printf '   %-34s %9s %17s %9s %8s %12s\n' variant "req/s" "spread" ratio "p99 ms" "CPU us/req"
for v in off_in on_in obs_in off_out on_out; do
  base=$(case $v in *_in) echo off_in ;; *) echo off_out ;; esac)
  printf '   %-34s %9.0f %8.0f..%-8.0f %9.3f %8.3f %12.2f\n' \
    "$(case $v in off_in) echo 'in cgroup, no agent' ;; on_in) echo 'in cgroup, measuring' ;;
       obs_in) echo 'in cgroup, measuring + observe' ;;
       off_out) echo 'outside cgroup, no agent' ;; on_out) echo 'outside cgroup, agent on' ;; esac)" \
    "$(r ".request_path.$v.rps_median")" "$(r ".request_path.$v.rps_min")" "$(r ".request_path.$v.rps_max")" \
    "$(r ".request_path.$v.rps_median / .request_path.$base.rps_median")" \
    "$(r ".request_path.$v.p99_ms_median")" "$(r ".request_path.$v.cpu_us_per_request_median")"
done
printf '   CPU per request vs no agent: measuring inside %+.0f ns, measuring + observe (audit) inside %+.0f ns, outside %+.0f ns\n' \
  "$(r '(.request_path.on_in.cpu_us_per_request_median - .request_path.off_in.cpu_us_per_request_median) * 1000')" \
  "$(r '(.request_path.obs_in.cpu_us_per_request_median - .request_path.off_in.cpu_us_per_request_median) * 1000')" \
  "$(r '(.request_path.on_out.cpu_us_per_request_median - .request_path.off_out.cpu_us_per_request_median) * 1000')"
printf '   probe cost (kernel BPF stats): %s ns/request gross, %s runs/request, empty program %s ns/run -> ~%s ns net\n' \
  "$(r .request_path.probe_ns_per_request)" "$(r .request_path.runs_per_request)" \
  "$(r .request_path.empty_program_ns_per_run)" "$(r '.request_path.probe_net_ns_per_request | floor')"
printf '   observe programs (kernel BPF stats, wrk in the cgroup): %.0f ns/request in %.1f runs/request (per-call exit tracepoints, host-wide)\n' \
  "$(r .request_path.observe_stats_run.ns_per_request)" "$(r .request_path.observe_stats_run.runs_per_request)"
printf '   requests in the stats run: wrk completed %s, the agent counted %s\n' \
  "$(r .request_path.stats_run_requests_wrk)" "$(r .request_path.stats_run_requests_agent)"
printf '2. footprint at %s req/s (achieved %.0f) for %ss: agent CPU %.2f %% of one core, RSS %.1f MiB (peak %.1f, anonymous %.1f), BPF maps %.0f KiB in %s maps\n' \
  "$(r .footprint.target_rps)" "$(r .footprint.achieved_rps)" "$(r '.footprint.seconds | floor')" \
  "$(r .footprint.agent_cpu_percent_of_one_core)" "$(r .footprint.agent_rss_mib)" "$(r .footprint.agent_peak_rss_mib)" \
  "$(r .footprint.agent_rss_anon_mib)" \
  "$(r .footprint.bpf_map_memlock_kib)" "$(r .footprint.bpf_maps)"
if [ "$(r '.footprint.held_connections.connections')" != null ]; then
  printf '   with %s keep-alive connections held open (%s opened in %.1f s, %s req/s trickled, %s answered): agent CPU %.2f %% of one core (%.1f %% while they opened), RSS %.1f MiB (anonymous %.1f), BPF maps %.0f KiB in %s maps; open-connection gauge %s at start, %s at end (host TCP sockets in use: %s)\n' \
    "$(r .footprint.held_connections.connections)" "$(r .footprint.held_connections.client.connections_open)" \
    "$(r .footprint.held_connections.open_seconds)" "$(r .footprint.held_connections.trickle_rps)" \
    "$(r .footprint.held_connections.client.requests)" "$(r .footprint.held_connections.agent_cpu_percent_of_one_core)" \
    "$(r .footprint.held_connections.agent_cpu_percent_while_opening)" "$(r .footprint.held_connections.agent_rss_mib)" \
    "$(r .footprint.held_connections.agent_rss_anon_mib)" "$(r .footprint.held_connections.bpf_map_memlock_kib)" \
    "$(r .footprint.held_connections.bpf_maps)" "$(r .footprint.held_connections.open_gauge_start)" \
    "$(r .footprint.held_connections.open_gauge_end)" "$(r .footprint.held_connections.host_tcp_inuse)"
fi
# Section 3: one block per kernel; ratio = median / median of no policy at the same place.
for k in $(jq -r '.enforcement_vm | keys_unsorted[] | select(. != "note")' "$json"); do
  printf '3. enforcement per call in QEMU/TCG, kernel %s (median of %s interleaved rounds x %s calls; ratio to no policy at the same place; relative figures only)\n' \
    "$(r ".enforcement_vm[\"$k\"].kernel_release")" "$(r ".enforcement_vm[\"$k\"].info.rounds")" "$(r ".enforcement_vm[\"$k\"].info.calls")"
  # noise: none inside / none outside — two identical configurations, so how far apart two
  # figures must be before a ratio means anything in this guest.
  printf '   %-40s %9s %7s %17s %17s %13s %7s\n' call "none ns" noise "lsm_cgroup in/out" "lsm-global in/out" seccomp MDWE
  printf '   %-40s %9s %7s %17s %17s %13s %7s\n' "" "(inside)" "in/out" "" "" "(per process)" ""
  jq -r --arg k "$k" '.enforcement_vm[$k] as $v | $v.ops[] | .op as $op
    | def f2: (. * 100 | round) as $x | "\($x / 100 | floor).\($x % 100 | tostring | if length < 2 then "0" + . else . end)";
      def cell(c; w): ($v.rows[] | select(.op == $op and .config == c and .where == w) | .ratio | f2) // "-";
      def na(c): ([$v.not_applicable[] | select(.op == $op and .config == c)] | length) > 0;
      [.label, (($v.rows[] | select(.op == $op and .config == "none" and .where == "inside") | .median_ns) // 0),
       ((($v.rows[] | select(.op == $op and .config == "none" and .where == "inside") | .median_ns) /
         ($v.rows[] | select(.op == $op and .config == "none" and .where == "outside") | .median_ns)) | f2),
       (cell("lsm_cgroup"; "inside") + " / " + cell("lsm_cgroup"; "outside")),
       (cell("lsm_global"; "inside") + " / " + cell("lsm_global"; "outside")),
       cell("systemd_seccomp"; "inside"), (if na("mdwe") then "n/a" else cell("mdwe"; "inside") end)] | @tsv' "$json" |
    while IFS=$'\t' read -r label none noise lc lg sc md; do
      printf '   %-40s %9.0f %7s %17s %17s %13s %7s\n' "${label:0:40}" "$none" "$noise" "$lc" "$lg" "$sc" "$md"
    done
  if [ "$(r ".enforcement_vm[\"$k\"].info.mdwe")" != available ]; then
    echo "   MDWE: $(r ".enforcement_vm[\"$k\"].not_applicable[] | select(.op == \"mmap\" and .config == \"mdwe\") | .reason")"
  fi
  printf '   getppid (no policy hook): lsm_cgroup %s inside / %s outside, lsm-global %s / %s, systemd seccomp %s (in the filtered process)\n' \
    "$(r "[.enforcement_vm[\"$k\"].rows[] | select(.op == \"getppid\" and .config == \"lsm_cgroup\" and .where == \"inside\") | .ratio][0]")" \
    "$(r "[.enforcement_vm[\"$k\"].rows[] | select(.op == \"getppid\" and .config == \"lsm_cgroup\" and .where == \"outside\") | .ratio][0]")" \
    "$(r "[.enforcement_vm[\"$k\"].rows[] | select(.op == \"getppid\" and .config == \"lsm_global\" and .where == \"inside\") | .ratio][0]")" \
    "$(r "[.enforcement_vm[\"$k\"].rows[] | select(.op == \"getppid\" and .config == \"lsm_global\" and .where == \"outside\") | .ratio][0]")" \
    "$(r "[.enforcement_vm[\"$k\"].rows[] | select(.op == \"getppid\" and .config == \"systemd_seccomp\" and .where == \"inside\") | .ratio][0]")"
done
[ "$(r '.enforcement_vm.note // ""')" = "" ] || echo "3. enforcement in QEMU: $(r .enforcement_vm.note)"
printf '4. /metrics: %.2f ms median for %s bytes (%s tunnelguard_ lines); tunnelctl stats --json round trip (process included): %.1f ms median\n' \
  "$(r .scrape.metrics_ms_median)" "$(r .scrape.metrics_bytes)" "$(r .scrape.tunnelguard_series)" "$(r .scrape.tunnelctl_stats_ms_median)"
printf '   with 100 idle + 100 trickling connections to each from the cgroup: /metrics %.2f ms median (max %.1f), tunnelctl stats %.1f ms median\n' \
  "$(r .scrape.hostile_connections.metrics_ms_median)" "$(r .scrape.hostile_connections.metrics_ms_max)" "$(r .scrape.hostile_connections.tunnelctl_stats_ms_median)"
printf '5. start-up (median of %s): to READY=1 / to first counted request in /metrics\n' "$n_starts"
for k in cold restart kill9; do
  printf '   %-34s %8.1f ms %8.1f ms\n' "$(case $k in cold) echo 'first start' ;; restart) echo 'after a clean stop' ;;
    kill9) echo 'after SIGKILL (stale socket file)' ;; esac)" "$(r ".startup.$k.ready_ms")" "$(r ".startup.$k.first_metric_ms")"
done
if [ "$(r '.bpftrace_baseline.bpftrace // null')" != null ]; then
  b=.bpftrace_baseline
  printf '6. bpftrace %s baseline (syscall tracepoints: write/sendto -> first read/recvfrom > 0 per thread+fd, cgroup filter; attach %s ms median)\n' \
    "$(r $b.bpftrace)" "$(r $b.attach_ms_median)"
  printf '   accuracy, %s s of %s via nginx (delay %s):  %10s %10s %10s %10s\n' "$(r $b.accuracy_seconds)" \
    "client at 400 req/s" "$(r $b.delay_mix)" requests "p50 us" "p90 us" "p99 us"
  for w in client tunnelguard bpftrace; do
    printf '   %-58s %10s %10.0f %10.0f %10.0f\n' "$(case $w in client) echo 'client (tg-http-client, its own clock)' ;;
      tunnelguard) echo 'tunnelguard (kernel, log-linear buckets)' ;; bpftrace) echo 'bpftrace (lhist 50 us, interpolated)' ;; esac)" \
      "$(r "$b.accuracy.$w.requests")" "$(r "$b.accuracy.$w.p50_us")" "$(r "$b.accuracy.$w.p90_us")" "$(r "$b.accuracy.$w.p99_us")"
  done
  printf '   bpftrace log2 hist(): p50 in [%s, %s] us, p99 in [%s, %s] us\n' \
    "$(r "$b.accuracy.bpftrace.log2 as \$h | (\$h | map(.count) | add) as \$n | reduce \$h[] as \$x ({a: 0, v: null}; if .v == null and .a + \$x.count >= 0.5 * \$n then .v = \$x.min else . end | .a += \$x.count) | .v")" \
    "$(r "$b.accuracy.bpftrace.log2 as \$h | (\$h | map(.count) | add) as \$n | reduce \$h[] as \$x ({a: 0, v: null}; if .v == null and .a + \$x.count >= 0.5 * \$n then .v = \$x.max else . end | .a += \$x.count) | .v")" \
    "$(r "$b.accuracy.bpftrace.log2 as \$h | (\$h | map(.count) | add) as \$n | reduce \$h[] as \$x ({a: 0, v: null}; if .v == null and .a + \$x.count >= 0.99 * \$n then .v = \$x.min else . end | .a += \$x.count) | .v")" \
    "$(r "$b.accuracy.bpftrace.log2 as \$h | (\$h | map(.count) | add) as \$n | reduce \$h[] as \$x ({a: 0, v: null}; if .v == null and .a + \$x.count >= 0.99 * \$n then .v = \$x.max else . end | .a += \$x.count) | .v")"
  printf '   cost, wrk -t1 -c32 in the cgroup (median of %s interleaved rounds):  %9s %17s %9s %12s\n' "$rounds" "req/s" spread ratio "CPU us/req"
  for v in none tg bt; do
    printf '   %-58s %9.0f %8.0f..%-8.0f %9.3f %12.2f\n' "$(case $v in none) echo 'no tracing' ;; tg) echo 'tunnelguard measuring' ;; bt) echo 'bpftrace script' ;; esac)" \
      "$(r "$b.cost.$v.rps_median")" "$(r "$b.cost.$v.rps_min")" "$(r "$b.cost.$v.rps_max")" \
      "$(r "$b.cost.$v.rps_median / $b.cost.none.rps_median")" "$(r "$b.cost.$v.cpu_us_per_request_median")"
  done
  printf '   BPF stats on the accuracy traffic (%s requests): bpftrace %.0f ns/request in %.1f program runs per request (host-wide: every task'"'"'s read/write runs them); tunnelguard %.0f ns/request in %.2f runs\n' \
    "$(r "$b.bpf_stats.requests")" "$(r "$b.bpf_stats.bpftrace.ns_per_request")" "$(r "$b.bpf_stats.bpftrace.runs_per_request")" \
    "$(r "$b.bpf_stats.tunnelguard.ns_per_request")" "$(r "$b.bpf_stats.tunnelguard.runs_per_request")"
else
  echo "6. bpftrace baseline: $(r '.bpftrace_baseline.note')"
fi
echo "JSON: $json"

if [ "$smoke" = 1 ]; then
  # Breakage, not slowness: every figure present, and the agent counted what wrk completed
  # (up to the 32 requests in flight when wrk stops).
  fail=0
  for q in .request_path.off_in.rps_median .request_path.on_in.rps_median .request_path.probe_ns_per_request \
           .footprint.agent_rss_mib .footprint.bpf_map_memlock_kib .scrape.metrics_bytes \
           .scrape.hostile_connections.metrics_ms_median \
           .startup.cold.ready_ms .startup.kill9.first_metric_ms .request_path.obs_in.rps_median \
           .footprint.held_connections.agent_rss_mib .footprint.held_connections.open_gauge_start \
           .bpftrace_baseline.accuracy.bpftrace.p50_us .bpftrace_baseline.accuracy.tunnelguard.p50_us \
           .bpftrace_baseline.cost.bt.cpu_us_per_request_median .bpftrace_baseline.bpf_stats.bpftrace.ns_per_request \
           .bpftrace_baseline.bpf_stats.tunnelguard.ns_per_request .request_path.observe_stats_run.ns_per_request; do
    v=$(r "$q"); { [ "$v" = null ] || [ "$v" = 0 ]; } && { echo "bench smoke: $q missing ($v)" >&2; fail=1; }
  done
  # All the held connections open, and the agent's gauge saw each of them.
  g=$(r .footprint.held_connections.open_gauge_start) o=$(r .footprint.held_connections.client.connections_open)
  [ "$g" = "$hold_conns" ] && [ "$o" = "$hold_conns" ] ||
    { echo "bench smoke: $o of $hold_conns connections held open, open-connection gauge $g" >&2; fail=1; }
  # Section 3: every kernel that ran gave every row (a kernel skipped for a missing qemu or
  # kernel is reported in the note, as run-in-vm.sh's exit code 77 says).
  for k in $(jq -r '.enforcement_vm | keys_unsorted[] | select(. != "note")' "$json"); do
    [ "$(r ".enforcement_vm[\"$k\"].exit_code")" = 0 ] || { echo "bench smoke: section 3 failed on $k" >&2; fail=1; }
    n=$(r "[.enforcement_vm[\"$k\"].rows[] | select(.ratio > 0)] | length")
    want=$(r "if .enforcement_vm[\"$k\"].info.mdwe == \"available\" then 37 else 35 end")
    [ "$n" = "$want" ] || { echo "bench smoke: section 3 on $k gave $n rows, expected $want" >&2; fail=1; }
  done
  [ "$(r '.enforcement_vm | keys | map(select(. != "note")) | length')" -gt 0 ] ||
    [ "$(r '.enforcement_vm.note // ""')" != "" ] || { echo "bench smoke: section 3 produced nothing" >&2; fail=1; }
  # Section 6: bpftrace and the agent each counted the client's requests (8 may be in flight).
  if [ "$(r '.bpftrace_baseline.bpftrace // null')" != null ]; then
    for w in bpftrace tunnelguard; do
      d=$(r ".bpftrace_baseline.accuracy.$w.requests - .bpftrace_baseline.accuracy.client.requests")
      { [ "$d" -lt 0 ] || [ "$d" -gt 8 ]; } &&
        { echo "bench smoke: $w counted $d requests more than the client (expected 0..8)" >&2; fail=1; }
    done
  fi
  d=$(r '.request_path.stats_run_requests_agent - .request_path.stats_run_requests_wrk')
  { [ "$d" -lt 0 ] || [ "$d" -gt 32 ]; } && { echo "bench smoke: agent counted $d requests more than wrk (expected 0..32)" >&2; fail=1; }
  exit "$fail"
fi
