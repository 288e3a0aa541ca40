#!/bin/bash
# Guest side of vm.systemd_notify.<kernel>: the stock cloudflared.service (Type=notify, as
# `cloudflared service install` writes it) guarded by the shipped drop-in
# (deploy/systemd/cloudflared.service.d/tunnelguard.conf) under real systemd as PID 1 of a stock
# Debian kernel in QEMU, where BPF-LSM is real. Runs from tg-vm-test.service once the root
# (tests/deploy/build-rootfs.sh) has booted; the built files are copied in.
#
# Checks: the gate's `attach --policy-from-unit` derives unix-notify from Type=notify and the
# drop-in's RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6, and its canary proves the rule (a
# notify-shaped connect allowed, another peer refused); the unit reaches `active` only through
# the stand-in's sd_notify(READY=1), made after its forbidden AF_UNIX acts, each refused and
# counted: stream sockets (journald's stdout stream, D-Bus) and socketpair() with EAFNOSUPPORT,
# a datagram connect to journald's socket and a sendto() to /dev/log with EPERM; the agent
# reports them with the process; `tunnelctl status` says what AF_UNIX may still do; in audit
# mode (tunnelctl mode) the same acts from the tunnel's cgroup are allowed and counted as
# would_deny; back in enforce they are refused again.
#
# Usage (in the guest): notify-e2e-check.sh REPO_DIR BUILD_DIR (host paths, copied in)
set -u
R=${1:?usage: notify-e2e-check.sh REPO_DIR BUILD_DIR}
B=${2:?usage: notify-e2e-check.sh REPO_DIR BUILD_DIR}
SAY_PREFIX=notify-e2e
dump() {
  say "--- journal (tunnelguard, cloudflared), monotonic ---"
  journalctl --no-pager -u tunnelguard.service -u cloudflared.service -o short-monotonic | tail -n 80
  systemctl status --no-pager cloudflared.service tunnelguard.service | head -n 40
}
# shellcheck source=tests/vm/guest-checks.sh
source "$R/tests/vm/guest-checks.sh"
D='tunnelguard_policy_decisions_total{policy="address_families",'
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }  # NAME RECORD

# --- install: the built files, the stock unit and the shipped drop-in -------------------------
install -m 0755 "$B/agent/tunnelguard" /usr/bin/tunnelguard
install -m 0755 "$B/tunnelctl/tunnelctl" /usr/bin/tunnelctl
install -m 0755 "$B/tests/tools/tg-tunnel-standin" /usr/bin/cloudflared
install -m 0755 "$B/tests/tools/tg-http-client" /usr/bin/tg-http-client
install -D -m 0644 "$R/deploy/systemd/tunnelguard.service" /etc/systemd/system/tunnelguard.service
install -D -m 0644 "$R/deploy/systemd/tunnelguard.sysusers.conf" /usr/lib/sysusers.d/tunnelguard.conf
install -D -m 0644 "$R/deploy/systemd/cloudflared.service.d/tunnelguard.conf" \
  /usr/lib/systemd/system/cloudflared.service.d/tunnelguard.conf
# The agent's config as deploy/systemd/README.md tells a cloudflared.service user to write it.
sed -e 's/^unit = .*/unit = cloudflared.service/' -e 's/^# families = .*/families = inet,inet6,unix-notify/' \
  "$R/deploy/config/tunnelguard.conf" | install -D -m 0644 /dev/stdin /etc/tunnelguard/tunnelguard.conf
# The stock unit (what `cloudflared service install TOKEN` writes), with a token.
sed 's/TOKEN/stand-in-token/' "$R/tests/deploy/cloudflared-stock.service" >/etc/systemd/system/cloudflared.service
systemd-sysusers
systemctl daemon-reload
say "kernel $(uname -r), lsm=$(cat /sys/kernel/security/lsm), systemd $(systemctl --version | head -1)"
say "cloudflared.service: $(systemctl show -p Type -p NotifyAccess -p RestrictAddressFamilies -p MemoryDenyWriteExecute -p DropInPaths cloudflared.service | paste -sd' ')"
check "bpf is in the active LSM list" grep -qw bpf /sys/kernel/security/lsm
check "nginx (Traefik's stand-in) serves 127.0.0.1:80" \
  bash -c 'systemctl is-active nginx.service || systemctl start nginx.service; curl -fsS -o /dev/null http://127.0.0.1:80/'

