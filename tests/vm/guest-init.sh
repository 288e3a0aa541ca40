#!/bin/busybox sh
# shellcheck shell=dash
# /init of the VM test guest (PID 1, busybox ash). Mounts what BPF-LSM tests need, runs the
# test command once and prints a verdict the harness can trust, then powers the guest off.
#
# The nonce is read from /tg/nonce and the file is deleted before the test runs, so the test
# (or anything it prints) cannot produce a verdict line that carries it. The harness accepts
# only "TG-VERDICT <nonce> ..." lines, and "TG-START <nonce>" tells it the guest reached the
# test (anything missing before that is an early-boot death, which the harness may retry).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
# The serial console is a tty; keep colour escapes out of the log the harness parses.
export GTEST_COLOR=no

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /root
# The test binaries sit at their host paths, which may be under /tmp (a clone in /tmp): the
# fresh tmpfs gets a copy of what the initramfs put there instead of hiding it.
mkdir -p /run/tmp
mount -t tmpfs -o mode=1777 tmpfs /run/tmp
cp -a /tmp/. /run/tmp/
rm -rf /tmp/* 2>/dev/null || true
mount -o move /run/tmp /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
ip link set lo up 2>/dev/null || true

nonce=$(cat /tg/nonce)
rm -f /tg/nonce
# shellcheck source=/dev/null
. /tg/env.sh

echo "TG-START $nonce kernel=$(uname -r) uptime=$(cut -d" " -f1 /proc/uptime)s lsm=$(cat /sys/kernel/security/lsm)"
# shellcheck source=/dev/null  # tests/vm/guest-verdict.sh
. /tg/verdict.sh
tg_run_test "$nonce"
poweroff -f
