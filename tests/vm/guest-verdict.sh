# shellcheck shell=sh
# /tg/verdict.sh in every VM test guest, sourced by its /init (guest-init.sh under busybox,
# guest-init-systemd.sh under systemd): the one place that runs the test and words the verdict.
#
# tg_run_test NONCE: runs /tg/cmd.sh (stdin /dev/null) and prints
# "TG-VERDICT NONCE PASS|FAIL rc=N" on a line of its own, then syncs. The caller has deleted
# /tg/nonce before, so the test cannot read the nonce.
tg_run_test() {
  rc=0
  /bin/sh /tg/cmd.sh </dev/null || rc=$?
  # A test's last line may lack a newline; keep the verdict on a line of its own.
  echo
  if [ "$rc" = 0 ]; then
    echo "TG-VERDICT $1 PASS rc=$rc"
  else
    echo "TG-VERDICT $1 FAIL rc=$rc"
  fi
  sync
}
