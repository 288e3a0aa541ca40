#!/bin/sh
# Guest side of `tools/demo.sh --vm` (busybox sh, in Debian's stock kernel under QEMU, booted
# with bpf in lsm=): the demo's three jobs with real BPF-LSM enforcement —
#   the fail-closed gate: `tunnelguard attach` (what the tunnel's drop-in runs as ExecStartPre=)
#     pins both policies and proves them with a canary; the tunnel starts only after exit 0;
#   measure: the agent, a backend standing in for Traefik, a keep-alive client as the tunnel;
#   enforce: the stand-in tunnel tries socket(AF_UNIX) and a W+X mmap three times each, and
#     each is DENIED (EAFNOSUPPORT, EPERM), counted, and reported as an event with pid/comm;
#   export: tunnelctl status/stats/events --json and the /metrics lines.
# Usage (run-in-vm.sh copies the binaries in at their build paths): demo-vm-guest.sh BUILD_DIR
B=${1:?usage: demo-vm-guest.sh BUILD_DIR}
set -e
cg=/sys/fs/cgroup/tunnelguard-demo
tg=$B/agent/tunnelguard
ctl() { "$B/tunnelctl/tunnelctl" --socket /run/tg.sock "$@"; }
metrics() { wget -q -O - http://127.0.0.1:9612/metrics; }
mkdir -p "$cg" /run

echo "== DEMO BEGIN =="
echo "== tunnelguard features (Debian's stock $(uname -r) in QEMU) =="
"$tg" features
echo
echo "== the fail-closed gate: tunnelguard attach --cgroup $cg (the tunnel's ExecStartPre=) =="
"$tg" attach --cgroup "$cg" 2>&1 | sed 's/^/  /'
echo "gate passed (exit 0): the tunnel may start, and its first instruction runs enforced"
echo

"$B/tests/tools/tg-delay-server" --port 8080 --mix 2ms:70,20ms:25,120ms:5 >/tmp/server.log 2>&1 &
"$tg" run --cgroup "$cg" --upstream web=127.0.0.1:8080 --metrics-listen 127.0.0.1:9612 \
  --grpc-socket /run/tg.sock >/tmp/agent.log 2>&1 &
for _ in $(seq 100); do [ -S /run/tg.sock ] && ctl status >/dev/null 2>&1 && break; sleep 0.1; done
echo "== tunnelguard run (its log) =="
cat /tmp/agent.log
echo
echo "== tunnelctl status =="
ctl status
echo

echo "demo: stand-in tunnel (keep-alive HTTP client, 4 connections, 200 requests) in $cg"
"$B/tests/tools/tg-http-client" --cgroup "$cg" --port 8080 --requests 200 --connections 4 \
  --rate 100 >/dev/null
ctl events --follow --json >/tmp/events.json 2>&1 &
watcher=$!
sleep 2  # the stream is up (TCG runs the guest 3-4x slower than native)
echo "demo: the stand-in tunnel tries socket(AF_UNIX) and mmap(PROT_WRITE|PROT_EXEC), 3 times each:"
"$B/tests/tools/tg-flood" --cgroup "$cg" --op both --count 3 | sed 's/^/  tg-flood: /'
for _ in $(seq 100); do [ "$(grep -c . /tmp/events.json)" -ge 6 ] && break; sleep 0.1; done
kill $watcher 2>/dev/null || true
echo
echo "== tunnelctl events --json (pid and comm of each attempt) =="
cat /tmp/events.json
echo
echo "== tunnelctl stats =="
ctl stats
echo
echo "== /metrics (decisions, enforcement, request latency) =="
# The deny series the attempts moved (every series a policy can produce starts at 0).
metrics | grep -E '^tunnelguard_policy_(decisions_total\{[^}]*action="deny"|enforced|verified)|^tunnelguard_upstream_requests_total' |
  grep -Ev '^tunnelguard_policy_decisions_total\{.*\} 0$'
echo "== DEMO END =="
