#!/usr/bin/env bash
# Installs every Debian 12 package tunnelguard needs to build, run its demo and run its tests.
# Idempotent: `apt-get update` runs once per machine (a stamp file), and only missing
# packages are installed, so a second run on a ready machine takes about a second.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  prometheus-cpp-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libsystemd-dev libseccomp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  clang-format clang-tidy
  # tests and demo
  qemu-system-x86 busybox-static cpio zstd xz-utils debian-archive-keyring nginx-light prometheus curl wrk
  iproute2 procps ca-certificates openssl python3
  # bench/run.sh section 6 (the bpftrace baseline), covered by ctest bench.smoke
  bpftrace
  # deploy/ and dashboards/ checks: systemd-analyze (systemd), promtool (prometheus),
  # nix-instantiate for the NixOS module, node/npm for the Grafana schema check, jq and
  # python3-yaml for the provisioning files
  systemd nix-bin jq nodejs python3-yaml
  # the README's dashboard picture (tools/render-dashboard-picture.sh)
  gnuplot-nox
  # the end-to-end test under real systemd (a Debian 12 container booted with systemd-nspawn)
  debootstrap systemd-container
)

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
[ ${#missing[@]} -eq 0 ] && command -v npm >/dev/null && exit 0

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
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null
