#!/usr/bin/env bash
# Style checks for our C++ (not generated skeletons, not vmlinux.h):
#   tools/lint.sh            clang-format check (what ctest's lint.clang_format runs)
#   tools/lint.sh --fix      rewrite files in place with clang-format
#   tools/lint.sh --tidy     also clang-tidy, using build/compile_commands.json
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h' ':!bpf/include/vmlinux.h' ':!bpf/*.h')
mode=${1:-}
if [ "$mode" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run -Werror "${files[@]}"
if [ "$mode" = --tidy ]; then
  [ -f build/compile_commands.json ] || { echo "lint: build first (tools/test.sh)" >&2; exit 1; }
  mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cc$')
  clang-tidy -p build --quiet "${sources[@]}"
fi
echo "lint: ${#files[@]} files clean"
