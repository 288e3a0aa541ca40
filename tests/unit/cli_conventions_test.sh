#!/usr/bin/env bash
# The command-line conventions of both binaries, on the built binaries (agent/base/cli_conventions):
#  - `completion bash` sourced into bash completes subcommands and a subcommand's flags;
#  - `completion fish` loaded into fish does the same (fish's own `complete -C`);
#  - `completion zsh` parses (zsh -n) and declares #compdef;
#  - the generated files in GENERATED_DIR are what the binaries print now (the build is current);
#  - the man pages render (man -l) with a SUBCOMMANDS section naming every subcommand.
# --version is checked by unit.release. Usage: cli_conventions_test.sh TUNNELGUARD TUNNELCTL GENERATED_DIR
source "$(dirname "$0")/../deploy/lib.sh"
require_tool zsh zsh
require_tool fish fish
require_tool man man-db
TG=${1:?usage}; CTL=${2:?usage}; GEN=${3:?usage}

# bash_complete BINARY WORD...: what bash's completion offers for the last WORD.
bash_complete() {
  local bin=$1; shift
  "$bin" completion bash >"$TMP/c.bash"
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _$1; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$TMP/c.bash" "$@"
}
fish_complete() {
  local bin=$1; shift
  "$bin" completion fish >"$TMP/c.fish"
  fish -c "source $TMP/c.fish; complete -C '$*'" | cut -f1
}

for case in "$TG|tunnelguard ru|run" "$TG|tunnelguard run --mo|--mode" "$TG|tunnelguard attach --pol|--policy-from-unit" \
    "$CTL|tunnelctl ev|events" "$CTL|tunnelctl events --js|--json" "$TG|tunnelguard --vers|--version"; do
  IFS='|' read -r bin line want <<<"$case"
  read -ra words <<<"$line"
  case $line in *' ') words+=(""); esac
  got=$(bash_complete "$bin" "${words[@]}")
  grep -qx -- "$want" <<<"$got" || fail "bash: '$line<TAB>' does not offer $want; offers: $(tr "\n" " " <<<"$got")"
  got=$(fish_complete "$bin" "$line")
  grep -qx -- "$want" <<<"$got" || fail "fish: '$line<TAB>' does not offer $want; offers: $(tr "\n" " " <<<"$got")"
done
ok "bash and fish complete subcommands and flags of both binaries"

for bin in "$TG" "$CTL"; do
  name=$(basename "$bin")
  "$bin" completion zsh >"$TMP/_$name"
  head -1 "$TMP/_$name" | grep -qx "#compdef $name" || fail "zsh: no '#compdef $name' line"
  zsh -n "$TMP/_$name" || fail "zsh: the completion script of $name does not parse"
  cmp -s "$TMP/_$name" "$GEN/_$name" || fail "$GEN/_$name is stale (rebuild)"
  "$bin" completion bash | cmp -s - "$GEN/$name.bash" || fail "$GEN/$name.bash is stale (rebuild)"
  "$bin" completion fish | cmp -s - "$GEN/$name.fish" || fail "$GEN/$name.fish is stale (rebuild)"
  "$bin" completion tcsh >/dev/null 2>"$TMP/err" && fail "$name completion tcsh should be refused"
  grep -q "tcsh" "$TMP/err" || fail "$name completion tcsh: the error does not name the shell"

  page=$(MANWIDTH=100 man -l "$GEN/$name.1.gz" 2>"$TMP/man.err") || fail "man -l $name.1.gz failed: $(cat "$TMP/man.err")"
  grep -q '^SUBCOMMANDS' <<<"$page" || fail "$name.1 has no SUBCOMMANDS section"
  for sub in $("$bin" --help | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
    grep -q "^ *$name $sub\$" <<<"$page" || fail "$name.1 lacks the subcommand '$sub'"
  done
done
ok "zsh completions parse; generated files current; man pages render with every subcommand"
