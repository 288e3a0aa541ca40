#!/usr/bin/env bash
# The built-in demo: installs what it needs, builds tunnelguard, and runs its main job on a
# stand-in tunnel —
#   demo "tunnel": a keep-alive HTTP client in its own cgroup (like cloudflared's origin pool)
#   demo "Traefik": nginx on a free loopback port, proxying to a small backend service
#                   (tg-delay-server: most answers in ~2 ms, some in 20 ms, a few in 120 ms)
#   demo "tunnel": tg-http-client in its own cgroup, 8 keep-alive connections, 50 req/s
#   tunnelguard: `tunnelguard measure` attached to the demo tunnel's cgroup, printing
#                per-upstream requests, p50/p90/p99/max, connections, failures, bytes
# Runs until Ctrl-C (or --duration N seconds), then removes everything it made: processes,
# the cgroup, bpffs pins and temp files — also when interrupted.
# Usage: sudo ./tools/demo.sh [--duration N] [--interval S]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=0
interval=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --interval) interval=${2:?--interval needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --duration N or --interval S)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "demo: tunnelguard loads BPF programs and makes a cgroup: run as root (sudo $0)" >&2
  exit 1
fi

./tools/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)" | tail -n 1
tg=$root/build/agent/tunnelguard

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
tools_dir=$root/build/tests/tools
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
metrics_port=$(free_port)
socket=$work/tunnelguard.sock
# --detach-on-exit: the demo leaves no pinned enforcement behind (a real deployment keeps it).
"$tg" run --cgroup "$cgroup" --upstream "web=127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$metrics_port" --grpc-socket "$socket" --detach-on-exit \
  >"$work/agent.log" 2>&1 &
agent_pid=$!
pids=("$agent_pid" "${pids[@]}")
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
tctl() { "$root/build/tunnelctl/tunnelctl" --socket "$socket" "$@"; }
tctl status >/dev/null || { cat "$work/agent.log"; exit 1; }
echo "== tunnelguard run (its log) =="
sed 's/^<[0-9]>//' "$work/agent.log"
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
