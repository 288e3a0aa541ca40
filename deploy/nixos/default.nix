# The tunnelguard package, callPackage style: `pkgs.callPackage ./deploy/nixos/default.nix { }`
# (what module.nix and ../../flake.nix do).
# Notes for Nix builds:
# - The sandbox has no /sys/kernel/btf/vmlinux: the BPF programs build against the committed
#   bpf/include/vmlinux.h (CO-RE relocates them on the running kernel), so nothing is read
#   from the build machine's kernel.
# - BPF objects are compiled with clang for `-target bpf`; the cc-wrapper's hardening flags
#   (stack protector, zero-call-used-regs, fortify) are meaningless there and break it, so
#   the unwrapped clang is used for BPF (BPF_CLANG) while the wrapped one builds the agent.
# - Tests are not run in the build: they need root, cgroups and BPF (tests/README.md).
{
  lib,
  stdenv,
  cmake,
  ninja,
  pkg-config,
  llvmPackages,
  bpftools,
  libbpf,
  elfutils,
  zlib,
  prometheus-cpp,
  grpc,
  protobuf,
  gtest,
  systemd,
  nlohmann_json,
  cli11,
  fmt,
  libseccomp,
  help2man,
}:
stdenv.mkDerivation {
  pname = "tunnelguard";
  # The version is defined once, in CMakeLists.txt's project(); read from there.
  version =
    let
      lines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ../../CMakeLists.txt));
      found = builtins.filter (m: m != null) (map (builtins.match "project\\(tunnelguard VERSION ([0-9.]+) .*") lines);
    in
    builtins.head (builtins.head found);

  src = lib.cleanSource ../..;

  nativeBuildInputs = [
    cmake
    ninja
    pkg-config
    llvmPackages.clang-unwrapped
    llvmPackages.llvm
    bpftools
    protobuf
    grpc
    # man pages from --help (deploy/CMakeLists.txt)
    help2man
  ];

  buildInputs = [
    libbpf
    elfutils
    zlib
    prometheus-cpp
    grpc
    protobuf
    gtest
    systemd
    nlohmann_json
    cli11
    fmt
    libseccomp
  ];

  cmakeFlags = [ "-DBPF_CLANG=${llvmPackages.clang-unwrapped}/bin/clang" ];
  hardeningDisable = [ "zerocallusedregs" ];
  doCheck = false;

  meta = {
    description = "BPF-LSM guard and latency meter for a Cloudflare Tunnel under systemd";
    license = lib.licenses.asl20;
    platforms = [ "x86_64-linux" ];
    mainProgram = "tunnelguard";
  };
}
