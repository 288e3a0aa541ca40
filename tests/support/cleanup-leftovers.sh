#!/usr/bin/env bash
# ctest's cleanup fixture (cleanup.leftovers, FIXTURES_CLEANUP tg_leftovers): runs after the
# tests that require it, also when one crashed or was killed, and removes what a test binary
# that is no longer running left behind:
#   - processes that carry its TG_TEST_OWNER mark (tests/support/subprocess.h),
#   - cgroups <cgroup2>/tg-*-<pid> (and what runs in them), pins /sys/fs/bpf/tg-*-<pid>,
#   - temp dirs /tmp/tunnelguard-test.<pid>.*.
# Only what belongs to a DEAD owner: the machine is shared, and another developer's tests may
# be running at this very moment with live owners. Prints one line per thing removed; fails
# (naming it) if something could not be removed.
set -u
failed=0
say() { printf 'cleanup-leftovers: %s\n' "$*"; }
fail() { say "could not remove $*"; failed=1; }

# alive PID[:STARTTIME] — the process exists (and, with a start time, is the same process).
alive() {
  local pid=${1%%:*} start=${1#*:} stat
  [[ $pid =~ ^[0-9]+$ ]] || return 0  # not ours to judge: treat as alive
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $start == "$1" ]] && return 0
  stat=${stat##*) }
  # Field 22 of stat is the 20th after "pid (comm) ".
  [[ $(awk '{print $20}' <<<"$stat") == "$start" ]]
}

kill_marked() {
  local env owner pid cmd
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}
    pid=${pid%/environ}
    owner=$({ tr '\0' '\n' <"$env"; } 2>/dev/null | sed -n 's/^TG_TEST_OWNER=//p')
    [[ -n $owner ]] || continue
    alive "$owner" && continue
    cmd=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-80)
    kill -9 "$pid" 2>/dev/null && say "killed $pid ($cmd) of dead test ${owner%%:*}"
  done
}

# Kills everything in a cgroup tree (cgroup.kill, else pid by pid) and removes it bottom-up.
remove_cgroup() {
  local cg=$1 i
  for i in $(seq 50); do
    if [[ -e $cg/cgroup.kill ]]; then
      echo 1 >"$cg/cgroup.kill" 2>/dev/null
    else
      find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
    fi
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ -d $cg ]] || return 0
    # Dying tasks leave the cgroup a moment after SIGKILL: wait for "populated 0".
    grep -q 'populated 1' "$cg/cgroup.events" 2>/dev/null && sleep 0.1
  done
  return 1
}

dead_owner_suffix() {  # NAME ends in -<pid> of a process that is gone
  local pid=${1##*-}
  [[ $pid =~ ^[0-9]+$ ]] && ! alive "$pid"
}

kill_marked
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
if [[ -n $cg2 ]]; then
  for cg in "$cg2"/tg-*; do
    [[ -d $cg ]] && dead_owner_suffix "$cg" || continue
    if remove_cgroup "$cg"; then say "removed cgroup $cg"; else fail "cgroup $cg"; fi
  done
fi
for pin in /sys/fs/bpf/tg-*; do
  [[ -e $pin ]] && dead_owner_suffix "$pin" || continue
  if rm -rf "$pin"; then say "removed pins $pin"; else fail "pins $pin"; fi
done
for dir in /tmp/tunnelguard-test.*.*; do
  [[ -d $dir ]] || continue
  owner=${dir#/tmp/tunnelguard-test.}
  owner=${owner%%.*}
  [[ $owner =~ ^[0-9]+$ ]] && ! alive "$owner" || continue
  if rm -rf "$dir"; then say "removed $dir"; else fail "$dir"; fi
done
exit "$failed"
