#!/usr/bin/env bash
# Installs every Debian 12 package tunnelguard needs to build, run its demo and run its tests.
# Idempotent: `apt-get update` runs once per machine (a stamp file), and only missing
# packages are installed, so a second run on a ready machine takes about a second.
set -euo pipefail

# Groups: `--demo` installs what tools/demo.sh builds and runs (build + demo), `--demo-vm` adds
# QEMU for `tools/demo.sh --vm`; no argument installs everything (tests, CI).
BUILD=(
  build-essential cmake ninja-build pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  prometheus-cpp-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libsystemd-dev libseccomp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  # man pages from --help (help2man); systemd's pkg-config file names the unit dir
  help2man systemd
)
DEMO=(nginx-light curl iproute2 procps ca-certificates)
VM=(qemu-system-x86 busybox-static cpio zstd xz-utils debian-archive-keyring)
TESTS=(
  clang-format clang-tidy
  prometheus wrk openssl python3
  # HTTP/2 clients for the latency tests' h2 cases (h2load)
  nghttp2-client
  # bench/run.sh section 6 (the bpftrace baseline), covered by ctest bench.smoke
  bpftrace
  # deploy/ and dashboards/ checks: promtool (prometheus), nix-instantiate for the NixOS
  # module, node/npm for the Grafana schema check, jq and python3-yaml for the provisioning files
  nix-bin jq nodejs python3-yaml
  # the README's dashboard picture (tools/render-dashboard-picture.sh)
  gnuplot-nox
  # the end-to-end test under real systemd (a Debian 12 container booted with systemd-nspawn)
  debootstrap systemd-container
  # packaging: the .deb (dpkg-shlibdeps in dpkg-dev, fakeroot), lintian; the completion checks
  # (bash-completion's pkg-config file, zsh, fish) and man page rendering (man-db)
  lintian dpkg-dev fakeroot bash-completion zsh fish man-db
)
case ${1:-} in
  --demo) PACKAGES=("${BUILD[@]}" "${DEMO[@]}"); need_npm=0 ;;
  --demo-vm) PACKAGES=("${BUILD[@]}" "${DEMO[@]}" "${VM[@]}"); need_npm=0 ;;
  "") PACKAGES=("${BUILD[@]}" "${DEMO[@]}" "${VM[@]}" "${TESTS[@]}"); need_npm=1 ;;
  *) echo "install-deps: unknown argument '$1' (--demo, --demo-vm, or none for everything)" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: must run as root (apt-get); re-run with sudo" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && { [ $need_npm = 0 ] || command -v npm >/dev/null; } && exit 0

export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/tunnelguard-updated
if [ ! -e "$stamp" ]; then
  apt-get update -qq
  touch "$stamp"
fi
[ ${#missing[@]} -eq 0 ] || echo "install-deps: installing ${missing[*]}" >&2
# Services from the packages (nginx, prometheus) must not start on install: the tests start
# their own instances on free ports.
policy=/usr/sbin/policy-rc.d
had_policy=0; [ -e "$policy" ] && had_policy=1
[ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
trap '[ $had_policy = 1 ] || rm -f "$policy"' EXIT
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's nodejs ships npm separately; some nodejs builds bundle it (and conflict with it).
[ $need_npm = 0 ] || command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null