# --- 1. start: the gate, then READY=1 through the notify socket -----------------------------
# TimeoutStartSec=0 (the stock unit) waits for READY=1 forever: bound it here.
need "cloudflared.service (Type=notify) starts: systemctl start returns once READY=1 arrived" \
  timeout 60 systemctl start cloudflared.service
need "cloudflared.service is active (running)" \
  bash -c '[ "$(prop cloudflared.service ActiveState)/$(prop cloudflared.service SubState)" = active/running ]'
journalctl --no-pager -u cloudflared.service -o cat | grep -E '^(read from|address_families|canary|pinned)' |
  sed 's/^/  gate| /'
check "gate: --policy-from-unit derived unix-notify from Type=notify" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -q "Type=notify: AF_UNIX narrowed to sd_notify (unix-notify)"'
check "gate: allowed families inet,inet6,unix-notify" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -q "allowed families: inet,inet6,unix-notify"'
check "gate canary: the notify-shaped connect to /run/systemd/notify allowed" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -E "canary address_families \(enforce\): connect\(AF_UNIX, SOCK_DGRAM\) to the notify socket /run/systemd/notify succeeded.*: passed"'
check "gate canary: the connect to another bound socket refused (EPERM)" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -E "canary address_families \(enforce\): connect\(AF_UNIX, SOCK_DGRAM\) to another bound socket failed with EPERM.*: passed"'
check "gate canary: socketpair(AF_UNIX) refused (EAFNOSUPPORT)" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -E "canary address_families \(enforce\): socketpair\(AF_UNIX\) failed with EAFNOSUPPORT.*: passed"'
rec=$(cat /run/tg-standin-notify-acts 2>/dev/null)
say "stand-in: $(cat /run/tg-standin-notify-acts 2>/dev/null)"
check "READY=1 through \$NOTIFY_SOCKET allowed (ready=allowed)" test "$(field ready "$rec")" = allowed
check "connect to journald's stdout stream refused: AF_UNIX stream socket (EAFNOSUPPORT)" \
  test "$(field journal_stdout "$rec")" = EAFNOSUPPORT
check "connect to the D-Bus socket refused: AF_UNIX stream socket (EAFNOSUPPORT)" \
  test "$(field dbus "$rec")" = EAFNOSUPPORT
check "datagram connect to /run/systemd/journal/socket refused (EPERM)" \
  test "$(field journal_dgram "$rec")" = EPERM
check "sendto() /dev/log refused (EPERM)" test "$(field devlog_sendto "$rec")" = EPERM
check "socketpair(AF_UNIX, SOCK_DGRAM) refused (EAFNOSUPPORT)" test "$(field socketpair_dgram "$rec")" = EAFNOSUPPORT
check "socket(AF_UNIX, SOCK_STREAM) refused (EAFNOSUPPORT)" test "$(field socket_stream "$rec")" = EAFNOSUPPORT
check "the stand-in's first act refused too (socket and socketpair AF_UNIX stream)" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -q "socket=EAFNOSUPPORT socketpair=EAFNOSUPPORT"'
check "the stand-in's lines reach the journal (systemd's set-up exempt)" bash -c \
  'journalctl --no-pager -u cloudflared.service -o cat | grep -q "^TG-STANDIN notify-acts"'
check "the agent follows cloudflared.service" wait_for 20 bash -c 'tunnelctl status | grep -q "^target   cloudflared.service: cgroup"'

# --- 2. counted and reported -----------------------------------------------------------------
wait_for 10 bash -c "[ \$(metric '${D}action=\"allow\",detail=\"unix_notify\"') -ge 1 ]"
notify_allow=$(metric "${D}action=\"allow\",detail=\"unix_notify\"")
peer_deny=$(metric "${D}action=\"deny\",detail=\"unix_peer\"")
pair_deny=$(metric "${D}action=\"deny\",detail=\"unix_socketpair\"")
unix_deny=$(metric "${D}action=\"deny\",detail=\"unix\"")
exempt=$(metric "${D}action=\"exempt_setup\"")
say "COUNTS enforce: allow/unix_notify=$notify_allow deny/unix_peer=$peer_deny deny/unix_socketpair=$pair_deny deny/unix=$unix_deny exempt_setup=$exempt"
metrics | grep -E '^tunnelguard_policy_decisions_total\{policy="address_families",action="(allow|deny|exempt_setup)",detail="(unix|unix_notify|unix_peer|unix_socketpair)"\}' |
  sed 's/^/  metrics| /'
