#!/usr/bin/env bash
# `systemd-analyze security --offline=yes` exposure of the shipped units stays at or below the
# score measured when the sandbox was written (deploy/systemd/README.md). Loosening the
# sandbox (dropping ProtectSystem=, adding a capability, …) raises the score and fails here;
# tightening it is welcome: lower the threshold in the same commit.
# systemd prints the score with one decimal; --threshold takes it times ten (2.0 -> 20).
source "$(dirname "$0")/lib.sh"
require_tool systemd-analyze systemd
SRC=$REPO/deploy/systemd

# unit -> highest accepted exposure x10 (measured with systemd 252: 2.2 and 1.2)
declare -A THRESHOLD=([tunnelguard.service]=22 [cloudflared-tunnel.service]=12)

score() {  # score UNITFILE -> "2.0"
  systemd-analyze security --offline=yes "$1" 2>/dev/null |
    sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\) .*/\1/p'
}

for unit in "${!THRESHOLD[@]}"; do
  t=${THRESHOLD[$unit]}
  s=$(score "$SRC/$unit")
  [ -n "$s" ] || fail "no exposure score printed for $unit"
  if ! systemd-analyze security --offline=yes --threshold="$t" "$SRC/$unit" >/dev/null 2>&1; then
    fail "$unit exposure $s is above the threshold $((t / 10)).$((t % 10)); see deploy/systemd/README.md"
  fi
  ok "$unit exposure $s <= $((t / 10)).$((t % 10))"
done

# The check must be able to fail: the same unit with its file-system sandbox removed.
sed -e '/^ProtectSystem=/d' -e '/^ProtectHome=/d' "$SRC/tunnelguard.service" \
  >"$TMP/tunnelguard.service"
if systemd-analyze security --offline=yes --threshold="${THRESHOLD[tunnelguard.service]}" \
  "$TMP/tunnelguard.service" >/dev/null 2>&1; then
  fail "self-check: a loosened unit ($(score "$TMP/tunnelguard.service")) passed the threshold"
fi
ok "self-check: a loosened tunnelguard.service ($(score "$TMP/tunnelguard.service")) fails"
echo "systemd security: all checks passed"
