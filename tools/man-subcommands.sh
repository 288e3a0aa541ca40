#!/usr/bin/env bash
# man-subcommands.sh BINARY: a help2man include file (help2man(1), --include) with one
# subsection per subcommand holding that subcommand's own `--help`, so the man page is
# generated from the CLI's definitions like the top-level part help2man writes itself.
set -euo pipefail
bin=${1:?usage: man-subcommands.sh BINARY}
name=$(basename "$bin")
echo "[SUBCOMMANDS]"
"$bin" --help | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1}' |
  while read -r sub; do
    echo ".SS \"$name $sub\""
    echo ".nf"
    # roff: a backslash is \e; a line starting with . or ' would be a request.
    "$bin" "$sub" --help | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
    echo ".fi"
  done
