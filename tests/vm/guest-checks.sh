# The checks the guest-side systemd scripts share (systemd-e2e-check.sh, notify-e2e-check.sh),
# sourced after the script sets SAY_PREFIX and defines dump() (what to print when a `need`
# fails). Each check prints "ok: NAME" or "FAIL: NAME" and counts failures in $fails.
fails=0
say() { echo "$SAY_PREFIX: $*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() {  # NAME COMMAND...
  local name=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
# need NAME COMMAND...: a check the rest depends on; on failure, the journal and exit 1.
need() {
  local name=$1; shift
  if "$@" >/tmp/need.out 2>&1; then ok "$name"; return 0; fi
  bad "$name"
  sed 's/^/  | /' /tmp/need.out
  dump
  exit 1
}
prop() { systemctl show -p "$2" --value "$1"; }
metrics() { curl -fsS --max-time 5 http://127.0.0.1:9612/metrics; }
# The sum of the series whose name and labels start with $1 ("name{label=...,"), 0 when none.
metric() { metrics 2>/dev/null | awk -v s="$1" 'index($1, s) == 1 {v += $2} END {print v + 0}'; }
# wait_for SECONDS COMMAND...: polls every 0.1 s.
wait_for() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
export -f metrics metric prop
