# A minimal stand-in for the parts of nixpkgs' `lib` that deploy/nixos/module.nix uses, so
# the module can be evaluated with Debian's nix-instantiate and no nixpkgs (no network here).
# Option types carry a `check`; eval-module.nix throws on a value that fails it, as the real
# module system does. Keep it small: a function the module starts using must be added here,
# and the test fails loudly (missing attribute) until it is.
let
  type = name: check: { inherit name check; };
in
rec {
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = what: mkOption { type = types.bool; default = false; description = "Whether to enable ${what}."; };
  mkIf = cond: content: { _type = "if"; inherit cond content; };
  mkDefault = content: { _type = "override"; priority = 1000; inherit content; };
  literalExpression = text: { _type = "literalExpression"; inherit text; };

  optional = cond: x: if cond then [ x ] else [ ];
  concatStringsSep = builtins.concatStringsSep;
  mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
  hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
  removePrefix = p: s: if hasPrefix p s then builtins.substring (builtins.stringLength p) (-1) s else s;
  hasInfix = i: s: builtins.match ".*${escapeRegex i}.*" s != null;
  escapeRegex = builtins.replaceStrings [ "." "[" "]" "(" ")" "*" "+" "?" "^" "$" "|" "\\" ] [ "\\." "\\[" "\\]" "\\(" "\\)" "\\*" "\\+" "\\?" "\\^" "\\$" "\\|" "\\\\" ];
  splitString = sep: s: builtins.filter builtins.isString (builtins.split (escapeRegex sep) s);
  last = l: builtins.elemAt l (builtins.length l - 1);

  types = {
    bool = type "bool" builtins.isBool;
    str = type "str" builtins.isString;
    int = type "int" builtins.isInt;
    port = type "port" (v: builtins.isInt v && v >= 0 && v <= 65535);
    package = type "package" (v: builtins.isAttrs v && v ? outPath);
    enum = values: type "enum" (v: builtins.elem v values);
    listOf = t: type "listOf ${t.name}" (v: builtins.isList v && builtins.all t.check v);
    attrsOf = t: type "attrsOf ${t.name}" (v: builtins.isAttrs v && builtins.all (n: t.check v.${n}) (builtins.attrNames v));
    oneOf = ts: type "oneOf" (v: builtins.any (t: t.check v) ts);
  };
}
