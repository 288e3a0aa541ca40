# Evaluates one NixOS module against the stand-in lib (lib.nix), the way the module system
# does for a single module: option values = the user's settings (type-checked) or the
# defaults; `config` seen by the module = the user's config with those values; result = the
# module's `config` with mkIf/mkDefault resolved. What it leaves out (merging with other
# modules, priorities between definitions) is not what module.nix relies on.
{ module, userConfig }:
let
  lib = import ./lib.nix;
  pkgs = {
    # The package stand-in: a store-path-like attrset, as a derivation would interpolate.
    callPackage = _path: _args: { name = "tunnelguard-0.1.0"; outPath = "/nix/store/00000000000000000000000000000000-tunnelguard-0.1.0"; };
  };

  isOption = v: builtins.isAttrs v && (v._type or null) == "option";

  # values OPTIONS USER PATH: each option's checked value.
  values =
    opts: user: path:
    builtins.mapAttrs (
      name: opt:
      let
        p = "${path}.${name}";
      in
      if isOption opt then
        (
          if user ? ${name} then
            (if opt.type.check user.${name} then user.${name} else throw "${p}: value is not of type ${opt.type.name}")
          else if opt ? default then
            opt.default
          else
            throw "${p} has no default and is not set"
        )
      else
        values opt (user.${name} or { }) p
    ) opts
    // (
      let
        unknown = builtins.filter (n: !(opts ? ${n})) (builtins.attrNames user);
      in
      if unknown == [ ] then { } else throw "${path}: no such option(s): ${toString unknown}"
    );

  # resolve V: mkIf/mkDefault removed, recursively.
  resolve =
    v:
    if builtins.isAttrs v && (v._type or null) == "if" then
      (if v.cond then resolve v.content else { })
    else if builtins.isAttrs v && (v._type or null) == "override" then
      resolve v.content
    else if builtins.isAttrs v && !(v ? outPath) then
      builtins.mapAttrs (_: resolve) v
    else
      v;

  evaluated = module { inherit config lib pkgs; };
  tgOptions = evaluated.options.services.tunnelguard;
  config = userConfig // {
    services = (userConfig.services or { }) // {
      tunnelguard = values tgOptions (userConfig.services.tunnelguard or { }) "services.tunnelguard";
    };
  };
in
resolve evaluated.config
