# Parses a systemd unit file into { Unit = { Key = value; }; Service = { … }; Install = { … }; }
# so that the NixOS module gives tunnelguard.service exactly the sandbox of the shipped
# deploy/systemd/tunnelguard.service (one source; its exposure score is tested there).
# A key given more than once (SystemCallFilter=) becomes a list, which NixOS renders as
# repeated lines again. Comments, blank lines and line continuations are not kept: the
# shipped unit uses no continuations. Plain builtins only, so the stand-in lib in
# tests/deploy/nixos/ and nixpkgs' lib both work.
text:
let
  lines = builtins.filter builtins.isString (builtins.split "\n" text);
  step =
    acc: line:
    let
      section = builtins.match "\\[([A-Za-z]+)][[:space:]]*" line;
      pair = builtins.match "([A-Za-z]+)=(.*)" line;
      s = acc.section;
      current = acc.result.${s} or { };
      key = builtins.elemAt pair 0;
      value = builtins.elemAt pair 1;
      merged =
        if !(current ? ${key}) then
          value
        else if builtins.isList current.${key} then
          current.${key} ++ [ value ]
        else
          [ current.${key} value ];
    in
    if section != null then
      acc // { section = builtins.head section; }
    else if pair != null && s != null then
      acc // { result = acc.result // { ${s} = current // { ${key} = merged; }; }; }
    else
      acc;
in
(builtins.foldl' step {
  section = null;
  result = { };
} lines).result
