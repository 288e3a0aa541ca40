#!/usr/bin/env bash
# The host-wide price of audit mode through the observe mechanism, one command:
# prints a table and writes JSON. Three configurations, interleaved round by round (the order
# rotates, so slow drift in a shared machine hits each alike):
#   none      no agent
#   per_call  `tunnelguard run --mode audit --mechanism observe`: each watched call hooked at
#             its own exit tracepoint (tracepoint/syscalls/sys_exit_<name>), today's design
#   sys_exit  the same with the hidden `--observe-hook sys-exit`: every watched call at the
#             host-wide tp_btf/sys_exit, the design before the per-call hooks
# In each: tg-syscall-cost from a process OUTSIDE the target cgroup (the host-wide cost: getppid,
# a pipe write+read pair, and the watched socket, mmap and mprotect), then wrk through nginx from
# INSIDE the cgroup with kernel BPF stats on: the observe programs' ns and runs per request, and
# all of tunnelguard's programs' (the latency probes included).
# Usage: sudo bench/observe_cost.sh [--rounds N] [--calls N] [--seconds S] [--json FILE]
#                                   [--build DIR] [--smoke]
#   --smoke: 1 round, few calls, 1 s of wrk: checks that every figure is produced and that the
#   hooks are the ones asked for, never how fast anything was.
# Needs a build (cmake --build build), nginx-light, wrk, jq, bpftool (tools/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=5 calls=200000 seconds=3 json=bench/observe-cost.json smoke=0
build=${TG_BUILD_DIR:-build}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 rounds=1 calls=20000 seconds=1; shift ;;
    --rounds | --calls | --seconds | --json | --build)
      [ $# -ge 2 ] || { echo "observe_cost: $1 needs a value (see --help)" >&2; exit 2; }
      v=$2; case $1 in --rounds) rounds=$v ;; --calls) calls=$v ;; --seconds) seconds=$v ;;
        --json) json=$v ;; --build) build=$v ;; esac; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "observe_cost: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "observe_cost: run as root (it loads BPF programs)" >&2; exit 1; }
