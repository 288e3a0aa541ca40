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
