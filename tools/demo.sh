#!/usr/bin/env bash
# The built-in demo: installs what it needs, builds only what it runs, and shows tunnelguard's
# three jobs on a stand-in tunnel: measure, enforce, export —
#   demo "tunnel": a keep-alive HTTP client in its own cgroup (like cloudflared's origin pool)
#   demo "Traefik": nginx on a free loopback port, proxying to a small backend service
#                   (tg-delay-server: most answers in ~2 ms, some in 20 ms, a few in 120 ms)
#   demo "tunnel": tg-http-client in its own cgroup, 8 keep-alive connections, 50 req/s
#   tunnelguard: `tunnelguard run` on the demo tunnel's cgroup: latency per upstream, both
#                policies, /metrics and the tunnelctl API
#   enforcement: the fail-closed gate (`tunnelguard attach`, the tunnel's ExecStartPre=) is
#                tried first; then the stand-in tunnel tries socket(AF_UNIX) and a W+X mmap
#                three times each (tg-flood). On a kernel that refuses BPF-LSM the gate says so
#                and the policies run in audit mode (observe): counted as would_deny, with
#                events; with --vm, Debian's stock kernel in QEMU enforces them for real.
# Runs until Ctrl-C (or --duration N seconds), then removes everything it made: processes,
# the cgroup, bpffs pins and temp files — also when interrupted.
# Usage: sudo ./tools/demo.sh [--duration N] [--interval S] [--vm [--kernel 6.1|6.12|newest]]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=0
interval=2
vm=0
kernel=6.12
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --interval) interval=${2:?--interval needs seconds}; shift 2 ;;
    --vm) vm=1; shift ;;
    --kernel) kernel=${2:?--kernel needs 6.1, 6.12 or newest}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --duration N, --interval S, --vm)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "demo: tunnelguard loads BPF programs and makes a cgroup: run as root (sudo $0)" >&2
  exit 1
fi

t0=$(date +%s.%N)
since() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}'; }
if [ $vm = 1 ]; then ./tools/install-deps.sh --demo-vm; else ./tools/install-deps.sh --demo; fi
echo "demo: packages ready ($(since) s)"
cmake -S . -B build -G Ninja >/dev/null
# Only what the demo runs (the tests are built by tools/test.sh).
cmake --build build -j"$(nproc)" --target tunnelguard tunnelctl tg-delay-server tg-http-client \
  tg-flood | tail -n 1
echo "demo: built ($(since) s)"
tg=$root/build/agent/tunnelguard
tools_dir=$root/build/tests/tools

if [ $vm = 1 ]; then
  # Real enforcement: Debian's stock kernel (bpf in its LSM list) booted in QEMU, the demo's
  # guest half (tools/demo-vm-guest.sh) run there; its output is shown when the guest is done.
  echo "demo: booting Debian's $kernel kernel in QEMU (TCG; about a minute, first run fetches the kernel)"
  workdir=$root/build/demo-vm
  rc=0
  tests/vm/run-in-vm.sh --kernel "$kernel" --timeout 240 --workdir "$workdir" \
    --file "$tg" --file "$root/build/tunnelctl/tunnelctl" --file "$tools_dir/tg-delay-server" \
    --file "$tools_dir/tg-http-client" --file "$tools_dir/tg-flood" \
    -- "$root/tools/demo-vm-guest.sh" "$root/build" >"$workdir.log" 2>&1 || rc=$?
  sed -n '/^== DEMO BEGIN ==/,/^== DEMO END ==/p' "$workdir/serial.log" | tr -d '\r' | sed '1d;$d'
  [ $rc = 0 ] || { echo "demo: the VM run failed (rc $rc): $workdir.log, $workdir/serial.log" >&2; exit 1; }
  echo "demo: done in $(since) s (QEMU run log: $workdir/serial.log)"
  exit 0
fi

# --- everything we make is recorded here and removed by cleanup() ---------------------------
work=$(mktemp -d /tmp/tunnelguard-demo.XXXXXX)
chmod 755 "$work"  # nginx's workers (www-data) read the demo site from here
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cg2" ] || { echo "demo: no cgroup2 mount in /proc/mounts" >&2; exit 1; }
cgroup="$cg2/tunnelguard-demo-$$"
pids=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done  # the agent first
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -d "$cgroup" ]; then
    # Anything still in the demo cgroup (children of the client) goes too.
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$cgroup/cgroup.procs"
    for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cgroup" 2>/dev/null && break; sleep 0.2; done
  fi
  rm -rf "$work"
  echo "demo: cleaned up (processes, cgroup $cgroup, $work)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

# --- the backend service behind "Traefik" --------------------------------------------------
backend_port=$(free_port)
"$tools_dir/tg-delay-server" --port "$backend_port" --mix 2ms:70,20ms:25,120ms:5 \
  >"$work/backend.log" 2>&1 &
pids+=($!)

# --- demo "Traefik": nginx on loopback -------------------------------------------------------
port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 16; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
echo "demo: nginx (standing in for Traefik's 'web' entry point) on 127.0.0.1:$port"