check "allowed sd_notify counted (allow unix_notify = $notify_allow >= 1)" test "$notify_allow" -ge 1
check "other peers counted (deny unix_peer = $peer_deny >= 2: journal connect, /dev/log sendto)" test "$peer_deny" -ge 2
check "socketpair counted (deny unix_socketpair = $pair_deny >= 1)" test "$pair_deny" -ge 1
check "stream sockets counted (deny unix = $unix_deny >= 5: first act 2, journal stdout, D-Bus, stream)" test "$unix_deny" -ge 5
main=$(prop cloudflared.service MainPID)
reported() { journalctl --no-pager -u tunnelguard.service -o cat | grep -q "address_families: denied $1 for pid $2 (cloudflared)"; }
export -f reported
check "the agent reported the refused peer with the process (denied unix_peer for pid $main)" \
  wait_for 10 reported unix_peer "$main"
check "the agent reported the refused socketpair (denied unix_socketpair for pid $main)" \
  wait_for 10 reported unix_socketpair "$main"
check "no denial names systemd's set-up (only cloudflared)" bash -c \
  '! journalctl --no-pager -u tunnelguard.service -o cat | grep "address_families: denied" | grep -v "(cloudflared)"'
say "tunnelctl status:"
tunnelctl status | sed 's/^/  tunnelctl| /'
check "tunnelctl status: address_families enforced, AF_UNIX only for sd_notify to /run/systemd/notify" bash -c '
  s=$(tunnelctl status)
  grep -q "^policy   address_families enforce enforced with lsm_" <<<"$s" &&
  grep -q "allowed inet,inet6,unix-notify: AF_UNIX only for sd_notify datagrams to /run/systemd/notify" <<<"$s"'
tunnelguard status 2>/dev/null | sed 's/^/  tunnelguard status| /'

# --- 3. audit: counted, allowed; then enforce again ------------------------------------------
cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)$(prop cloudflared.service ControlGroup)
acts_in_cgroup() { bash -c 'echo $$ >"$1/cgroup.procs" && exec /usr/bin/cloudflared --notify-acts' acts "$cg" 2>&1 | grep '^TG-STANDIN'; }
would0=$(metric "${D}action=\"would_deny\",detail=\"unix_peer\"")
check "tunnelctl mode address_families audit" tunnelctl mode address_families audit
audit=$(acts_in_cgroup)
say "audit, in the tunnel's cgroup: $audit"
check "audit: the datagram connect to journald's socket allowed" test "$(field journal_dgram "$audit")" = allowed
check "audit: socketpair(AF_UNIX, SOCK_DGRAM) allowed" test "$(field socketpair_dgram "$audit")" = allowed
check "audit: socket(AF_UNIX, SOCK_STREAM) allowed" test "$(field socket_stream "$audit")" = allowed
would1=$(metric "${D}action=\"would_deny\",detail=\"unix_peer\"")
say "COUNTS audit: would_deny/unix_peer $would0 -> $would1, would_deny/unix_socketpair=$(metric "${D}action=\"would_deny\",detail=\"unix_socketpair\"")"
check "audit: would_deny unix_peer counted ($would0 -> $would1, +2 or more)" test "$would1" -ge $((would0 + 2))
check "tunnelctl mode address_families enforce" tunnelctl mode address_families enforce
again=$(acts_in_cgroup)
say "enforce again, in the tunnel's cgroup: $again"
check "enforce again: the datagram connect to journald's socket refused (EPERM)" test "$(field journal_dgram "$again")" = EPERM
check "the unit is still active" bash -c '[ "$(prop cloudflared.service ActiveState)" = active ]'

[ "$fails" = 0 ] || dump
say "$fails failed check(s)"
[ "$fails" = 0 ]
