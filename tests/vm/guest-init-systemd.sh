#!/bin/sh
# /init of a VM test guest booted with real systemd as PID 1 (run-in-vm.sh --rootfs): the
# kernel unpacked a Debian root file system into RAM (no /etc/initrd-release, so systemd runs
# it as the real system, not as an initrd). Two roles:
#
#   /init [ARGS]       as PID 1, before systemd: prints "TG-START <nonce>" (the harness's
#                      marker that the kernel reached user space; an early-boot death is
#                      retried, a test never) and execs systemd, which mounts proc, sys,
#                      cgroup2, bpffs and securityfs itself.
#   /init --run-test   from tg-vm-test.service once the system is up (multi-user.target): reads
#                      the nonce and deletes it (mode 0400: only root could read it anyway),
#                      runs /tg/cmd.sh, prints "TG-VERDICT <nonce> PASS|FAIL rc=N" to the
#                      console and powers the guest off at once.
if [ "${1:-}" != --run-test ]; then
  mount -t proc proc /proc 2>/dev/null || true
  echo "TG-START $(cat /tg/nonce) kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)s init=systemd"
  exec /lib/systemd/systemd "$@"
fi

nonce=$(cat /tg/nonce)
rm -f /tg/nonce
# shellcheck source=/dev/null
. /tg/env.sh
echo "TG-SYSTEMD-UP uptime=$(cut -d' ' -f1 /proc/uptime)s $(systemctl is-system-running 2>&1)" \
  "lsm=$(cat /sys/kernel/security/lsm)"
# shellcheck source=/dev/null  # tests/vm/guest-verdict.sh
. /tg/verdict.sh
tg_run_test "$nonce"
# The guest's root is RAM: nothing to unmount cleanly, so power off without stopping units.
systemctl poweroff --force --force
