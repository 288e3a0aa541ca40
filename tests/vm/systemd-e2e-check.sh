#!/bin/bash
# Guest side of vm.systemd_e2e.<kernel> (issue 8): end to end under real systemd, PID 1 of a
# stock Debian kernel in QEMU, where BPF-LSM enforcement is real. Runs from tg-vm-test.service
# (run-in-vm.sh --rootfs) once the Debian 12 (systemd 252) or Debian 13 (systemd 257) root
# (tests/deploy/build-rootfs.sh: systemd, dbus, curl, nginx) has booted.
#
# Installs the built binaries and the shipped units unchanged, at the paths the nspawn test
# (tests/deploy/systemd_nspawn_test.sh) binds them to, with tg-tunnel-standin as
# /usr/bin/cloudflared, and the project's real user's sandbox added to the tunnel unit (a drop-in:
# User=cloudflared, PrivateMounts=, and PrivatePIDs= where systemd has it, >= 257); nginx
# (enabled by its package) stands in for Traefik on :80. Then checks:
# the agent is READY before the tunnel starts; the fail-closed ExecStartPre= gate passes with a
# verified canary; the stand-in's first act is denied (socket(AF_UNIX) by systemd's seccomp and
# by the LSM, socketpair(AF_UNIX) by the LSM alone: the proof that BPF-LSM was in force before
# the first instruction); latency reaches /metrics; tunnelctl works for root and for a member
# of group tunnelguard; a kill -9 of the tunnel (Restart=on-failure) and a restart of the agent
# keep enforcement, with a probe in the tunnel's cgroup denied throughout the agent restart;
# metrics continue; the tunnel's stdout reaches the journal (systemd's set-up, in PID 1's fork up
# to 252 and in systemd-executor from 255, is exempt) and no denial names anything but the
# tunnel. Prints a timeline of monotonic timestamps (the clock of systemd's
# *TimestampMonotonic properties and of journalctl -o short-monotonic).
#
# Usage (in the guest): systemd-e2e-check.sh REPO_DIR BUILD_DIR   (host paths, copied in)
# shellcheck disable=SC2016  # single-quoted `bash -c` bodies expand in the inner shell
set -u
R=${1:?usage: systemd-e2e-check.sh REPO_DIR BUILD_DIR}
B=${2:?usage: systemd-e2e-check.sh REPO_DIR BUILD_DIR}
fails=0
say() { echo "e2e: $*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() {  # NAME COMMAND...
  local name=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
# need NAME COMMAND...: a check the rest depends on; on failure, the journal and exit 1.
need() {
  local name=$1; shift
  if "$@" >/tmp/need.out 2>&1; then ok "$name"; return 0; fi
  bad "$name"
  sed 's/^/  | /' /tmp/need.out
  dump
  exit 1
}
prop() { systemctl show -p "$2" --value "$1"; }
mono() { /usr/bin/cloudflared --monotonic; }  # CLOCK_MONOTONIC, µs
metrics() { curl -fsS --max-time 5 http://127.0.0.1:9612/metrics; }
# The sum of the series whose name and labels start with $1 ("name{label=...,"), 0 when none.
metric() { metrics 2>/dev/null | awk -v s="$1" 'index($1, s) == 1 {v += $2} END {print v + 0}'; }
export -f metrics metric
REQS='tunnelguard_upstream_requests_total{entrypoint="web",'
UNIX_DENY='tunnelguard_policy_decisions_total{policy="address_families",action="deny",detail="unix"}'
# wait_for SECONDS COMMAND...: polls every 0.1 s.
wait_for() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
tunnel_journal() { journalctl --no-pager -u cloudflared-tunnel.service -o short-monotonic; }
# The stand-in's record of its first act ($RUNTIME_DIRECTORY/first-act, recreated each start).
first_act() { cat /run/cloudflared-tunnel/first-act 2>/dev/null; }
# Used by the `bash -c` checks below.
export -f prop first_act
dump() {
  say "--- journal (tunnelguard, cloudflared-tunnel), monotonic ---"
  journalctl --no-pager -u tunnelguard.service -u cloudflared-tunnel.service -o short-monotonic | tail -n 100
  metrics | grep -E '^tunnelguard_(upstream_requests_total|policy_)' 
  systemctl status --no-pager cloudflared-tunnel.service tunnelguard.service | head -n 40
}

# --- install, as a package (or the nspawn test) would -------------------------------------
install -m 0755 "$B/agent/tunnelguard" /usr/bin/tunnelguard
install -m 0755 "$B/tunnelctl/tunnelctl" /usr/bin/tunnelctl
install -m 0755 "$B/tests/tools/tg-tunnel-standin" /usr/bin/cloudflared
install -m 0755 "$B/tests/tools/tg-http-client" /usr/bin/tg-http-client
install -D -m 0644 "$R/deploy/config/tunnelguard.conf" /etc/tunnelguard/tunnelguard.conf
install -D -m 0644 "$R/deploy/systemd/tunnelguard.service" /etc/systemd/system/tunnelguard.service
install -D -m 0644 "$R/deploy/systemd/cloudflared-tunnel.service" \
  /etc/systemd/system/cloudflared-tunnel.service
install -D -m 0644 "$R/deploy/systemd/cloudflared-tunnel.service.d/tunnelguard.conf" \
  /usr/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf
install -D -m 0644 "$R/deploy/systemd/tunnelguard.sysusers.conf" /usr/lib/sysusers.d/tunnelguard.conf
install -D -m 0600 /dev/null /etc/cloudflared/token
echo stand-in-token >/etc/cloudflared/token
# The real user's sandbox on top of the reference unit: a static User= (glibc resolves it in
# systemd's set-up: nscd, then files), and PrivatePIDs= where systemd supports it (257 on).
sd_version=$(systemctl --version | awk 'NR == 1 {print $2 + 0}')
useradd --system --no-create-home --user-group cloudflared
mkdir -p /etc/systemd/system/cloudflared-tunnel.service.d
{
  printf '[Service]\nDynamicUser=no\nUser=cloudflared\nGroup=cloudflared\nPrivateMounts=yes\n'
  [ "$sd_version" -lt 257 ] || printf 'PrivatePIDs=yes\n'
} >/etc/systemd/system/cloudflared-tunnel.service.d/real-user.conf
systemd-sysusers
systemctl daemon-reload
useradd --no-create-home --groups tunnelguard tgop

cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
say "kernel $(uname -r), lsm=$(cat /sys/kernel/security/lsm), cgroup2 at $cg2, systemd $(systemctl --version | head -1)"
say "tunnel unit sandbox: $(systemctl show -p User -p PrivatePIDs -p PrivateUsers -p PrivateMounts -p RestrictAddressFamilies cloudflared-tunnel.service | paste -sd' ')"
check "bpf is in the active LSM list" grep -qw bpf /sys/kernel/security/lsm
check "nginx (Traefik's stand-in) serves 127.0.0.1:80" \
  bash -c 'systemctl is-active nginx.service || systemctl start nginx.service; curl -fsS -o /dev/null http://127.0.0.1:80/'

# --- 1. cold start: starting the tunnel pulls in the agent (Wants=, After=) ---------------
t_cmd=$(mono)
need "starting cloudflared-tunnel.service succeeds (agent first, then the fail-closed gate)" \
  systemctl start cloudflared-tunnel.service
need "the stand-in cloudflared ran its first act (/run/cloudflared-tunnel/first-act)" \
  wait_for 30 bash -c 'first_act | grep -q ^TG-STANDIN'
t_metric=''
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt $deadline ]; do
  if [ "$(metric "$REQS")" -gt 0 ]; then t_metric=$(mono); break; fi
  sleep 0.05
done
if [ -n "$t_metric" ]; then ok "latency: $REQS > 0"; else bad "latency: $REQS stayed 0 for 30 s"; fi

agent_exec=$(prop tunnelguard.service ExecMainStartTimestampMonotonic)
agent_ready=$(prop tunnelguard.service ActiveEnterTimestampMonotonic)
tunnel_begin=$(prop cloudflared-tunnel.service InactiveExitTimestampMonotonic)
tunnel_main=$(prop cloudflared-tunnel.service ExecMainStartTimestampMonotonic)
# "canary passed in N ms" is attach's last line: the gate's end as journald stamped it on
# receipt (a stream line: no source timestamp), so it may trail the main process's fork.
wait_for 10 bash -c 'journalctl --no-pager -u cloudflared-tunnel.service -o cat | grep -q "canary passed in"'
attach_done=$(tunnel_journal | awk -F'[][]' '/canary passed in/ {printf "%d\n", $2 * 1000000; exit}')
act_line=$(first_act)
first_act=$(sed -n 's/.*mono_us=\([0-9]*\).*/\1/p' <<<"$act_line")
say "stand-in: $act_line"
check "ordering: agent READY=1 (active) before the tunnel's start began" \
  test "${agent_ready:-0}" -gt 0 -a "$agent_ready" -le "$tunnel_begin"
check "gate: attach passed its canary (journal: 'canary passed')" test -n "$attach_done"
check "gate: the main process started only after the gate (ExecStartPre) ran" \
  test "$tunnel_begin" -lt "$tunnel_main" -a "${first_act:-0}" -ge "$tunnel_main"
check "first act: socket(AF_UNIX) refused with EAFNOSUPPORT" grep -q 'socket=EAFNOSUPPORT' <<<"$act_line"
check "first act: socketpair(AF_UNIX) refused with EAFNOSUPPORT (BPF-LSM only: seccomp filters socket() alone)" \
  grep -q 'socketpair=EAFNOSUPPORT' <<<"$act_line"
check "policies enforced and verified by the canary (metrics)" bash -c "
  m=\$(curl -fsS http://127.0.0.1:9612/metrics)
  for p in address_families wx_memory; do
    grep -qx \"tunnelguard_policy_enforced{policy=\\\"\$p\\\"} 1\" <<<\"\$m\" || exit 1
    grep -qx \"tunnelguard_policy_verified{policy=\\\"\$p\\\"} 1\" <<<\"\$m\" || exit 1
  done"
# The agent's denial event for the stand-in's own pid: its socketpair(), refused by the LSM
# (its socket() never reached the LSM: seccomp refused it first).
lsm_denied() { journalctl --no-pager -u tunnelguard.service -o cat | grep -q "denied unix socket for pid $1 (cloudflared)"; }
export -f lsm_denied
# The stand-in's global pid is the unit's MainPID (its own pid= is 1 under PrivatePIDs=).
main_pid() { prop cloudflared-tunnel.service MainPID; }
act_mono() { first_act | sed -n 's/.*mono_us=\([0-9]*\).*/\1/p'; }
export -f act_mono
deny1=$(metric "$UNIX_DENY")
check "the first act's LSM denial is counted ($UNIX_DENY = $deny1)" test "$deny1" -ge 1
check "the agent reported the first act's denial (event for pid $(main_pid))" \
  wait_for 10 lsm_denied "$(main_pid)"
# Per start (each start has a new cgroup, pins and counters): systemd's set-up is exempt, and
# the one LSM denial is the stand-in's socketpair() (its socket() is seccomp's, first).
ALL_DENY='tunnelguard_policy_decisions_total{policy="address_families",action="deny",'
ALL_EXEMPT='tunnelguard_policy_decisions_total{policy="address_families",action="exempt_setup",'
per_start() {  # N
  local exempt deny
  exempt=$(metric "$ALL_EXEMPT") deny=$(metric "$ALL_DENY")
  say "PER-START start $1: exempt_setup=$exempt deny=$deny ($(metrics | grep 'action="exempt_setup"' | sed 's/.*detail="\([a-z0-9]*\)"} \(.*\)/\1=\2/' | paste -sd' '))"
  check "start $1: systemd's set-up exempt (exempt_setup = $exempt > 0)" test "$exempt" -ge 1
  check "start $1: no denial but the tunnel's own socketpair (deny = $deny)" test "$deny" = 1
}
per_start 1

# The timeline (monotonic µs; +ms from the agent's exec).
rel() { [ -n "$1" ] && awk -v a="$1" -v b="$agent_exec" 'BEGIN {printf "%+9.1f ms", (a - b) / 1000}' || echo "      n/a"; }
say "TIMELINE (CLOCK_MONOTONIC µs, and ms after the agent's exec)"
printf 'TIMELINE %-50s %12s %s\n' \
  "systemctl start cloudflared-tunnel issued" "$t_cmd" "$(rel "$t_cmd")" \
  "agent exec (tunnelguard.service)" "$agent_exec" "$(rel "$agent_exec")" \
  "agent READY=1 (ActiveEnter)" "$agent_ready" "$(rel "$agent_ready")" \
  "tunnel start: ExecStartPre attach begins" "$tunnel_begin" "$(rel "$tunnel_begin")" \
  "attach's 'canary passed' line (journald stamp)" "${attach_done:-}" "$(rel "${attach_done:-}")" \
  "gate passed: tunnel main forked (ExecMainStart)" "$tunnel_main" "$(rel "$tunnel_main")" \
  "tunnel first instruction (stand-in's first act)" "${first_act:-}" "$(rel "${first_act:-}")" \
  "first request counted in /metrics (polled)" "${t_metric:-}" "$(rel "${t_metric:-}")"

say "--- journal of the cold start (both units), monotonic ---"
journalctl --no-pager -u tunnelguard.service -u cloudflared-tunnel.service -o short-monotonic | head -n 40

# --- 2. tunnelctl over the unix socket --------------------------------------------------
check "tunnelctl stats as root shows the web entry point" bash -c 'tunnelctl stats | grep -q "^web "'
check "tunnelctl stats as a member of group tunnelguard" bash -c 'runuser -u tgop -- tunnelctl stats | grep -q "^web "'
check "tunnelctl refuses a non-member (exit 4)" bash -c 'runuser -u nobody -- tunnelctl stats; [ $? = 4 ]'
tunnelctl stats | sed 's/^/  tunnelctl| /'

# --- 3. tunnel crash: Restart=on-failure brings it back, enforced from its first act ------
pid1=$(prop cloudflared-tunnel.service MainPID)
reqs1=$(metric "$REQS")
t_kill=$(mono)
kill -9 "$pid1"
check "tunnel restarted after kill -9 (Restart=on-failure, RestartSec=5s)" wait_for 30 bash -c "
  [ \"\$(systemctl show -p NRestarts --value cloudflared-tunnel.service)\" = 1 ] &&
  systemctl is-active cloudflared-tunnel.service && first_act | grep -q ^TG-STANDIN &&
  [ \"\$(act_mono)\" -gt $t_kill ]"
act2=$(first_act)
say "stand-in after the restart: $act2"
check "restart: new main process" bash -c "[ \"\$(systemctl show -p MainPID --value cloudflared-tunnel.service)\" != $pid1 ]"
# journald stamps and stores a stream line when it reads it: the gate's line may trail the
# tunnel's first act, so wait for it.
check "restart: the gate passed again (second 'canary passed')" \
  wait_for 10 bash -c '[ "$(journalctl --no-pager -u cloudflared-tunnel.service -o cat | grep -c "canary passed in")" -ge 2 ]'
check "restart: first act denied again (socket and socketpair EAFNOSUPPORT)" \
  grep -q 'socket=EAFNOSUPPORT socketpair=EAFNOSUPPORT' <<<"$act2"
# (The restarted tunnel has a new cgroup, with new pins and counters: a counter reset.)
check "restart: the agent reported the new first act's denial (event for pid $(main_pid))" \
  wait_for 10 lsm_denied "$(main_pid)"
check "restart: metrics continue (web requests grow past $reqs1)" wait_for 20 bash -c "[ \$(metric '$REQS') -gt $reqs1 ]"
per_start 2

# --- 4. agent restart: enforcement never lapses in the tunnel's cgroup --------------------
cg=$cg2$(prop cloudflared-tunnel.service ControlGroup)
tpid=$(prop cloudflared-tunnel.service MainPID)
apid=$(prop tunnelguard.service MainPID)
# The probe joins the tunnel's cgroup (no seccomp there: only the LSM can refuse it) and tries
# socket/socketpair(AF_UNIX) every 20 ms for 10 s while the agent restarts.
bash -c 'echo $$ >"$1/cgroup.procs" && exec /usr/bin/cloudflared --probe 10' probe "$cg" >/tmp/probe.out 2>&1 &
probe=$!
sleep 1
check "agent restarts (systemctl restart tunnelguard)" systemctl restart tunnelguard.service
check "agent restart: a new agent process" bash -c "[ \"\$(systemctl show -p MainPID --value tunnelguard.service)\" != $apid ]"
wait $probe; probe_rc=$?
say "probe in $cg during the agent restart: $(cat /tmp/probe.out)"
check "agent restart: every forbidden attempt in the tunnel's cgroup denied throughout" test $probe_rc = 0
check "agent restart: the tunnel kept running (Wants=, not Requires=)" \
  bash -c "[ \"\$(systemctl show -p MainPID --value cloudflared-tunnel.service)\" = $tpid ]"
check "agent restart: policies enforced and verified again" wait_for 20 bash -c "
  m=\$(curl -fsS http://127.0.0.1:9612/metrics)
  grep -qx 'tunnelguard_policy_enforced{policy=\"address_families\"} 1' <<<\"\$m\" &&
  grep -qx 'tunnelguard_policy_verified{policy=\"address_families\"} 1' <<<\"\$m\""
r1=$(metric "$REQS")
check "agent restart: metrics resume (web requests grow past $r1)" wait_for 20 bash -c "[ \$(metric '$REQS') -gt $r1 ]"
say "after the agent restart: web requests = $(metric "$REQS"), unix denials = $(metric "$UNIX_DENY")"

# --- 5. the tunnel's output reaches the journal: systemd's set-up is exempt, the tunnel is not
# systemd's set-up (PID 1's fork up to 252; systemd-executor, exec'd by PID 1's clone, from 255)
# resolves User=, connects the tunnel's stdout/stderr to journald (AF_UNIX) after it has joined
# the tunnel's cgroup and before exec (seccomp's RestrictAddressFamilies= comes later, just
# before exec). The policy exempts exactly that (docs/enforcement.md) and counts it as
# exempt_setup; the stand-in's own socket/socketpair(AF_UNIX) after exec stayed denied (checked
# above, for both starts).
standin_lines() { journalctl --no-pager -u cloudflared-tunnel.service -o cat | grep -c '^TG-STANDIN first-act'; }
export -f standin_lines
check "journal: the stand-in's stdout (TG-STANDIN first-act, one per start) reached the journal" \
  wait_for 10 bash -c '[ "$(standin_lines)" -ge 2 ]'
check "journal: its lines carry the denied first act (socket and socketpair EAFNOSUPPORT)" \
  bash -c 'journalctl --no-pager -u cloudflared-tunnel.service -o cat | grep "^TG-STANDIN first-act" | grep -q "socket=EAFNOSUPPORT socketpair=EAFNOSUPPORT"'
# Up to 254 systemd's child is named '((udflared))', from 255 the executor's comm is a number.
foreign=$(journalctl --no-pager -u tunnelguard.service -o cat |
  grep -E 'address_families: (denied|would deny) ' | grep -v ' for pid [0-9]* (cloudflared) ')
check "no denial names anything but the tunnel (others: $(grep -c . <<<"$foreign"))" test -z "$foreign"
[ -z "$foreign" ] || sed 's/^/  foreign| /' <<<"$foreign"
EXEMPT='tunnelguard_policy_decisions_total{policy="address_families",action="exempt_setup",detail="unix"}'
exempt=$(metric "$EXEMPT")
check "systemd's set-up sockets counted as exempt ($EXEMPT = $exempt)" test "$exempt" -ge 1
check "status names the exemption's manager (pid 1, systemd's executable)" \
  bash -c 'tunnelguard status | grep -q "systemd set-up exemption: pid 1 /.*systemd (ino [0-9]*), .*; exempt_setup=[1-9]"'
if [ "$sd_version" -ge 255 ]; then
  check "status names systemd-executor next to PID 1's executable (systemd $sd_version)" \
    bash -c 'tunnelguard status | grep -q "systemd set-up exemption: .*, executor /.*/systemd-executor (ino [0-9]*);"'
else
  check "status: no systemd-executor (systemd $sd_version)" \
    bash -c 'tunnelguard status | grep -q "systemd set-up exemption: .*, no systemd-executor;"'
fi
say "set-up exemption: $(tunnelguard status | grep 'set-up exemption'); stand-in lines in the journal: $(standin_lines)"
metrics | grep 'action="exempt_setup"' | sed 's/^/  exempt| /'

if [ $fails -ne 0 ]; then
  dump
  say "$fails check(s) FAILED"
  exit 1
fi
say "all checks passed"
