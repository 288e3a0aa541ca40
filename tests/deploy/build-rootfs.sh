#!/usr/bin/env bash
# build-rootfs.sh CACHE EXTRA_PKGS BINARY... [--cpio]: a Debian 12 root file system for the
# tests that boot real systemd (e2e.systemd_nspawn, vm.systemd_e2e.*), cached in CACHE/rootfs
# and printed on stdout.
#
# debootstrap bookworm, variant minbase, plus systemd, dbus, EXTRA_PKGS (comma-separated) and
# the Debian packages of every shared library a BINARY loads (dpkg -S of ldd's list), so the
# built binaries run in it unchanged. One to three minutes the first time (a Debian mirror: the one
# the host's apt sources name for bookworm); rebuilt only when the package list changes
# (CACHE/stamp). Concurrent callers of one CACHE wait for each other (flock).
# --cpio also writes CACHE/rootfs.cpio (newc, ownership kept, docs/man pages/locales left out)
# for booting the tree as a VM's initramfs (tests/vm/run-in-vm.sh --rootfs).
# Needs root (debootstrap). Exit: 0 ok, 1 failed, 77 skipped (lib.sh's CI rule).
source "$(dirname "$0")/lib.sh"
cpio_too=0
args=()
for a in "$@"; do
  if [ "$a" = --cpio ]; then cpio_too=1; else args+=("$a"); fi
done
set -- "${args[@]}"
[ $# -ge 3 ] || fail "usage: $0 CACHE EXTRA_PKGS BINARY... [--cpio]"
if [ "$(id -u)" != 0 ]; then
  [ "${CI:-}" = true ] && fail "needs root (debootstrap)"
  echo "SKIP: needs root (debootstrap)" >&2; exit 77
fi
require_tool debootstrap debootstrap
[ $cpio_too = 0 ] || require_tool cpio cpio
CACHE=$1 EXTRA=$2
shift 2

# Runtime libraries of the binaries -> Debian packages.
libpkgs() {
  for bin in "$@"; do
    [ -x "$bin" ] || fail "$bin is not an executable (built?)"
    ldd "$bin" | awk '$3 ~ /^\// {print $3}'
  done | sort -u | while read -r lib; do
    p=$(realpath "$lib")
    dpkg -S "$p" 2>/dev/null || dpkg -S "/usr${p#/usr}" 2>/dev/null || dpkg -S "${p#/usr}" 2>/dev/null
  done | cut -d: -f1 | sort -u | paste -sd, -
}
# The host's own Debian mirror for bookworm (from its apt sources), not a hard-coded one.
mirror() {
  awk '/^URIs:/ {u = $2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null ||
    true
  awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true
}
PKGS="systemd,dbus,$EXTRA,$(libpkgs "$@")"
ROOTFS=$CACHE/rootfs
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8
if [ ! -f "$CACHE/stamp" ] || [ "$(cat "$CACHE/stamp")" != "$PKGS" ]; then
  # A debootstrap killed half-way may leave its /proc and /sys mounted in the tree.
  for m in proc sys; do umount "$ROOTFS.tmp/$m" 2>/dev/null || true; done
  rm -rf "$ROOTFS" "$ROOTFS.tmp" "$CACHE/rootfs.cpio" "$CACHE/stamp"
  m=$(mirror | head -1)
  [ -n "$m" ] || fail "no bookworm mirror in /etc/apt sources"
  echo "building the root file system (debootstrap bookworm, +$PKGS)" >&2
  debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOTFS.tmp" "$m" >"$CACHE/debootstrap.log" 2>&1 ||
    fail "debootstrap failed:"$'\n'"$(tail -5 "$CACHE/debootstrap.log")"
  mv "$ROOTFS.tmp" "$ROOTFS"
  echo "$PKGS" >"$CACHE/stamp"
fi
if [ $cpio_too = 1 ] && [ ! "$CACHE/rootfs.cpio" -nt "$CACHE/stamp" ]; then
  # The guest unpacks this into RAM under TCG: what it never reads is left out.
  (cd "$ROOTFS" && find . -mindepth 1 \( -path ./usr/share/doc -o -path ./usr/share/man \
      -o -path ./usr/share/locale -o -path ./usr/share/info -o -path ./var/cache/apt \
      -o -path ./var/lib/apt/lists -o -path ./usr/lib/x86_64-linux-gnu/gconv \) -prune -o -print |
    LC_ALL=C sort | cpio -o -H newc --quiet) >"$CACHE/rootfs.cpio.tmp"
  mv "$CACHE/rootfs.cpio.tmp" "$CACHE/rootfs.cpio"
fi
echo "$ROOTFS"
