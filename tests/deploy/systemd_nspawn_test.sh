#!/usr/bin/env bash
# End to end under real systemd (PID 1 in a systemd-nspawn container of Debian 12): the built
# agent and the shipped units, installed unchanged — tunnelguard.service at
# /etc/systemd/system, the fail-closed drop-in at /usr/lib/systemd/system/
# cloudflared-tunnel.service.d/, the default config at /etc/tunnelguard/, the reference
# cloudflared-tunnel.service with a stand-in /usr/bin/cloudflared — then nspawn/inner-test.sh
# checks, inside: READY=1 under the sandbox, /metrics, STATUS=, WATCHDOG=1, the capability
# bounding set; fail-closed (the gate fails here: this kernel cannot enforce); the opt-out
# replacing the gate with a critical journal line; Wants=/After= ordering; an agent restart
# leaving the tunnel alone; a clean stop.
# nspawn shares the host's kernel, so BPF-LSM itself is not exercised here (tests/vm does that).
# The root file system is built once with debootstrap (build-rootfs.sh, about a minute) and
# cached in ROOTFS_CACHE; each run boots it with a throw-away overlay (--volatile=overlay).
# Usage: systemd_nspawn_test.sh TUNNELGUARD_BINARY ROOTFS_CACHE TUNNELCTL_BINARY
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
  [ "${CI:-}" = true ] && fail "needs root (systemd-nspawn)"
  echo "SKIP: needs root (systemd-nspawn)" >&2; exit 77
fi
require_tool systemd-nspawn systemd-container
[ $# -eq 3 ] && [ -x "$1" ] && [ -x "$3" ] ||
  fail "usage: $0 TUNNELGUARD_BINARY ROOTFS_CACHE TUNNELCTL_BINARY"
BIN=$(realpath "$1")
CACHE=$2
CTL=$(realpath "$3")  # needs no library the agent does not (the root file system has those)
SRC=$REPO/deploy

# The container's root: bookworm minbase + systemd, dbus, curl and the agent's libraries.
ROOTFS=$("$REPO/tests/deploy/build-rootfs.sh" "$CACHE" curl "$BIN") || exit $?

# PID 1 of a real host mounts bpffs at /sys/fs/bpf; this host may not have done so.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || fail "cannot mount bpffs at /sys/fs/bpf"

# What the container gets (bind-mounted read-only over the overlay, nothing else changed).
mkdir -p "$TMP/results" "$TMP/bin" "$TMP/etc"
nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
echo "$nonce" >"$TMP/results/nonce"
printf '#!/bin/sh\necho "stand-in cloudflared started: $*"\nexec sleep infinity\n' >"$TMP/bin/cloudflared"
chmod 0755 "$TMP/bin/cloudflared"
echo "stand-in-token" >"$TMP/etc/token"
binds=(
  --bind-ro="$BIN:/usr/bin/tunnelguard"
  --bind-ro="$CTL:/usr/bin/tunnelctl"
  --bind-ro="$TMP/bin/cloudflared:/usr/bin/cloudflared"
  --bind-ro="$TMP/etc/token:/etc/cloudflared/token"
  --bind-ro="$SRC/config/tunnelguard.conf:/etc/tunnelguard/tunnelguard.conf"
  --bind-ro="$SRC/systemd/tunnelguard.service:/etc/systemd/system/tunnelguard.service"
  --bind-ro="$SRC/systemd/cloudflared-tunnel.service:/etc/systemd/system/cloudflared-tunnel.service"
  --bind-ro="$SRC/systemd/cloudflared-tunnel.service.d/tunnelguard.conf:/usr/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf"
  --bind-ro="$SRC/systemd/tunnelguard-optional.conf:/deploy/tunnelguard-optional.conf"
  --bind-ro="$SRC/systemd/tunnelguard.sysusers.conf:/usr/lib/sysusers.d/tunnelguard.conf"
  --bind-ro="$REPO/tests/deploy/nspawn:/tg-e2e"
  --bind-ro="$REPO/tests/deploy/nspawn/tg-e2e.service:/etc/systemd/system/tg-e2e.service"
  --bind="$TMP/results:/results"
  # The host's bpffs, where PID 1 of a real host mounts it (systemd does not in a container);
  # RequiresMountsFor=/ReadWritePaths=/sys/fs/bpf of the agent's unit are about this mount.
  --bind=/sys/fs/bpf
)
# --register=no --keep-unit: no machined here (see shared notes); --private-network: the
# container's 127.0.0.1:9612 is its own; CAP_BPF/CAP_PERFMON: nspawn drops them by default;
# systemd.wants=: PID 1 reads its arguments like a kernel command line (a bind-mounted
# .wants/ entry is ignored: it must be a symlink).
timeout "${TG_NSPAWN_TIMEOUT:-300}" systemd-nspawn --quiet --register=no --keep-unit --boot --directory="$ROOTFS" \
  --volatile=overlay --private-network --capability=CAP_BPF,CAP_PERFMON \
  --machine=tg-e2e-$$ "${binds[@]}" systemd.wants=tg-e2e.service >"$TMP/console.log" 2>&1 </dev/null || true
[ -z "${TG_NSPAWN_CONSOLE:-}" ] || cat "$TMP/console.log" "$TMP/results/log" >"$TG_NSPAWN_CONSOLE" 2>/dev/null || true

{ sed -n "/^--- journal/q;p" "$TMP/results/log" 2>/dev/null || true; }
if grep -qx "RESULT $nonce PASS" "$TMP/results/log" 2>/dev/null; then
  echo "nspawn: all checks passed"
  exit 0
fi
echo "--- container console (tail) ---" >&2; tail -30 "$TMP/console.log" >&2
echo "--- journal from inside ---" >&2; sed -n '/^--- journal/,$p' "$TMP/results/log" 2>/dev/null | tail -60 >&2
fail "end-to-end checks under systemd did not pass (no PASS line with this run's nonce)"
