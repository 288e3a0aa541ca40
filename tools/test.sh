#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds tunnelguard, and runs every test
# through ctest: unit, bpf (this host's kernel), vm (stock Debian kernels under QEMU), e2e.
# Usage: sudo ./tools/test.sh [extra ctest args, e.g. -L unit or -R smoke]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the tests load BPF programs and make cgroups: run as root (sudo $0)" >&2
  exit 1
fi
./tools/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)"
cd build
# -j: a QEMU guest (TCG, one host thread) is PROCESSORS 1, so guests pair up on two cores;
# every host test that times, binds or loads (bpf, e2e, bench) is RUN_SERIAL and runs alone.
rc=0
ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@" || rc=$?
if [ "$rc" != 0 ]; then
  # A CI log keeps its head and tail: repeat each failed test's failing checks last, so the
  # reason is there even when the middle of a long log is cut.
  echo "=== test.sh: failed checks (from Testing/Temporary/LastTest.log) ==="
  grep -aE -A4 '^(  guest\| )?(FAIL: |run-in-vm: FAIL)|\[  FAILED  \]|: Failure$' \
    Testing/Temporary/LastTest.log | tail -n 80 || true
fi
exit "$rc"
