#!/usr/bin/env bash
# deploy/nixos and flake.nix, evaluated with nixpkgs' real lib (lib.evalModules) by Debian's
# nix-instantiate; nixpkgs' nixos/ modules are not here, so the NixOS options the module
# touches and nixpkgs' services.cloudflared are stood in for (nixos/nixos-options.nix,
# nixos/cloudflared-module.nix).
#  1. every .nix file in the repository parses (nix-instantiate --parse);
#  2. nixos/module-test.nix: the real user's own unit, nixpkgs-style tunnels, wrong
#     configurations (assertion messages), priorities and merging, the flake's overlay and
#     module — a list of named checks;
#  3. self-check: a module with a wrong default port and a fail-open gate must fail step 2.
# The lib: $TG_NIXPKGS_LIB (.ci/run sets it), else the workplace's ../shared/nix/nixpkgs-lib/lib
# beside the clone, else <nixpkgs/lib> from NIX_PATH; none: FAIL in CI, skip elsewhere.
source "$(dirname "$0")/lib.sh"
require_tool nix-instantiate nix-bin
# Debian's nix.conf names a build-users group that only exists with the nix daemon set up;
# evaluation builds nothing, so no group is needed.
export NIX_CONFIG="build-users-group ="
export NIX_STATE_DIR=$TMP/nix-state NIX_LOG_DIR=$TMP/nix-log

nixpkgs_lib=${TG_NIXPKGS_LIB:-}
[ -n "$nixpkgs_lib" ] || [ ! -d "$REPO/../shared/nix/nixpkgs-lib/lib" ] || nixpkgs_lib=$REPO/../shared/nix/nixpkgs-lib/lib
if [ -z "$nixpkgs_lib" ] && nix-instantiate --eval -E '<nixpkgs/lib>' >/dev/null 2>&1; then
  nixpkgs_lib=$(nix-instantiate --eval -E 'toString <nixpkgs/lib>' | tr -d '"')
fi
if [ -n "${TG_NIXPKGS_LIB:-}" ] && [ ! -f "$TG_NIXPKGS_LIB/default.nix" ]; then
  fail "TG_NIXPKGS_LIB=$TG_NIXPKGS_LIB is not a nixpkgs lib directory (no default.nix): point it at nixpkgs' lib/"
fi
if [ -z "$nixpkgs_lib" ]; then
  why="nixpkgs' lib not found (no TG_NIXPKGS_LIB, no ../shared/nix/nixpkgs-lib/lib beside the clone, no <nixpkgs> in NIX_PATH); set TG_NIXPKGS_LIB to a nixpkgs lib directory"
  [ "${CI:-}" != true ] || fail "$why"
  echo "SKIP: $why" >&2
  exit 77
fi
echo "nixpkgs lib: $nixpkgs_lib ($(nix-instantiate --eval -E "(import $nixpkgs_lib).version" | tr -d '"'))"

cd "$REPO"
mapfile -t files < <(git ls-files '*.nix')
[ ${#files[@]} -ge 6 ] || fail "expected the .nix files of deploy/nixos, flake.nix, default.nix; found ${#files[@]}"
for f in "${files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null 2>"$TMP/err" || fail "$f does not parse:"$'\n'"$(cat "$TMP/err")"
done
ok "parse: ${#files[@]} .nix files"

# run_checks ROOT: evaluates ROOT/tests/deploy/nixos/module-test.nix; prints failed checks.
run_checks() {
  nix-instantiate --eval --strict --json "$1/tests/deploy/nixos/module-test.nix" \
    --arg lib "import $nixpkgs_lib" 2>"$TMP/err" >"$TMP/out" ||
    { cat "$TMP/err"; return 2; }
  jq -e 'type == "array" and length > 0' "$TMP/out" >/dev/null || { echo "no checks returned"; return 2; }
  jq -r '.[] | select(.ok | not) | "  \(.name): got \(.got | tojson)"' "$TMP/out"
}
bad=$(run_checks "$REPO") || fail "module-test.nix did not evaluate:"$'\n'"$bad"
[ -z "$bad" ] || fail "module checks failed:"$'\n'"$bad"
ok "module: $(jq length "$TMP/out") checks passed"

# Self-check on a mutated copy.
M=$TMP/mutant
mkdir -p "$M/tests/deploy" "$M/deploy"
cp flake.nix "$M/"
cp -r deploy/nixos deploy/systemd "$M/deploy/"
cp -r tests/deploy/nixos "$M/tests/deploy/"
sed -i -e 's/default = 9612;/default = 9613;/' -e 's/else "+${attach}"/else "-+${attach}"/' \
  -e 's/assertion = orphans == \[ \];/assertion = true;/' "$M/deploy/nixos/module.nix"
bad=$(run_checks "$M") || true
for want in 'real user: agent ExecStart' 'real user: gate first' 'typo: one assertion'; do
  grep -q "$want" <<<"$bad" || fail "self-check: a mutated module was not caught ($want); failed checks:"$'\n'"$bad"
done
ok "self-check: a wrong port, a fail-open gate and a missing orphan assertion are caught"
echo "nixos: all checks passed"
