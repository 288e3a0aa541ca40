# tunnelguard as a flake: the package (deploy/nixos/default.nix) and the NixOS module
# (deploy/nixos/module.nix). x86_64-linux only: bpf/include/vmlinux.h is pinned for it.
#   nixosConfigurations.host.modules = [ tunnelguard.nixosModules.default
#     { services.tunnelguard.enable = true; } ];
{
  description = "tunnelguard: BPF-LSM guard and latency meter for a Cloudflare Tunnel";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      packages.${system}.default = pkgs.callPackage ./deploy/nixos/default.nix { };

      nixosModules.default =
        { pkgs, lib, ... }:
        {
          imports = [ ./deploy/nixos/module.nix ];
          services.tunnelguard.package = lib.mkDefault self.packages.${pkgs.system}.default;
        };
    };
}
