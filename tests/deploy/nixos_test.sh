#!/usr/bin/env bash
# deploy/nixos and flake.nix with Debian's nix-instantiate (no nixpkgs: no network here).
#  1. every .nix file in the repository parses (nix-instantiate --parse);
#  2. module.nix, evaluated against a stand-in for nixpkgs' lib and module system
#     (nixos/lib.nix, nixos/eval-module.nix), produces the expected units, drop-in settings,
#     config file and assertions (nixos/module-test.nix: a list of named checks);
#  3. self-check: a module with a wrong default port and a fail-open gate must fail step 2.
source "$(dirname "$0")/lib.sh"
require_tool nix-instantiate nix-bin
# Debian's nix.conf names a build-users group that only exists with the nix daemon set up;
# evaluation builds nothing, so no group is needed.
export NIX_CONFIG="build-users-group ="
export NIX_STATE_DIR=$TMP/nix-state NIX_LOG_DIR=$TMP/nix-log

cd "$REPO"
mapfile -t files < <(git ls-files '*.nix')
[ ${#files[@]} -ge 6 ] || fail "expected the .nix files of deploy/nixos, flake.nix, default.nix; found ${#files[@]}"
for f in "${files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null 2>"$TMP/err" || fail "$f does not parse:"$'\n'"$(cat "$TMP/err")"
done
ok "parse: ${#files[@]} .nix files"

# run_checks ROOT: evaluates ROOT/tests/deploy/nixos/module-test.nix; prints failed checks.
run_checks() {
  nix-instantiate --eval --strict --json "$1/tests/deploy/nixos/module-test.nix" 2>"$TMP/err" >"$TMP/out" ||
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
cp -r deploy/nixos deploy/systemd "$M/deploy/"
cp -r tests/deploy/nixos "$M/tests/deploy/"
sed -i -e 's/default = 9612;/default = 9613;/' -e 's/else "+${attach}"/else "-+${attach}"/' "$M/deploy/nixos/module.nix"
bad=$(run_checks "$M") || true
grep -q 'default ExecStart' <<<"$bad" && grep -q 'tunnel fail-closed gate' <<<"$bad" ||
  fail "self-check: a mutated module was not caught; failed checks:"$'\n'"$bad"
ok "self-check: a wrong port and a fail-open gate are caught"
echo "nixos: all checks passed"
