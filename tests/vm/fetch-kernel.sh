#!/usr/bin/env bash
# fetch-kernel.sh KEY [--refresh]: puts a stock Debian kernel for the VM tests into the cache
# and prints the directory holding it (vmlinuz, config when the package has one, kernel.env).
#
# KEY is one entry of the test matrix:
#   6.1     bookworm (+updates, +security): the kernel an up-to-date Debian 12 host runs
#   6.12    trixie (+updates, +security):   the kernel an up-to-date Debian 13 host runs
#   newest  unstable and trixie-backports:  the newest kernel the archive offers
# The version is never written down here: it is what the suites' `linux-image-amd64`
# metapackage depends on today (the highest version among the KEY's suites), and kernel.env
# records which one was fetched. A cached kernel is used as is (no network) until --refresh.
#
# The cache lives outside the source tree: $TUNNELGUARD_VM_CACHE, default
# /var/cache/tunnelguard/vm-kernels. Layout:
#   KEY -> KEY-RELEASE_VERSION/   symlink, replaced atomically on refresh
#   KEY-RELEASE_VERSION/          immutable once complete (vmlinuz, config, kernel.env)
#   KEY.lock              flock: concurrent fetches of one KEY (ctest -j) wait for each other
# apt runs with private state (sources.list, lists, cache, empty dpkg status), so the host's
# apt configuration and state are neither read nor changed.
#
# Exit codes: 0 ok, 2 usage, 3 the kernel could not be fetched (archive unreachable, ...).
set -euo pipefail

usage() { echo "usage: $0 {6.1|6.12|newest} [--refresh]" >&2; exit 2; }
die() { echo "fetch-kernel: $*" >&2; exit 3; }

[ $# -ge 1 ] || usage
key=$1; shift
refresh=0
for a in "$@"; do
  case $a in
    --refresh) refresh=1 ;;
    *) usage ;;
  esac
done

mirror=${TUNNELGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${TUNNELGUARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
case $key in
  6.1) sources=("$mirror bookworm" "$mirror bookworm-updates" "$security bookworm-security") ;;
  6.12) sources=("$mirror trixie" "$mirror trixie-updates" "$security trixie-security") ;;
  newest) sources=("$mirror unstable" "$mirror trixie-backports") ;;
  *) usage ;;
esac

cache=${TUNNELGUARD_VM_CACHE:-/var/cache/tunnelguard/vm-kernels}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  die "cache $cache is not writable; run as root or set TUNNELGUARD_VM_CACHE to a writable dir"
fi

link=$cache/$key
have_kernel() { [ -f "$link/vmlinuz" ] && [ -f "$link/kernel.env" ]; }

# Fast path without the lock: a complete cache entry never changes once its link exists.
if [ $refresh = 0 ] && have_kernel; then
  readlink -f "$link"
  exit 0
fi

exec 9>"$cache/$key.lock"
flock 9
# Another run may have fetched it while this one waited for the lock.
if [ $refresh = 0 ] && have_kernel; then
  readlink -f "$link"
  exit 0
fi

# Holding the lock, any other work dir of this key is left over from a killed fetch.
rm -rf "$cache/.fetch-$key."*
work=$(mktemp -d "$cache/.fetch-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Private apt state: nothing of the host's apt configuration or status is read or written.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/parts" \
  "$work/apt/prefs" "$work/debs"
for s in "${sources[@]}"; do
  read -r uri suite <<<"$s"
  echo "deb [signed-by=$keyring] $uri $suite main"
done >"$work/apt/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o "Dir::Etc::SourceParts=$work/apt/parts"
  -o "Dir::Etc::Preferences=$work/apt/prefs/none"
  -o "Dir::Etc::PreferencesParts=$work/apt/prefs"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
  -o "Dir::State::status=/dev/null"
  -o "Acquire::Languages=none"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=amd64"
  # The work dir is not the _apt user's; download as the caller instead of warning about it.
  -o "APT::Sandbox::User=$(id -un)"
)
echo "fetch-kernel: $key: reading ${sources[*]}" >&2
apt-get "${apt_opts[@]}" -q=2 --error-on=any update >&2 || die "$key: apt-get update failed (archive unreachable?)"

