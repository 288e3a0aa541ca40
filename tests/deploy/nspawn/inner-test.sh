#!/bin/bash
# Runs INSIDE the booted container (tg-e2e.service), against real systemd, with the shipped
# units installed unchanged. Appends "ok:"/"FAIL:" lines to /results/log and ends with
# "RESULT <nonce> PASS|FAIL" (the nonce comes from the host, so stray output cannot fake it).
# Then powers the container off.
set -u
NONCE=$(cat /results/nonce)
fails=0
log() { echo "$*" >>/results/log; }
check() {
  local name=$1; shift
  if "$@" >/dev/null 2>&1; then log "ok: $name"; else log "FAIL: $name"; fails=$((fails + 1)); fi
}
prop() { systemctl show -p "$2" --value "$1"; }
journal_has() {  # UNIT PRIORITY PATTERN
  journalctl --no-pager -u "$1" -p "$2" -o cat | grep -q -- "$3"
}
export -f prop journal_has  # used by the `bash -c` checks below
finish() {
  log "--- journal of the two units ---"
  journalctl --no-pager -u tunnelguard.service -u cloudflared-tunnel.service -o short-monotonic >>/results/log 2>&1
  if [ $fails -eq 0 ]; then log "RESULT $NONCE PASS"; else log "RESULT $NONCE FAIL $fails"; fi
  systemctl --no-block poweroff
  exit 0
}
trap finish EXIT

# 1. The agent under its shipped sandbox: READY=1 arrives, /metrics answers, STATUS= says what
#    it does, WATCHDOG=1 pings arrive.
check "agent starts (Type=notify READY=1 under the shipped sandbox)" systemctl start tunnelguard.service
check "agent is active" systemctl is-active tunnelguard.service
check "agent serves /metrics on 127.0.0.1:9612" \
  bash -c 'curl -fsS http://127.0.0.1:9612/metrics | grep -q "^tunnelguard_build_info"'
check "agent STATUS= names the tunnel it waits for" \
  bash -c '[[ "$(systemctl show -p StatusText --value tunnelguard.service)" == *cloudflared-tunnel.service* ]]'
# WATCHDOG=1: the timestamp systemd keeps for the last ping moves on (WatchdogSec=30s, the
# agent pings at least every 15 s; today every 500 ms).
w1=$(prop tunnelguard.service WatchdogTimestampMonotonic)
sleep 2
check "agent sends WATCHDOG=1" bash -c '[ "$(prop tunnelguard.service WatchdogTimestampMonotonic)" -gt "'"$w1"'" ]'
check "agent runs with the bounded capability set" \
  bash -c 'grep -q "^CapBnd:\s*000000c000201000$" /proc/$(systemctl show -p MainPID --value tunnelguard.service)/status'
# Least privilege inside the unit: the children that parse HTTP and gRPC (tunnelguard __face
# metrics, __face api) have dropped every capability and run under their own seccomp filter on
# top of the unit's; the API answers through its face.
face_pid() {
  local main d
  main=$(prop tunnelguard.service MainPID)
  for d in /proc/[0-9]*; do
    [ "$(awk '/^PPid/ {print $2}' "$d/status" 2>/dev/null)" = "$main" ] || continue
    tr '\0' ' ' <"$d/cmdline" | grep -q "__face $1 " && { echo "${d#/proc/}"; return; }
  done
}
export -f face_pid
check "API answers through its face" tunnelctl status
log "info: CapEff agent $(awk '/^CapEff/ {print $2}' /proc/"$(prop tunnelguard.service MainPID)"/status), metrics face $(awk '/^CapEff/ {print $2}' /proc/"$(face_pid metrics)"/status), API face $(awk '/^CapEff/ {print $2}' /proc/"$(face_pid api)"/status)"
for role in metrics api; do
  check "$role face: no capability, no_new_privs, seccomp" \
    bash -c 'st=/proc/$(face_pid '"$role"')/status; grep -q "^CapEff:\s*0000000000000000$" $st &&
             grep -q "^CapPrm:\s*0000000000000000$" $st && grep -q "^NoNewPrivs:\s*1$" $st &&
             grep -q "^Seccomp:\s*2$" $st'
