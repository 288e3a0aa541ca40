#!/usr/bin/env bash
# build-rootfs.sh CACHE EXTRA_PKGS BINARY... [--cpio] [--suite SUITE]: a Debian root file system
# for the tests that boot real systemd (e2e.systemd_nspawn, vm.systemd_e2e.*), cached in
# CACHE/rootfs and printed on stdout.
#
# debootstrap SUITE (bookworm, the default: systemd 252; or trixie: systemd 257), variant
# minbase, plus systemd, dbus, EXTRA_PKGS (comma-separated) and what the built BINARYs (built
# on this Debian 12 host) load: on bookworm the Debian packages of every shared library (dpkg -S
# of ldd's list); on another suite the host's copies of the libraries whose sonames that suite
# lacks (gRPC, protobuf, abseil, … of bookworm), put in /usr/local/lib (in ld.so's path; glibc
# and the rest are the suite's own, which are newer and compatible). One to three minutes the
# first time (a Debian mirror: the one the host's apt sources name for bookworm); rebuilt only
# when the package list changes (CACHE/stamp). Concurrent callers of one CACHE wait for each
# other (flock).
# --cpio also writes CACHE/rootfs.cpio (newc, ownership kept, docs/man pages/locales left out)
# for booting the tree as a VM's initramfs (tests/vm/run-in-vm.sh --rootfs).
# Needs root (debootstrap). Exit: 0 ok, 1 failed, 77 skipped (lib.sh's CI rule).
source "$(dirname "$0")/lib.sh"
cpio_too=0
suite=bookworm
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --cpio) cpio_too=1 ;;
    --suite) suite=${2:?--suite needs a name}; shift ;;
    *) args+=("$1") ;;
  esac
  shift
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

# Runtime libraries of the binaries (host paths).
libs() {
  for bin in "$@"; do
    [ -x "$bin" ] || fail "$bin is not an executable (built?)"
    ldd "$bin" | awk '$3 ~ /^\// {print $3}'
  done | sort -u
}
# ... -> Debian packages.
libpkgs() {
  libs "$@" | while read -r lib; do
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
# The host's copies of the libraries ROOT lacks (by soname), into ROOT/usr/local/lib.
bundle_libs() {
  local root=$1; shift
  mkdir -p "$root/usr/local/lib"
  libs "$@" | while read -r lib; do
    name=$(basename "$lib")
    [ -e "$root/usr/lib/x86_64-linux-gnu/$name" ] || [ -e "$root/lib/x86_64-linux-gnu/$name" ] ||
      cp -L "$lib" "$root/usr/local/lib/$name"
  done
  chroot "$root" ldconfig
}
if [ "$suite" = bookworm ]; then
  PKGS="systemd,dbus,$EXTRA,$(libpkgs "$@")"
else
  PKGS="systemd,dbus,$EXTRA"
fi
ROOTFS=$CACHE/rootfs
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8
# The stamp: the packages, and on another suite the suite and the bundled libraries' host paths.
STAMP=$PKGS
[ "$suite" = bookworm ] || STAMP="$suite $PKGS $(libs "$@" | paste -sd, -)"
if [ ! -f "$CACHE/stamp" ] || [ "$(cat "$CACHE/stamp")" != "$STAMP" ]; then
  # A debootstrap killed half-way may leave its /proc and /sys mounted in the tree.
  for m in proc sys; do umount "$ROOTFS.tmp/$m" 2>/dev/null || true; done
  rm -rf "$ROOTFS" "$ROOTFS.tmp" "$CACHE/rootfs.cpio" "$CACHE/stamp"
  m=$(mirror | head -1)
  [ -n "$m" ] || fail "no bookworm mirror in /etc/apt sources"
  echo "building the root file system (debootstrap $suite, +$PKGS)" >&2
  debootstrap --variant=minbase --include="$PKGS" "$suite" "$ROOTFS.tmp" "$m" >"$CACHE/debootstrap.log" 2>&1 ||
    fail "debootstrap failed:"$'\n'"$(tail -5 "$CACHE/debootstrap.log")"
  [ "$suite" = bookworm ] || bundle_libs "$ROOTFS.tmp" "$@"
  mv "$ROOTFS.tmp" "$ROOTFS"
  echo "$STAMP" >"$CACHE/stamp"
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