# --- tunnelguard: the agent, attached to the tunnel's cgroup before the tunnel starts ---------
mkdir "$cgroup"
echo "== tunnelguard features =="
"$tg" features
echo
# The fail-closed gate, as the tunnel's drop-in runs it (ExecStartPre=): exit 0 only once both
# policies are pinned and a canary proved them. Where the kernel refuses BPF-LSM it fails, and
# under systemd the tunnel would not start; the demo goes on in audit mode instead.
echo "== the fail-closed gate: tunnelguard attach --cgroup $cgroup (the tunnel's ExecStartPre=) =="
mode=enforce
gate=0
"$tg" attach --cgroup "$cgroup" >"$work/attach.log" 2>&1 || gate=$?
sed 's/^/  /' "$work/attach.log"
if [ $gate = 0 ]; then
  echo "gate passed: the tunnel may start, enforced from its first instruction"
else
  echo "gate refused (exit $gate): under systemd the tunnel would NOT start here (fail-closed)."
  echo "demo: continuing in audit mode (observe: counts would_deny, denies nothing; the watched"
  echo "      calls pay a little, host-wide, while it runs). Real enforcement: ./tools/demo.sh --vm"
  mode=audit
fi
echo
metrics_port=$(free_port)
socket=$work/tunnelguard.sock
# --detach-on-exit: the demo leaves no pinned enforcement behind (a real deployment keeps it).
"$tg" run --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" --mode "$mode" \
  --metrics-listen "127.0.0.1:$metrics_port" --grpc-socket "$socket" --detach-on-exit \
  >"$work/agent.log" 2>&1 &
agent_pid=$!
pids=("$agent_pid" "${pids[@]}")
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
tctl() { "$root/build/tunnelctl/tunnelctl" --socket "$socket" "$@"; }
tctl status >/dev/null || { cat "$work/agent.log"; exit 1; }
# The policies attach in the background (observe first measures its own cost): wait for them.
for _ in $(seq 200); do
  tctl status | grep -Eq '^policy +wx_memory .*(enforced|active) with' && break
  sleep 0.1
done
echo "== tunnelguard run (its log) =="
cat "$work/agent.log"
echo
echo "== tunnelctl status =="
tctl status
echo
echo "metrics: http://127.0.0.1:$metrics_port/metrics    API: tunnelctl --socket $socket stats"
echo

# --- demo "tunnel": a keep-alive client in its own cgroup ------------------------------------
# Like cloudflared's origin pool: a few keep-alive connections, a steady request rate. The
# client joins the cgroup itself before it opens a socket.
"$tools_dir/tg-http-client" --cgroup "$cgroup" --port "$port" --connections 8 --rate 50 \
  --duration "$([ "$duration" -gt 0 ] && echo $((duration + 5)) || echo 31536000)" \
  >"$work/client.json" 2>&1 &
pids+=($!)
echo "demo: stand-in tunnel (keep-alive HTTP client, 8 connections, 50 req/s) in cgroup $cgroup"
first_request() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^tunnelguard_upstream_requests_total\{/ && $2 > 0 {found = 1} END {exit !found}'
}
for _ in $(seq 100); do first_request && break; sleep 0.1; done
echo "demo: first request counted in /metrics $(since) s after the start (packages, build, start-up)"

# --- forbidden attempts from inside the tunnel's cgroup --------------------------------------
tctl events --follow --json >"$work/events.json" 2>&1 &
watcher=$!
pids+=("$watcher")
sleep 0.5
echo "demo: the stand-in tunnel tries socket(AF_UNIX) and mmap(PROT_WRITE|PROT_EXEC), 3 times each:"
"$tools_dir/tg-flood" --cgroup "$cgroup" --op both --count 3 | sed 's/^/  tg-flood: /'
for _ in $(seq 30); do [ "$(grep -c . "$work/events.json")" -ge 6 ] && break; sleep 0.1; done
kill "$watcher" 2>/dev/null || true
echo "== tunnelctl events --json (pid and comm of each attempt) =="
cat "$work/events.json"
echo "== /metrics (the policies' decisions: the non-zero deny and would_deny series) =="
# Every series a policy can produce is exported from 0 (so the first denial is a rise); the
# demo shows the ones its attempts moved.
curl -s "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^tunnelguard_policy_(decisions_total\{[^}]*action="(deny|would_deny)"|enforced|info)' |
  grep -Ev '^tunnelguard_policy_decisions_total\{.*\} 0$'
echo
echo "== tunnelctl stats every ${interval}s$([ "$duration" -gt 0 ] && echo " for ${duration}s" || echo "; Ctrl-C to stop") =="
elapsed=0
while [ "$duration" -eq 0 ] || [ "$elapsed" -lt "$duration" ]; do
  sleep "$interval"
  elapsed=$((elapsed + interval))
  echo "-- ${elapsed}s"
  tctl stats
done
echo
echo "== tunnelctl stats --histogram =="
tctl stats --histogram | sed -n '/^entrypoint/,$p'
echo
echo "== /metrics (request latency of the 'web' entry point) =="
curl -s "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^tunnelguard_upstream_request(s_total|_duration_seconds_(count|bucket\{[^}]*le="0.005"))'