done

# The sandbox as systemd applied it, seen from the agent's own mount namespace: pins can be
# written in bpffs; the cgroup tree and /usr are read-only.
mnt() { nsenter --target "$(prop tunnelguard.service MainPID)" --mount -- findmnt -no OPTIONS --target "$1"; }
export -f mnt
log "info: agent's /sys/fs/bpf: $(nsenter --target "$(prop tunnelguard.service MainPID)" --mount -- findmnt -no FSTYPE,OPTIONS --target /sys/fs/bpf)"
check "sandbox: /sys/fs/bpf writable" bash -c '[[ ",$(mnt /sys/fs/bpf)," == *,rw,* ]]'
check "sandbox: /sys/fs/cgroup read-only" bash -c '[[ ",$(mnt /sys/fs/cgroup)," == *,ro,* ]]'
check "sandbox: /usr read-only" bash -c '[[ ",$(mnt /usr)," == *,ro,* ]]'

# 2. Fail closed: this kernel cannot enforce (or this build has no `attach` yet), so the
#    (When run on a kernel where `attach` succeeds, this block must become the positive check.)
#    tunnel's ExecStartPre= gate fails and cloudflared never runs.
check "fail-closed: starting the tunnel fails" bash -c '! systemctl start cloudflared-tunnel.service'
check "fail-closed: the gate (ExecStartPre) is what failed" \
  bash -c '[ "$(systemctl show -p Result --value cloudflared-tunnel.service)" = exit-code ] &&
           [ "$(systemctl show -p ExecMainStartTimestampMonotonic --value cloudflared-tunnel.service)" = 0 ]'
check "fail-closed: cloudflared never ran" bash -c '! journal_has cloudflared-tunnel.service info "stand-in cloudflared started"'
systemctl stop cloudflared-tunnel.service
systemctl reset-failed cloudflared-tunnel.service

# 3. The documented opt-out: installed under the drop-in's own name in /etc, it replaces the
#    fail-closed drop-in; the tunnel starts with a critical journal line.
install -D -m 0644 /deploy/tunnelguard-optional.conf \
  /etc/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf
systemctl daemon-reload
systemctl stop tunnelguard.service
# Starting only the tunnel pulls in the agent (Wants=) and orders it first (After=).
check "opt-out: the tunnel starts" systemctl start cloudflared-tunnel.service
check "opt-out: cloudflared runs" bash -c 'sleep 1; journal_has cloudflared-tunnel.service info "stand-in cloudflared started"'
check "opt-out: a critical journal line says it runs unguarded" \
  journal_has cloudflared-tunnel.service crit "WITHOUT enforcement"
check "ordering: starting the tunnel started the agent" systemctl is-active tunnelguard.service
check "ordering: the agent was ready before the tunnel's gate ran" \
  bash -c '[ "$(prop tunnelguard.service ActiveEnterTimestampMonotonic)" -le "$(prop cloudflared-tunnel.service InactiveExitTimestampMonotonic)" ]'

# 4. An agent restart (an upgrade) leaves the tunnel running: Wants=, not Requires=.
pid=$(prop cloudflared-tunnel.service MainPID)
check "agent restarts" systemctl restart tunnelguard.service
check "agent restart leaves the tunnel alone" \
  bash -c '[ "$(prop cloudflared-tunnel.service MainPID)" = "'"$pid"'" ] && systemctl is-active cloudflared-tunnel.service'
check "agent stops cleanly (STOPPING=1, exit 0)" \
  bash -c 'systemctl stop tunnelguard.service && [ "$(prop tunnelguard.service Result)" = success ]'
