#!/usr/bin/env bash
# build-initramfs.sh [--rootfs CPIO] OUT NONCE_FILE CMD_FILE ENV_FILE BINARY...: writes the VM
# test guest's initramfs (uncompressed cpio newc) to OUT.
#
# It holds static busybox, tests/vm/guest-init.sh as /init, each BINARY at its own absolute
# path (so a test finds its helpers next to itself as on the host) with every shared library
# `ldd` lists, the loader included (a BINARY may also be a data file, copied as it is, or a
# directory, copied whole), and /tg/{nonce,cmd.sh,env.sh,verdict.sh}. Uncompressed
# because the guest decompresses far slower (TCG) than it reads a few more megabytes.
#
# --rootfs CPIO: a guest with real systemd as PID 1. OUT is CPIO (a Debian root file system,
# tests/deploy/build-rootfs.sh --cpio) followed by a second archive with
# tests/vm/guest-init-systemd.sh as /init, tests/vm/tg-vm-test.service, /tg/ and the BINARYs
# (their libraries come from the root's packages); the kernel unpacks both, in order.
set -euo pipefail

rootfs_cpio=''
if [ "${1:-}" = --rootfs ]; then rootfs_cpio=$2; shift 2; fi
[ $# -ge 4 ] || { echo "usage: $0 [--rootfs CPIO] OUT NONCE_FILE CMD_FILE ENV_FILE BINARY..." >&2; exit 2; }
out=$1 nonce_file=$2 cmd_file=$3 env_file=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)

root=$(mktemp -d "${out}.root.XXXXXX")
trap 'rm -rf "$root"' EXIT
if [ -n "$rootfs_cpio" ]; then
  # Only what this archive adds: a directory entry would reset an existing directory's mode
  # (/tmp) when the kernel unpacks it over the root file system.
  mkdir -p "$root"/{tg,dev,etc/systemd/system,etc/tmpfiles.d}
  install -m 0755 "$here/guest-init-systemd.sh" "$root/init"
  # Debian's tmpfiles.d/tmp.conf ("D /tmp") empties /tmp at boot, and the test's files sit at
  # their host paths — under /tmp for a checkout there (a CI clone in /tmp/ci-clone vanished).
  ln -s /dev/null "$root/etc/tmpfiles.d/tmp.conf"
  install -m 0644 "$here/tg-vm-test.service" "$root/etc/systemd/system/tg-vm-test.service"
else
  busybox=/bin/busybox  # busybox-static's; the dynamic busybox package uses the same path
  ldd "$busybox" >/dev/null 2>&1 && {
    echo "build-initramfs: $busybox is not static; install busybox-static" >&2; exit 3; }
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,tg,etc}
  cp "$busybox" "$root/bin/busybox"
  install -m 0755 "$here/guest-init.sh" "$root/init"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
fi
install -m 0644 "$here/guest-verdict.sh" "$root/tg/verdict.sh"
install -m 0400 "$nonce_file" "$root/tg/nonce"
install -m 0644 "$cmd_file" "$root/tg/cmd.sh"
install -m 0644 "$env_file" "$root/tg/env.sh"

# Copies a file to the same absolute path in the guest, following symlinks (the guest has no
# merged-/usr links; each path ldd prints becomes a real file there).
put() {
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
}

# Puts every shared library `ldd` lists for $1 (loader included) at its path in the guest.
# ldd lines: "libx.so => /path (0x..)", "/lib64/ld-linux-x86-64.so.2 (0x..)", "linux-vdso...".
# A static binary has none (ldd then fails, which is fine).
put_libs() {
  { ldd "$1" 2>/dev/null || true; } | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
    [ -e "$root$lib" ] || put "$lib"
  done
}

for bin in "$@"; do
  if [ -d "$bin" ]; then
    # A directory (e.g. python3's standard library): copied whole, test suites and caches
    # left out, with the libraries its extension modules need.
    dir=$(readlink -f "$bin")
    mkdir -p "$root$dir"
    (cd "$dir" && find . \( -name test -o -name tests -o -name __pycache__ -o -name idlelib \
        -o -name tkinter -o -name turtledemo \) -prune -o -print0 |
      cpio -0 -pdmL --quiet "$root$dir")
    find "$dir" -name '*.so' -print0 | while IFS= read -r -d '' so; do put_libs "$so"; done
    continue
  fi
  [ -f "$bin" ] || { echo "build-initramfs: $bin is not a file or directory" >&2; exit 3; }
  bin=$(readlink -f "$bin")
  put "$bin"
  # A data file (e.g. a .deb, README.md) travels as it is; an executable with its libraries.
  [ -n "$rootfs_cpio" ] || [ ! -x "$bin" ] || put_libs "$bin"
done

# /dev/console must exist before devtmpfs is mounted, or /init starts without stdout. A
# device node cannot be created without root, so it is written as a second cpio archive by
# hand (newc format; the kernel unpacks concatenated archives in order).
newc_entry() {  # name mode rdevmajor rdevminor
  local name=$1 mode=$2 major=$3 minor=$4 namesize=$((${#1} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    0 "$mode" 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  # Header (110 bytes) plus name, padded to a multiple of 4.
  local pad=$(((4 - (110 + namesize) % 4) % 4))
  head -c "$pad" /dev/zero
}

{
  [ -z "$rootfs_cpio" ] || cat "$rootfs_cpio"
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet)
} >"$out.tmp"
{
  newc_entry dev/console $((0020000 | 0600)) 5 1
  newc_entry TRAILER!!! 0 0 0
} >>"$out.tmp"
mv "$out.tmp" "$out"
