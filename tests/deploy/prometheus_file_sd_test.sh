#!/usr/bin/env bash
# A real Prometheus loads deploy/prometheus/prometheus-file-sd.yml and its targets/ files:
# every host becomes one target with `instance` = the host's name (set in the target group, or
# derived from the address by the relabel rule). The targets themselves are unreachable here;
# only discovery and relabelling are checked, through /api/v1/targets.
source "$(dirname "$0")/lib.sh"
require_tool prometheus prometheus
require_tool curl curl
require_tool jq jq
cp -r "$REPO/deploy/prometheus" "$TMP/p"
cd "$TMP/p"

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  prometheus --config.file=prometheus-file-sd.yml --storage.tsdb.path="$TMP/data" \
    --web.listen-address="127.0.0.1:$port" >"$TMP/prom.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break 2
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  # A failed start (e.g. the port was taken) is retried: its exit status must not end the
  # script under set -e.
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
[ -n "$pid" ] || fail "prometheus did not start:"$'\n'"$(tail -5 "$TMP/prom.log")"

want=$'homelab 127.0.0.1:9612\nnas nas.lan:9612\npi pi:9612'
got=
for _ in $(seq 50); do
  got=$(curl -fs "http://127.0.0.1:$port/api/v1/targets" |
    jq -r '.data.activeTargets[] | select(.labels.job=="tunnelguard") |
           "\(.labels.instance) \(.labels.__address__ // .discoveredLabels.__address__)"' | sort)
  [ "$got" = "$want" ] && break
  sleep 0.2
done
[ "$got" = "$want" ] || fail "file_sd targets: want"$'\n'"$want"$'\n'"got"$'\n'"$got"
ok "file_sd: 3 hosts, one instance each (homelab, nas, pi from the relabel rule)"
echo "prometheus file_sd: all checks passed"
