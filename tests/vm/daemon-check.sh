#!/bin/sh
# Guest-side check of the daemon with real BPF-LSM (issues 6 and 7): `tunnelguard run`
# attaches enforcement and latency to a cgroup, proves it with the canary, and every face
# agrees — /metrics (busybox wget), tunnelctl status/stats/events/mode over the gRPC socket.
# ctest: vm.daemon.<kernel>; by hand:
#   B=$PWD/build; tests/vm/run-in-vm.sh --kernel 6.12 --file $B/tests/tools/tg-delay-server \
#     --file $B/tests/tools/tg-http-client --file $B/agent/tunnelguard \
#     --file $B/tunnelctl/tunnelctl -- $PWD/tests/vm/daemon-check.sh $B
B=${1:?usage: daemon-check.sh BUILD_DIR}
set -e
fail() { echo "DAEMON-CHECK FAIL: $*"; cat /tmp/agent.log; exit 1; }
ctl() { "$B/tunnelctl/tunnelctl" --socket /run/tg.sock "$@"; }
metric() { wget -q -O - http://127.0.0.1:9612/metrics | grep -F "$1" | grep -v '^#' || true; }
# A process in the tunnel's cgroup runs "$@": tunnelctl opens an AF_UNIX socket, which the
# address_families policy (inet,inet6) must refuse there and only there.
in_tunnel() { sh -c 'echo $$ >/sys/fs/cgroup/tunnel/cgroup.procs; exec "$@"' sh "$@"; }

mkdir -p /sys/fs/cgroup/tunnel /run
"$B/tests/tools/tg-delay-server" --port 8080 --mix 1ms >/tmp/server.log 2>&1 &
"$B/agent/tunnelguard" run --cgroup /sys/fs/cgroup/tunnel --upstream web=127.0.0.1:8080 \
  --metrics-listen 127.0.0.1:9612 --grpc-socket /run/tg.sock --canary-interval 2 \
  >/tmp/agent.log 2>&1 &
agent=$!
for _ in $(seq 100); do [ -S /run/tg.sock ] && ctl status >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1  # the first canary runs right after attach
ctl status | tee /tmp/status.txt
grep -q 'address_families enforce enforced with lsm_cgroup' /tmp/status.txt || fail "not enforced"
grep -q 'wx_memory        enforce enforced with lsm_cgroup' /tmp/status.txt || fail "wx not enforced"
[ "$(metric 'tunnelguard_policy_verified{policy="address_families"}' | awk '{print $2}')" = 1 ] ||
  fail "canary did not verify address_families"
[ "$(metric 'tunnelguard_policy_verified{policy="wx_memory"}' | awk '{print $2}')" = 1 ] ||
  fail "canary did not verify wx_memory"

# Latency through the same agent.
"$B/tests/tools/tg-http-client" --cgroup /sys/fs/cgroup/tunnel --port 8080 --requests 50 \
  --connections 2 >/dev/null
[ "$(metric 'tunnelguard_upstream_requests_total{' | awk '{print $2}')" = 50 ] ||
  fail "requests_total is not 50: $(metric tunnelguard_upstream_requests_total)"

# Three denied attempts in the cgroup, watched by a WatchEvents stream.
ctl events --follow >/tmp/events.txt 2>&1 &
watcher=$!
sleep 0.5
for i in 1 2 3; do
  if in_tunnel "$B/tunnelctl/tunnelctl" --socket /run/tg.sock status >/tmp/denied.txt 2>&1; then
    fail "AF_UNIX socket allowed inside the cgroup"
  fi
done
sleep 1
kill $watcher 2>/dev/null || true
cat /tmp/events.txt
deny=$(metric 'tunnelguard_policy_decisions_total{policy="address_families",action="deny",detail="unix"}' | awk '{print $2}')
[ "$deny" = 3 ] || fail "expected 3 counted denials of unix, got '$deny'"
[ "$(grep -c 'address_families deny' /tmp/events.txt)" = 3 ] || fail "expected 3 events"
grep -q '(tunnelctl)' /tmp/events.txt || fail "events do not name the process"

# SetMode (root): audit lets the same attempt through and counts it as would_deny.
ctl mode address_families audit || fail "SetMode to audit"
in_tunnel "$B/tunnelctl/tunnelctl" --socket /run/tg.sock status >/dev/null ||
  fail "audit mode still denies"
would=$(metric 'tunnelguard_policy_decisions_total{policy="address_families",action="would_deny",detail="unix"}' | awk '{print $2}')
# Allowed now, tunnelctl opens its two unix sockets (its own reachability check, then gRPC's
# channel), each one counted.
[ "$would" = 2 ] || fail "expected 2 would_deny, got '$would'"
ctl mode address_families enforce >/dev/null || fail "SetMode back to enforce"
ctl stats | tee /tmp/stats.txt
grep -q 'address_families  enforce' /tmp/stats.txt || fail "stats does not show the policy"

# A clean stop leaves enforcement pinned and in force.
kill "$agent"
wait "$agent" || true
if in_tunnel "$B/tunnelctl/tunnelctl" --socket /run/tg.sock status >/dev/null 2>&1; then
  fail "enforcement lapsed when the agent stopped"
fi
echo "DAEMON-CHECK OK $(uname -r)"
