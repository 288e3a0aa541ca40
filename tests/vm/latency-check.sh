#!/bin/sh
# Guest-side load-and-count check of the latency programs on a stock Debian kernel.
# ctest: `ctest -L vm -R latency` (tests/vm/CMakeLists.txt, vm.latency.<kernel>); by hand:
#   B=$PWD/build; tests/vm/run-in-vm.sh --kernel {6.1|6.12|newest} \
#     --file $B/tests/tools/tg-delay-server --file $B/tests/tools/tg-http-client \
#     --file $B/agent/tunnelguard -- $PWD/tests/vm/latency-check.sh $B
# Passed on 6.1.0-56, 6.12.118 and 7.3.4 (2026-11-26): all programs load and attach, 200
# requests over 4 connections counted exactly, a process outside the cgroup not counted,
# 2 refused connects counted.
B=${1:?usage: latency-check.sh BUILD_DIR}
set -e
mkdir -p /sys/fs/cgroup/tunnel
"$B/tests/tools/tg-delay-server" --port 8080 --mix 2ms >/tmp/server.log 2>&1 &
sleep 1
"$B/agent/tunnelguard" measure --cgroup /sys/fs/cgroup/tunnel \
  --upstream 'web=127.0.0.1:8080,web=[::1]:8080,closed=127.0.0.1:8081' \
  --interval 30 --duration 8 --json >/tmp/measure.json 2>/tmp/measure.log &
mp=$!
sleep 3
cat /tmp/measure.log
"$B/tests/tools/tg-http-client" --cgroup /sys/fs/cgroup/tunnel --port 8080 --requests 200 --connections 4
"$B/tests/tools/tg-http-client" --port 8080 --requests 50 >/dev/null  # outside: not counted
"$B/tests/tools/tg-http-client" --cgroup /sys/fs/cgroup/tunnel --port 8081 --requests 2  # refused
wait $mp
last=$(tail -n 1 /tmp/measure.json)
echo "$last"
echo "$last" | grep -q '"requests":200'
echo "$last" | grep -q '"connections":4'
echo "$last" | grep -q '"refused":2'
echo "LATENCY-CHECK OK $(uname -r)"
