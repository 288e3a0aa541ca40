#!/bin/sh
# Guest-side check of several tunnels under one agent with real BPF-LSM:
# `tunnelguard run --cgroup A --cgroup B` enforces, canaries and measures each on its own;
# /metrics tells them apart by the unit label, tunnelctl lists both, and a mode switch for one
# tunnel (tunnelctl mode --unit A) leaves the other enforced.
# ctest: vm.tunnels.<kernel>; by hand:
#   B=$PWD/build; tests/vm/run-in-vm.sh --kernel 6.12 --file $B/tests/tools/tg-delay-server \
#     --file $B/tests/tools/tg-http-client --file $B/agent/tunnelguard \
#     --file $B/tunnelctl/tunnelctl -- $PWD/tests/vm/tunnels-check.sh $B
B=${1:?usage: tunnels-check.sh BUILD_DIR}
set -e
A=/sys/fs/cgroup/tunnel-a
Z=/sys/fs/cgroup/tunnel-b
fail() { echo "TUNNELS-CHECK FAIL: $*"; cat /tmp/agent.log; exit 1; }
ctl() { "$B/tunnelctl/tunnelctl" --socket /run/tg.sock "$@"; }
metric() { wget -q -O - http://127.0.0.1:9612/metrics | grep -F "$1" | grep -v '^#' || true; }
value() { metric "$1" | awk '{print $2}'; }
# `tunnelctl status` from inside cgroup $1: its AF_UNIX socket is what the policy refuses.
unix_from() { sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$1" "$B/tunnelctl/tunnelctl" \
  --socket /run/tg.sock status >/dev/null 2>&1; }

mkdir -p "$A" "$Z" /run
"$B/tests/tools/tg-delay-server" --port 8080 --mix 1ms >/tmp/server.log 2>&1 &
"$B/agent/tunnelguard" run --cgroup "$A" --cgroup "$Z" --upstream web=127.0.0.1:8080 \
  --metrics-listen 127.0.0.1:9612 --grpc-socket /run/tg.sock --canary-interval 2 \
  >/tmp/agent.log 2>&1 &
agent=$!
for _ in $(seq 200); do
  [ "$(ctl status 2>/dev/null | grep -c 'enforced with lsm_cgroup')" = 4 ] && break
  sleep 0.1
done
sleep 1  # the first canaries run right after attach
ctl status | tee /tmp/status.txt
[ "$(grep -c 'enforced with lsm_cgroup' /tmp/status.txt)" = 4 ] || fail "not both tunnels enforced"
for cg in "$A" "$Z"; do
  grep -q "target   $cg: cgroup /${cg##*/}" /tmp/status.txt || fail "status does not list $cg"
  for p in address_families wx_memory; do
    [ "$(value "tunnelguard_policy_verified{unit=\"$cg\",policy=\"$p\"}")" = 1 ] ||
      fail "canary did not verify $p on $cg"
  done
done

# Each tunnel's own traffic and denials, counted apart.
"$B/tests/tools/tg-http-client" --cgroup "$A" --port 8080 --requests 30 --connections 2 >/dev/null
"$B/tests/tools/tg-http-client" --cgroup "$Z" --port 8080 --requests 50 --connections 2 >/dev/null
unix_from "$A" && fail "AF_UNIX allowed in $A"
for i in 1 2; do unix_from "$Z" && fail "AF_UNIX allowed in $Z"; done
for cg in "$A:30:1" "$Z:50:2"; do
  path=${cg%%:*} rest=${cg#*:}
  [ "$(value "tunnelguard_upstream_requests_total{unit=\"$path\",")" = "${rest%%:*}" ] ||
    fail "requests of $path: $(metric tunnelguard_upstream_requests_total)"
  [ "$(value "tunnelguard_policy_decisions_total{unit=\"$path\",policy=\"address_families\",action=\"deny\",detail=\"unix\"}")" = "${rest#*:}" ] ||
    fail "denials of $path: $(metric 'action="deny",detail="unix"')"
done

# One tunnel to audit: the other stays enforced.
ctl mode --unit "$A" address_families audit || fail "SetMode --unit $A"
unix_from "$A" || fail "audit mode on $A still denies"
unix_from "$Z" && fail "$Z lost enforcement when $A switched to audit"
ctl stats | tee /tmp/stats.txt
grep -q "== tunnel $A ==" /tmp/stats.txt && grep -q "== tunnel $Z ==" /tmp/stats.txt ||
  fail "stats does not name both tunnels"
kill "$agent"
wait "$agent" || true
echo "TUNNELS-CHECK OK $(uname -r)"
