# `nix-build` at the top of the repository builds the package (deploy/nixos/default.nix).
{ pkgs ? import <nixpkgs> { } }:
pkgs.callPackage ./deploy/nixos/default.nix { }
