# Shell helpers of the benchmarks (bench/run.sh, bench/observe_cost.sh), sourced. The agent
# helpers use the caller's globals: tg, ctl (binaries), cgroup, upstreams (--upstream value),
# mport, sock, work; start_agent sets agent_pid.
# shellcheck shell=bash

# kill_tree PID: PID, then its descendants (found by parent id before the parent goes).
kill_tree() {
  local c kids
  kids=$(pgrep -P "$1" || true)
  kill "$1" 2>/dev/null || true
  for c in $kids; do kill_tree "$c"; done
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "null"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'; }
# "min max" of a column of numbers
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s %s\n", lo, hi }'; }
in_cgroup() { sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cgroup" "$@"; }

# The observe mechanism and bpftrace's tracepoints need tracefs; mounted for the run if absent.
mounted_tracefs=0
tracefs_ready() {
  [ -d /sys/kernel/tracing/events ] && return 0
  mount -t tracefs tracefs /sys/kernel/tracing && mounted_tracefs=1
}

# --- the agent ------------------------------------------------------------------------------
# start_agent [extra flags...]: `tunnelguard run` measuring $cgroup ($upstreams), by default with no
# policies (this host refuses BPF-LSM; `--policies-observe` first: both policies in audit mode
# through the observe mechanism, removed again when the agent stops); returns once it reports the target present (and the
# policies active).
start_agent() {
  local policy=(--families off --wx-memory off) want='"target_present": true'
  if [ "${1:-}" = --policies-observe ]; then
    # --detach-on-exit: policies stay pinned after an agent exits (by design); a benchmark's
    # next variant must start without them.
    shift; policy=(--mode audit --mechanism observe --detach-on-exit); want='"active": true'
  fi
  "$tg" run --cgroup "$cgroup" --upstream "$upstreams" "${policy[@]}" \
    --metrics-listen "127.0.0.1:$mport" --grpc-socket "$sock" "$@" >>"$work/agent.log" 2>&1 &
  agent_pid=$!
  for _ in $(seq 400); do
    if "$ctl" --socket "$sock" status --json 2>/dev/null | grep -q "$want"; then
      [ "${policy[0]}" = --mode ] || return 0
      "$ctl" --socket "$sock" status --json | jq -e '[.policies[].active] | length == 2 and all' >/dev/null && return 0
    fi
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
