#!/usr/bin/env bash
# ThreadSanitizer run of the tests where threads (and processes) meet: the unit tests (the
# /metrics server among them) and the pinned-config stress test (10,000 mode switches against
# canaries and concurrent attach runs). Not yet: the agent itself under TSan (the API test that
# switches modes while reading the status) — Debian's uninstrumented abseil/gRPC report races
# inside absl::GraphCycles at start-up and need a suppressions file first. A separate build
# directory with only the binaries these need; a report stops the instrumented process (halt_on_error) and
# fails the run. ctest runs it as tsan.threads (tests/CMakeLists.txt).
# Usage: sudo tools/tsan.sh [--build DIR]   (default build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-tsan
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    *) echo "tsan.sh: unknown argument '$1' (use --build DIR)" >&2; exit 2 ;;
  esac
done
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1 -g" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  >/dev/null
nice cmake --build "$build" -j"$(nproc)" --target tg_unit_tests tg_bpf_tests
built=$(date +%s)
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
# ConfineFace.* runs a forked child under a seccomp allow-list made for the uninstrumented face:
# no threads meet there, and TSan's runtime is not what those tests prove.
"$build"/tests/unit/tg_unit_tests --gtest_brief=1 --gtest_filter='-ConfineFace.*'
"$build"/tests/bpf/tg_bpf_tests --gtest_brief=1 --gtest_filter='PinnedConfigStressTest.*'
echo "tsan.sh: no data race reported; build $((built - start)) s, tests $(($(date +%s) - built)) s"
