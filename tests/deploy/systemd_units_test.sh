#!/usr/bin/env bash
# `systemd-analyze verify` of every shipped unit, installed unchanged into a temporary root.
#
# Why a root: verify checks that every Exec*= binary exists and is executable, and resolves
# Requires=/Wants=/After= against real units. The shipped units name /usr/bin/tunnelguard,
# /usr/bin/cloudflared and /bin/sh. Rather than editing the units (then we would verify a
# different text), we build a root the way a package would: the units and drop-in at their
# install paths, the just-built tunnelguard binary at /usr/bin/tunnelguard, a stand-in
# executable for cloudflared (not a Debian package), /bin/sh, and the host's systemd units
# (sysinit.target, network-online.target, …) — then `systemd-analyze verify --root`.
# verify exits 0 on warnings such as an unknown key, so any output at all is a failure.
#
# Usage: systemd_units_test.sh TUNNELGUARD_BINARY
source "$(dirname "$0")/lib.sh"
require_tool systemd-analyze systemd
[ $# -eq 1 ] && [ -x "$1" ] || fail "usage: $0 TUNNELGUARD_BINARY (built, executable)"
BIN=$1
SRC=$REPO/deploy/systemd

# make_root DIR: a root with the host's units, our binary and the stand-ins; no units of ours.
make_root() {
  unit_root "$1"
  cp "$BIN" "$1/usr/bin/tunnelguard"
  chmod 0755 "$1/usr/bin/tunnelguard"
}

# effective_dropins ROOT UNIT: the drop-in files systemd applies, in order.
effective_dropins() {
  systemd-analyze cat-config --root="$1" "systemd/system/$2" | sed -n 's|^# '"$1"'\(/.*\.d/.*\)|\1|p'
}

# 1. The package layout: units in /usr/lib, the fail-closed drop-in beside the tunnel's unit.
R=$TMP/pkg; make_root "$R"
install -m 0644 "$SRC/tunnelguard.service" "$SRC/cloudflared-tunnel.service" "$R/usr/lib/systemd/system/"
install -D -m 0644 "$SRC/cloudflared-tunnel.service.d/tunnelguard.conf" \
  "$R/usr/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf"
verify_clean "$R" tunnelguard.service cloudflared-tunnel.service
[ "$(effective_dropins "$R" cloudflared-tunnel.service)" = \
  /usr/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf ] ||
  fail "fail-closed drop-in not applied to cloudflared-tunnel.service"
ok "verify: tunnelguard.service, cloudflared-tunnel.service + fail-closed drop-in"

# 2. The documented opt-out: tunnelguard-optional.conf in /etc under the drop-in's own name
#    replaces the fail-closed one (and is the only drop-in applied).
install -D -m 0644 "$SRC/tunnelguard-optional.conf" \
  "$R/etc/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf"
verify_clean "$R" cloudflared-tunnel.service
dropins=$(effective_dropins "$R" cloudflared-tunnel.service)
[ "$dropins" = /etc/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf ] ||
  fail "opt-out does not replace the fail-closed drop-in; applied: $dropins"
ok "verify: opt-out drop-in replaces the fail-closed one"

# 3. The same units installed by hand under /etc (no /usr/lib copies).
R=$TMP/etc; make_root "$R"
install -m 0644 "$SRC/tunnelguard.service" "$SRC/cloudflared-tunnel.service" "$R/etc/systemd/system/"
install -D -m 0644 "$SRC/cloudflared-tunnel.service.d/tunnelguard.conf" \
  "$R/etc/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf"
verify_clean "$R" tunnelguard.service cloudflared-tunnel.service
ok "verify: units installed under /etc"

# 3b. The stock Type=notify cloudflared.service (what `cloudflared service install` writes) with
#     the shipped drop-in in /usr/lib: verified together, and the drop-in applied.
R=$TMP/notify; make_root "$R"
install -m 0644 "$SRC/tunnelguard.service" "$R/usr/lib/systemd/system/"
install -m 0644 "$REPO/tests/deploy/cloudflared-stock.service" "$R/etc/systemd/system/cloudflared.service"
install -D -m 0644 "$SRC/cloudflared.service.d/tunnelguard.conf" \
  "$R/usr/lib/systemd/system/cloudflared.service.d/tunnelguard.conf"
verify_clean "$R" cloudflared.service
[ "$(effective_dropins "$R" cloudflared.service)" = \
  /usr/lib/systemd/system/cloudflared.service.d/tunnelguard.conf ] ||
  fail "the notify drop-in is not applied to cloudflared.service"
grep -qx 'ExecStartPre=+/usr/bin/tunnelguard attach --unit %n --policy-from-unit' \
  "$SRC/cloudflared.service.d/tunnelguard.conf" || fail "the notify drop-in's ExecStartPre= changed"
grep -qx 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' "$SRC/cloudflared.service.d/tunnelguard.conf" ||
  fail "the notify drop-in must allow AF_UNIX to systemd (sd_notify) for tunnelguard to narrow"
ok "verify: the stock Type=notify cloudflared.service + its drop-in"

# 4. sysusers.d: the tunnelguard group (Group= of the service) is created.
mkdir -p "$TMP/sysusers/etc"
systemd-sysusers --root="$TMP/sysusers" "$SRC/tunnelguard.sysusers.conf" >/dev/null 2>&1 ||
  fail "systemd-sysusers rejected tunnelguard.sysusers.conf"
grep -q '^tunnelguard:' "$TMP/sysusers/etc/group" || fail "sysusers made no tunnelguard group"
ok "sysusers: tunnelguard group"

# 5. The drop-in's gate is what the design says: a fully privileged (+) attach of this unit
#    (%n) with the policy read from the unit, and no '-' that would ignore its failure.
grep -qx 'ExecStartPre=+/usr/bin/tunnelguard attach --unit %n --policy-from-unit' \
  "$SRC/cloudflared-tunnel.service.d/tunnelguard.conf" || fail "fail-closed ExecStartPre= changed"
ok "fail-closed ExecStartPre= is '+', not '-+'"

# 6. The checker itself: a unit with a typo must not pass (else this test proves nothing).
R=$TMP/neg; make_root "$R"
sed 's/^ProtectHome=yes/ProtectHome=yes\nProtectHomeX=yes/' "$SRC/tunnelguard.service" \
  >"$R/etc/systemd/system/tunnelguard.service"
if systemd-analyze verify --root="$R" tunnelguard.service 2>&1 | grep -q .; then
  ok "self-check: a typo'd key is reported"
else
  fail "self-check: verify stayed silent on an unknown key; this test cannot catch errors"
fi
echo "systemd units: all checks passed"