# The highest linux-image-amd64 among the suites. apt's candidate would not do: backports
# suites are NotAutomatic, so apt prefers unstable's older version over trixie-backports'.
versions=$(apt-cache "${apt_opts[@]}" madison linux-image-amd64 | awk -F'|' '{gsub(/ /, "", $2); print $2}')
meta_version=
for v in $versions; do
  if [ -z "$meta_version" ] || dpkg --compare-versions "$v" gt "$meta_version"; then
    meta_version=$v
  fi
done
[ -n "$meta_version" ] || die "$key: no linux-image-amd64 in ${sources[*]}"
suite=$(apt-cache "${apt_opts[@]}" madison linux-image-amd64 |
  awk -F'|' -v v="$meta_version" '{gsub(/ /, "", $2)} $2 == v {n = split($3, a, " "); split(a[2], b, "/"); print b[1]; exit}')

# Package fields of one exact version: "depends_of PKG VERSION" prints its Depends names.
depends_of() {
  apt-cache "${apt_opts[@]}" show "$1=$2" | awk '/^Depends:/ {sub(/^Depends: */, ""); print; exit}' |
    tr ',' '\n' | sed -E 's/^ *//; s/ .*//; s/\|.*//'
}
image_pkg=$(depends_of linux-image-amd64 "$meta_version" | grep -E '^linux-image-[0-9]' | head -n1)
[ -n "$image_pkg" ] || die "$key: linux-image-amd64 $meta_version depends on no linux-image-VER"
release=${image_pkg#linux-image-}
# One immutable directory per exact package version (a rebuilt package keeps its release).
entry_name=$key-${release}_$meta_version
final=$cache/$entry_name

# Swaps the KEY link atomically: readers resolve it once, so a run in progress keeps its kernel.
point_link_at_final() {
  ln -sfn "$entry_name" "$work/link"
  mv -T "$work/link" "$link"
}
if [ -f "$final/vmlinuz" ] && [ -f "$final/kernel.env" ]; then
  point_link_at_final
  echo "fetch-kernel: $key: $release ($meta_version) is already in $final" >&2
  readlink -f "$link"
  exit 0
fi

# Debian's 7.x kernels are split: linux-image-VER is empty, the kernel is in linux-binary-VER
# (./usr/lib/modules/VER/vmlinuz) and its config in linux-base-VER. 6.x: all in linux-image-VER.
pkgs=("$image_pkg")
binary_pkg=$(depends_of "$image_pkg" "$meta_version" | grep -E '^linux-binary-' | head -n1 || true)
if [ -n "$binary_pkg" ]; then
  pkgs=("$binary_pkg")
  base_pkg=$(depends_of "$image_pkg" "$meta_version" | grep -E '^linux-base-[0-9]' | head -n1 || true)
  [ -n "$base_pkg" ] && pkgs+=("$base_pkg")
fi

echo "fetch-kernel: $key: linux-image-amd64 $meta_version ($suite) -> ${pkgs[*]}" >&2
(cd "$work/debs" && apt-get "${apt_opts[@]}" -q=2 download "${pkgs[@]/%/=$meta_version}") >&2 ||
  die "$key: apt-get download ${pkgs[*]} failed"

entry=$work/entry
mkdir -p "$entry/x"
for deb in "$work"/debs/*.deb; do
  # Only the kernel and its config are needed; never unpack the modules.
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$entry/x" --wildcards './boot/vmlinuz-*' './boot/config-*' \
      './usr/lib/modules/*/vmlinuz' './usr/lib/modules/*/config' 2>/dev/null || true
done
vmlinuz=$(find "$entry/x" -name 'vmlinuz*' -type f | head -n1)
[ -n "$vmlinuz" ] || die "$key: no vmlinuz in ${pkgs[*]}"
mv "$vmlinuz" "$entry/vmlinuz"
config=$(find "$entry/x" -name 'config*' -type f | head -n1)
[ -n "$config" ] && mv "$config" "$entry/config"
rm -rf "$entry/x"
cat >"$entry/kernel.env" <<EOF
KERNEL_KEY=$key
KERNEL_RELEASE=$release
KERNEL_VERSION=$meta_version
KERNEL_SUITE=$suite
KERNEL_PACKAGES="${pkgs[*]}"
KERNEL_SHA256=$(sha256sum "$entry/vmlinuz" | cut -d' ' -f1)
FETCHED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF

rm -rf "$final"
mv -T "$entry" "$final"
point_link_at_final
echo "fetch-kernel: $key: $release ($meta_version) in $final" >&2
readlink -f "$link"
