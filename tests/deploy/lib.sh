# Shared by the deploy checks (sourced). A check whose tool is missing FAILS in CI (CI=true)
# and is skipped elsewhere with its reason (exit 77, ctest's SKIP_RETURN_CODE), the same rule
# as TG_REQUIRE in tests/test_support.h.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# require_tool TOOL PACKAGE: TOOL on PATH, or fail (CI) / skip (elsewhere).
require_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $1 is missing (Debian package $2; tools/install-deps.sh installs it)" >&2
    exit 1
  fi
  echo "SKIP: $1 is missing (Debian package $2; run tools/install-deps.sh)" >&2
  exit 77
}

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# A private temp dir, removed on exit.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# unit_root DIR: a root for `systemd-analyze verify --root=DIR`: the host's units (sysinit.target,
# network-online.target, …), /bin/sh, and a stand-in executable for /usr/bin/cloudflared (not a
# Debian package). Nothing of ours: the caller installs it.
unit_root() {
  local r=$1 host=/usr/lib/systemd/system
  [ -f "$host/sysinit.target" ] || host=/lib/systemd/system
  mkdir -p "$r/etc/systemd/system" "$r/usr/lib/systemd/system" "$r/usr/bin" "$r/bin"
  cp -r "$host/." "$r/usr/lib/systemd/system/"
  printf '#!/bin/sh\nexit 0\n' >"$r/usr/bin/cloudflared"
  chmod 0755 "$r/usr/bin/cloudflared"
  cp /bin/sh "$r/bin/sh"
}

# verify_clean ROOT UNIT...: `systemd-analyze verify` exits 0 and prints not one line (it exits
# 0 on warnings such as an unknown key).
verify_clean() {
  local r=$1; shift
  local out rc=0
  out=$(systemd-analyze verify --root="$r" "$@" 2>&1) || rc=$?
  [ $rc -eq 0 ] && [ -z "$out" ] || fail "verify $* (rc $rc):"$'\n'"$out"
}
