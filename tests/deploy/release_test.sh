#!/usr/bin/env bash
# release_test.sh VERSION [BINARY...]: the version is defined once (CMake's project(), passed
# here as VERSION) and everything else agrees with it; the licenses fit together.
#  - CHANGELOG.md's newest entry is VERSION;
#  - no other file writes the version down (default.nix reads it from CMakeLists.txt);
#  - each BINARY's `--version` prints "NAME VERSION";
#  - LICENSE is Apache-2.0 (what default.nix and the Debian package declare); every BPF source
#    is dual-licensed LGPL-2.1 OR BSD-2-Clause and declares "Dual BSD/GPL" to the kernel.
source "$(dirname "$0")/lib.sh"
VERSION=${1:?usage: release_test.sh VERSION [BINARY...]}
shift
cd "$REPO"

top=$(sed -n 's/^## \[\([^]]*\)\].*/\1/p' CHANGELOG.md | head -1)
[ "$top" = "$VERSION" ] || fail "CHANGELOG.md's newest entry is '$top', project() says $VERSION: add a '## [$VERSION]' entry"
ok "CHANGELOG.md's newest entry is $VERSION"

# Files that may name the version: CMakeLists.txt (the definition), the changelog, sample
# output in docs, and the Nix tests' fake store paths.
stray=$(git grep -lF "\"$VERSION\"" -- . ':!CMakeLists.txt' ':!CHANGELOG.md' ':!tests/deploy/nixos' ':!*.md' || true)
[ -z "$stray" ] || fail "the version $VERSION is written down again in: $stray (derive it from project())"
ok "the version is written only in CMakeLists.txt"

for bin in "$@"; do
  name=$(basename "$bin")
  got=$("$bin" --version) || fail "$name --version exited $?"
  [ "$got" = "$name $VERSION" ] || fail "$name --version printed '$got', expected '$name $VERSION'"
  ok "$name --version: $got"
done

head -3 LICENSE | grep -q "Apache License" || fail "LICENSE is not the Apache License 2.0"
grep -q 'license = lib.licenses.asl20' deploy/nixos/default.nix || fail "default.nix does not declare asl20"
for f in bpf/*.bpf.c; do
  head -1 "$f" | grep -qF 'SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)' ||
    fail "$f: first line must be the SPDX line (LGPL-2.1 OR BSD-2-Clause), see bpf/README.md"
  grep -qF 'char LICENSE[] SEC("license") = "Dual BSD/GPL";' "$f" ||
    fail "$f: declare SEC(\"license\") = \"Dual BSD/GPL\" (GPL-only helpers need it)"
done
for l in Apache-2.0 LGPL-2.1 BSD-2-Clause; do
  [ -s "LICENSES/$l.txt" ] || fail "LICENSES/$l.txt is missing"
done
ok "licenses: Apache-2.0 project, BPF sources LGPL-2.1 OR BSD-2-Clause, objects 'Dual BSD/GPL'"