case $build in /*) ;; *) build=$PWD/$build ;; esac
tg=$build/agent/tunnelguard ctl=$build/tunnelctl/tunnelctl cost=$build/tests/tools/tg-syscall-cost
for b in "$tg" "$ctl" "$cost"; do
  [ -x "$b" ] || { echo "observe_cost: $b missing; build first (cmake --build $build)" >&2; exit 1; }
done
for t in wrk nginx jq bpftool; do
  command -v "$t" >/dev/null || { echo "observe_cost: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tg-observe-cost.XXXXXX)
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cgroup="$cg2/tg-observe-cost-$$"
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
agent_pid="" nginx_pid=""
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  stop_agent
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  if [ -d "$cgroup" ]; then
    while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$cgroup/cgroup.procs"
    rmdir "$cgroup" 2>/dev/null || { sleep 0.2; rmdir "$cgroup" 2>/dev/null || true; }
  fi
  if [ "$mounted_tracefs" = 1 ]; then umount /sys/kernel/tracing 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nginx on port 0 is not possible: a port nobody listens on, taken by nginx itself (it fails
# to start on a race, and the loop below says so).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/www"; echo hello >"$work/www/index.html"
cat >"$work/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000000; client_body_temp_path $work;
  proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$port; root $work/www; } }
NGINX
nginx -c "$work/nginx.conf" -p "$work" & nginx_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
curl -fs -o /dev/null "http://127.0.0.1:$port/" || { echo "observe_cost: nginx did not start:" >&2; cat "$work/error.log" >&2; exit 1; }
mkdir "$cgroup"
upstreams="web=127.0.0.1:$port"
mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sock=$work/tg.sock
tracefs_ready

# The agent's programs (none without one): "id name run_cnt run_time_ns".
# Other agents on the machine (tests, other benchmarks) are not ours to count.
# (Found through the agent's descriptors: bpftool's own pid column needs a task iterator, which
# some kernels refuse.)
prog_stats() {
  [ -n "$agent_pid" ] || return 0
  local ids
  ids=$( {
    awk '$1 == "prog_id:" { print $2 }' /proc/"$agent_pid"/fdinfo/* 2>/dev/null
    # The policies' programs are held by their pinned links, not by the agent's descriptors.
    find "/sys/fs/bpf/tunnelguard/$(stat -c %i "$cgroup")" -type f 2>/dev/null | while read -r f; do
      bpftool link show pinned "$f" -j 2>/dev/null | jq -r '.prog_id // empty'
    done } | sort -u | paste -sd,)
  [ -n "$ids" ] || return 0
  bpftool prog show -j | jq -r --argjson ids "[$ids]" '.[] | select(.id as $i | $ids | index($i))
    | "\(.id) \(.name) \(.run_cnt // 0) \(.run_time_ns // 0)"'
}
# per_request BEFORE AFTER REQUESTS -> "observe_ns observe_runs all_ns": per request, the
# observe programs' (tg_fam_obs*, tg_wx_obs*) and all of tunnelguard's, from two prog_stats.
per_request() {
  awk -v n="$3" 'FNR == NR { c[$1] = $3; t[$1] = $4; next }
    { dc = $3 - c[$1]; dt = $4 - t[$1]; all += dt
      if ($2 ~ /^tg_(fam|wx)_obs/) { ot += dt; oc += dc } }
    END { printf "%.1f %.2f %.1f\n", ot / n, oc / n, all / n }' <(echo "$1") <(echo "$2")
}
# A config's one round: the syscall costs (JSON) and the request path.
measure() {  # CONFIG
  local before after reqs out
  "$cost" --calls "$calls" --repeats 3 >"$work/$1.cost.$r"
  before=$(prog_stats)
  sysctl -qw kernel.bpf_stats_enabled=1
  out=$(in_cgroup wrk -t1 -c16 -d"${seconds}s" "http://127.0.0.1:$port/")
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  after=$(prog_stats)
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  echo "$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out") $reqs $(per_request "$before" "$after" "$reqs")" >>"$work/$1.path"
}
start_config() {  # CONFIG
  case $1 in
    none) ;;
    per_call) start_agent --policies-observe ;;
    sys_exit) start_agent --policies-observe --observe-hook sys-exit ;;
  esac
  [ "$1" = none ] && return 0
  # Which calls went where: recorded, and checked against what was asked.
  "$tg" status --json | jq -c --arg cg "$cgroup" \
    '[.targets[] | select(.cgroup == $cg) | .policies[] | {policy: .name, hooks: .observe.hooks}]' >"$work/$1.hooks"
  local at_sys_exit
  at_sys_exit=$(jq '[.[].hooks.sys_exit | length] | add' "$work/$1.hooks")
  if [ "$(jq '[.[].hooks | objects] | length' "$work/$1.hooks")" != 2 ] ||
    { [ "$1" = per_call ] && [ "$at_sys_exit" != 0 ]; } || { [ "$1" = sys_exit ] && [ "$at_sys_exit" = 0 ]; }; then
    echo "observe_cost: $1 asked for, but the agent hooked: $(cat "$work/$1.hooks")" >&2; exit 1
  fi
}

configs="none per_call sys_exit"
echo "== observe host-wide cost: $rounds interleaved rounds; tg-syscall-cost outside the cgroup ($calls calls x 3 per op), wrk -t1 -c16 -d${seconds}s inside"
echo "   kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  set -- $configs
  for _ in $(seq $(( (r - 1) % 3 ))); do set -- "${@:2}" "$1"; done
  for c in "$@"; do
    start_config "$c"
    measure "$c"
    stop_agent
    printf '  round %d %-9s getppid %6.0f ns  rw %6.0f ns  %8.0f req/s  observe %6.1f ns/request\n' "$r" "$c" \
      "$(jq .getppid.median_ns "$work/$c.cost.$r")" "$(jq .rw.median_ns "$work/$c.cost.$r")" \
      "$(tail -n 1 "$work/$c.path" | cut -d' ' -f1)" "$(tail -n 1 "$work/$c.path" | cut -d' ' -f3)"
  done
done

# JSON: per config, per op the median of the rounds' medians and their spread; the request path.
result=$(jq -n --arg k "$(uname -r)" --argjson rounds "$rounds" --argjson calls "$calls" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{kernel: $k, rounds: $rounds, calls: $calls, load_at_end: $load, configs: {}}')
for c in $configs; do
  ops=$(jq -s '. as $all | reduce (.[0] | keys[]) as $op ({}; .[$op] = ([$all[][$op].median_ns] | sort
    | {median_ns: .[(length / 2 | floor)], min_ns: .[0], max_ns: .[-1]}))' "$work/$c".cost.*)
  path=$(awk '{ print $1, $2, $3, $4, $5 }' "$work/$c.path" | jq -Rs 'split("\n") | map(select(length > 0) | split(" ") | map(tonumber))
    | sort_by(.[2]) | {rounds: length, req_per_s: (map(.[0]) | sort | .[(length / 2 | floor)]),
      observe_ns_per_request: .[(length / 2 | floor)][2], observe_ns_per_request_min: .[0][2],
      observe_ns_per_request_max: .[-1][2], observe_runs_per_request: .[(length / 2 | floor)][3],
      all_tg_ns_per_request: (map(.[4]) | sort | .[(length / 2 | floor)])}')
  hooks=$( [ -f "$work/$c.hooks" ] && cat "$work/$c.hooks" || echo null)
  result=$(jq --arg c "$c" --argjson ops "$ops" --argjson path "$path" --argjson hooks "$hooks" \
    '.configs[$c] = {syscalls: $ops, request_path: $path, hooks: $hooks}' <<<"$result")
done
result=$(jq '.ratios = (.configs.none.syscalls as $n | {per_call: (.configs.per_call.syscalls
  | with_entries(.value = (.value.median_ns / $n[.key].median_ns))), sys_exit: (.configs.sys_exit.syscalls
  | with_entries(.value = (.value.median_ns / $n[.key].median_ns)))})' <<<"$result")
echo "$result" >"$json"

r() { jq -r "$1" <<<"$result"; }
echo
printf '%-28s %22s %28s %28s\n' "host-wide, outside the cgroup" "none" "per-call hooks (new)" "sys_exit hook (old)"
for op in getppid rw socket mmap mprotect; do
  row=()
  for c in $configs; do
    row+=("$(r "(.configs.$c.syscalls.$op | \"\(.median_ns | round) ns [\(.min_ns | round)-\(.max_ns | round)]\")")")
  done
  printf '%-28s %22s %20s x%5.2f %20s x%5.2f\n' "$op$( [ $op = rw ] && echo ' (pipe write+read)')" "${row[0]}" \
    "${row[1]}" "$(r ".ratios.per_call.$op")" "${row[2]}" "$(r ".ratios.sys_exit.$op")"
done
printf '%-28s %22s %28s %28s\n' "request path (wrk inside)" \
  "$(r '.configs.none.request_path.req_per_s | round') req/s" \
  "$(r '.configs.per_call.request_path.req_per_s | round') req/s" "$(r '.configs.sys_exit.request_path.req_per_s | round') req/s"
printf '%-28s %22s %28s %28s\n' "  observe BPF ns/request" "-" \
  "$(r '.configs.per_call.request_path | "\(.observe_ns_per_request) (\(.observe_runs_per_request) runs)"')" \
  "$(r '.configs.sys_exit.request_path | "\(.observe_ns_per_request) (\(.observe_runs_per_request) runs)"')"
printf '%-28s %22s %28s %28s\n' "  all tunnelguard BPF ns/req" "-" \
  "$(r '.configs.per_call.request_path.all_tg_ns_per_request')" "$(r '.configs.sys_exit.request_path.all_tg_ns_per_request')"
echo "   JSON: $json"
# The smoke run's checks (ctest bench.observe_cost_smoke): every figure there, and the two
# designs told apart by what ran: the old one runs the observe programs on nginx's every
# syscall exit, the new one only on the watched calls. Never how fast anything was.
if [ "$smoke" = 1 ]; then
  jq -e '[.configs[].syscalls[][]] | all(type == "number" and . > 0)' <<<"$result" >/dev/null ||
    { echo "observe_cost: a syscall figure is missing" >&2; exit 1; }
  jq -e '.configs.sys_exit.request_path.observe_runs_per_request > 1 and
    .configs.per_call.request_path.observe_runs_per_request < .configs.sys_exit.request_path.observe_runs_per_request' \
    <<<"$result" >/dev/null || { echo "observe_cost: the observe programs' runs per request do not tell the hooks apart" >&2; exit 1; }
  echo "   smoke: every figure produced; observe runs/request: per-call < 1 < sys_exit"
fi
