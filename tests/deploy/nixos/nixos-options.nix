# Stand-in for the parts of NixOS (nixpkgs' nixos/modules, which is not here) that
# deploy/nixos/module.nix sets or reads: the option declarations only, with the types and
# merge rules NixOS gives them, written against nixpkgs' real lib. The one rule that matters
# most is systemd's unit option merge (nixos/lib/systemd-unit-options.nix): definitions that
# are lists concatenate (so a unit's own ExecStartPre= and the module's both run, in priority
# order), any other value must be equal in every definition (so a different
# RestrictAddressFamilies= is an error, not a silent override).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: builtins.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  strings = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  service = types.submodule {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      after = strings;
      before = strings;
      wants = strings;
      requires = strings;
      wantedBy = strings;
      restartTriggers = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };
  list = type: mkOption {
    type = types.listOf type;
    default = [ ];
  };
in
{
  options = {
    assertions = list types.unspecified;
    warnings = list types.str;
    systemd.services = mkOption {
      type = types.attrsOf service;
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule { });
      default = { };
    };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule { options.text = mkOption { type = types.lines; }; });
      default = { };
    };
    networking.firewall.allowedTCPPorts = list types.port;
    boot.kernelParams = list types.str;
    security.lsm = mkOption {
      type = types.uniq (types.listOf types.str);
      default = [ ];
    };
    nixpkgs.overlays = list types.unspecified;
  };
}
