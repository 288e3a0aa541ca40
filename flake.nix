# tunnelguard as a flake: the package (deploy/nixos/default.nix), an overlay adding it as
# pkgs.tunnelguard, and the NixOS module (deploy/nixos/module.nix) with that overlay.
# x86_64-linux only: bpf/include/vmlinux.h is pinned for it.
#   nixosConfigurations.host.modules = [ tunnelguard.nixosModules.default
#     { services.tunnelguard.enable = true; } ];
{
  description = "tunnelguard: BPF-LSM guard and latency meter for a Cloudflare Tunnel";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    {
      overlays.default = final: _prev: { tunnelguard = final.callPackage ./deploy/nixos/default.nix { }; };

      packages.x86_64-linux.default = nixpkgs.legacyPackages.x86_64-linux.callPackage ./deploy/nixos/default.nix { };

      nixosModules.default = {
        imports = [ ./deploy/nixos/module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };
    };
}
