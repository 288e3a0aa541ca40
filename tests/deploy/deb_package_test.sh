#!/usr/bin/env bash
# The Debian package (deploy/debian/): built by CPack from BUILD_DIR into OUT_DIR, then
#  - its control fields: name, the version of project(), amd64, Depends from dpkg-shlibdeps
#    (libbpf, libsystemd, gRPC …) plus systemd, the maintainer scripts and conffiles;
#  - its contents (dpkg -c): binaries, the config as a conffile in /etc, units in systemd's
#    unit dir, sysusers, man pages, completions, share/tunnelguard, copyright, changelog;
#  - lintian: every tag it prints must be listed in deploy/debian/lintian-expected.txt, where
#    each is explained; a new tag fails the test.
# The .deb stays in OUT_DIR for vm.systemd_e2e (fixture tg_deb). Usage: deb_package_test.sh
# BUILD_DIR OUT_DIR VERSION
source "$(dirname "$0")/lib.sh"
require_tool cpack cmake
require_tool dpkg-shlibdeps dpkg-dev
require_tool lintian lintian
BUILD=${1:?usage}; OUT=${2:?usage}; VERSION=${3:?usage}
DEB=$OUT/tunnelguard_${VERSION}_amd64.deb

rm -rf "$OUT"
start=$(date +%s.%N)
cpack --config "$BUILD/CPackConfig.cmake" -B "$OUT" >"$TMP/cpack.log" 2>&1 ||
  fail "cpack failed:"$'\n'"$(tail -20 "$TMP/cpack.log")"
[ -f "$DEB" ] || fail "cpack made no $DEB: $(ls "$OUT")"
ok "cpack: $(basename "$DEB") ($(du -k "$DEB" | cut -f1) KiB) in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"

field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = tunnelguard ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$VERSION" ] || fail "Version: $(field Version), project() says $VERSION"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
deps=$(field Depends)
for d in libbpf1 libsystemd0 libgrpc++1.51 libc6 systemd; do
  tr ',' '\n' <<<"$deps" | sed 's/^ *//; s/ .*//' | grep -qxF "$d" || fail "Depends lacks $d (dpkg-shlibdeps): $deps"
done
ok "control: tunnelguard $VERSION amd64, Depends: $deps"

dpkg-deb -e "$DEB" "$TMP/control"
for f in postinst prerm postrm conffiles; do
  [ -f "$TMP/control/$f" ] || fail "control.tar lacks $f"
done
grep -qx /etc/tunnelguard/tunnelguard.conf "$TMP/control/conffiles" || fail "the config is not a conffile"
ok "control: postinst, prerm, postrm, conffiles (/etc/tunnelguard/tunnelguard.conf)"

dpkg -c "$DEB" | awk '{print $6}' | sed 's|^\.||' >"$TMP/contents"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
for f in /usr/bin/tunnelguard /usr/bin/tunnelctl /etc/tunnelguard/tunnelguard.conf \
    "$unitdir/tunnelguard.service" "$unitdir/cloudflared-tunnel.service.d/tunnelguard.conf" \
    "$unitdir/cloudflared.service.d/tunnelguard.conf" \
    /usr/lib/sysusers.d/tunnelguard.conf /usr/share/man/man1/tunnelguard.1.gz \
    /usr/share/man/man1/tunnelctl.1.gz /usr/share/bash-completion/completions/tunnelguard \
    /usr/share/zsh/vendor-completions/_tunnelctl /usr/share/fish/vendor_completions.d/tunnelguard.fish \
    /usr/share/tunnelguard/prometheus/tunnelguard.rules.yml /usr/share/tunnelguard/grafana/tunnelguard.json \
    /usr/share/doc/tunnelguard/copyright /usr/share/doc/tunnelguard/changelog.gz; do
  grep -qx -- "$f" "$TMP/contents" || fail "the package lacks $f"
done
ok "contents: $(grep -vc '/$' "$TMP/contents") files, the expected ones among them"

lintian --tag-display-limit 0 "$DEB" >"$TMP/lintian" 2>&1 || true
sed -n 's/^\([EWIPX]\): tunnelguard[^:]*: \([^ ]*\).*/\1 \2/p' "$TMP/lintian" | LC_ALL=C sort -u >"$TMP/tags"
grep -v '^#' "$REPO/deploy/debian/lintian-expected.txt" | awk 'NF {print $1, $2}' | LC_ALL=C sort -u >"$TMP/expected"
new=$(LC_ALL=C comm -23 "$TMP/tags" "$TMP/expected")
[ -z "$new" ] || fail "lintian tags not explained in deploy/debian/lintian-expected.txt:"$'\n'"$new"$'\n'"full output:"$'\n'"$(cat "$TMP/lintian")"
ok "lintian: $(wc -l <"$TMP/tags") tag(s), each explained in deploy/debian/lintian-expected.txt"
sed 's/^/  lintian| /' "$TMP/lintian"
