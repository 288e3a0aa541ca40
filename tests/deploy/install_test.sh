#!/usr/bin/env bash
# The install rules, exercised: `cmake --install BUILD_DIR --prefix P` into a DESTDIR, for
# P=/usr (a package) and P=/usr/local (by hand), then:
#  - the tree is exactly the expected one (no file missing, none extra);
#  - the units name P's binary and the config's real place (/etc for /usr, P/etc otherwise);
#  - `systemd-analyze verify --root` on the installed units prints nothing;
#  - systemd-sysusers on the installed sysusers file makes group tunnelguard.
# The DESTDIR is usr-merged (/lib -> usr/lib) like Debian 12 and later, so systemd's
# pkg-config unit dir (/lib/systemd/system on Debian 12) lands in usr/lib as on a real host.
# Usage: install_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
require_tool systemd-analyze systemd
BUILD=${1:?usage: install_test.sh BUILD_DIR}

# install_into PREFIX: a fresh usr-merged DESTDIR holding only what the install put there.
install_into() {
  local d=$TMP/tree${1//\//_}
  mkdir -p "$d/usr/lib" "$d/usr/bin"
  ln -s usr/lib "$d/lib"
  ln -s usr/bin "$d/bin"
  DESTDIR=$d cmake --install "$BUILD" --prefix "$1" >"$TMP/install.log" 2>&1 ||
    fail "cmake --install --prefix $1 failed:"$'\n'"$(tail -5 "$TMP/install.log")"
  echo "$d"
}

# files ROOT: every file and symlink under ROOT but the usr-merge links, sorted.
files() {
  (cd "$1" && find . -mindepth 1 ! -type d ! -path ./lib ! -path ./bin | sed 's|^\./|/|' | LC_ALL=C sort)
}

# expected PREFIX ETC: the tree for that prefix.
expected() {
  local p=$1 etc=$2 zsh=$1/share/zsh/site-functions
  [ "$p" != /usr ] || zsh=/usr/share/zsh/vendor-completions
  cat <<LIST | LC_ALL=C sort
$p/bin/tunnelctl
$p/bin/tunnelguard
$p/share/man/man1/tunnelctl.1.gz
$p/share/man/man1/tunnelguard.1.gz
$p/share/bash-completion/completions/tunnelctl
$p/share/bash-completion/completions/tunnelguard
$p/share/fish/vendor_completions.d/tunnelctl.fish
$p/share/fish/vendor_completions.d/tunnelguard.fish
$zsh/_tunnelctl
$zsh/_tunnelguard
$etc/tunnelguard/tunnelguard.conf
$p/lib/sysusers.d/tunnelguard.conf
$p/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf
$p/lib/systemd/system/cloudflared.service.d/tunnelguard.conf
$p/lib/systemd/system/tunnelguard.service
$p/share/doc/tunnelguard/CHANGELOG.md
$p/share/doc/tunnelguard/README.md
$p/share/doc/tunnelguard/systemd/README.md
$p/share/doc/tunnelguard/systemd/tunnelguard-optional.conf
$p/share/tunnelguard/grafana/README.md
$p/share/tunnelguard/grafana/provisioning/dashboards/tunnelguard.yml
$p/share/tunnelguard/grafana/provisioning/datasources/prometheus.yml
$p/share/tunnelguard/grafana/tunnelguard.json
$p/share/tunnelguard/prometheus/README.md
$p/share/tunnelguard/prometheus/prometheus-file-sd.yml
$p/share/tunnelguard/prometheus/prometheus.yml
$p/share/tunnelguard/prometheus/targets/tunnelguard-homelab.yml
$p/share/tunnelguard/prometheus/tunnelguard.rules.yml
$p/share/tunnelguard/systemd/cloudflared-tunnel.service
LIST
}

# check_prefix PREFIX ETC
check_prefix() {
  local p=$1 etc=$2 t r
  t=$(install_into "$p")
  diff <(expected "$p" "$etc") <(files "$t") >"$TMP/diff" ||
    fail "prefix $p: installed tree differs from the expected one (< missing, > extra):"$'\n'"$(cat "$TMP/diff")"
  ok "prefix $p: the tree ($(expected "$p" "$etc" | wc -l) files)"
  # The same tree in a root with the host's units, for verify and sysusers.
  r=$TMP/root${p//\//_}
  mkdir -p "$r/usr/lib" "$r/usr/bin"
  ln -s usr/lib "$r/lib"
  ln -s usr/bin "$r/bin"
  unit_root "$r"
  for top in "$t"/*; do [ -L "$top" ] || cp -a "$top" "$r/"; done

  local unit=$r$p/lib/systemd/system/tunnelguard.service
  local dropin=$r$p/lib/systemd/system/cloudflared-tunnel.service.d/tunnelguard.conf
  grep -qx "ExecStart=$p/bin/tunnelguard run --config $etc/tunnelguard/tunnelguard.conf" "$unit" ||
    fail "prefix $p: tunnelguard.service's ExecStart= is not '$p/bin/tunnelguard run --config $etc/...':"$'\n'"$(grep ExecStart= "$unit")"
  for d in "$dropin" "$r$p/lib/systemd/system/cloudflared.service.d/tunnelguard.conf"; do
    grep -qx "ExecStartPre=+$p/bin/tunnelguard attach --unit %n --policy-from-unit" "$d" ||
      fail "prefix $p: $d's ExecStartPre= does not name $p/bin/tunnelguard"
  done
  grep -q "^Documentation=file:$p/share/doc/tunnelguard/systemd/README.md" "$unit" ||
    fail "prefix $p: Documentation= does not name the installed README"
  ok "prefix $p: units name $p/bin/tunnelguard and $etc/tunnelguard/tunnelguard.conf"

  # systemd reads units from /usr/lib and /usr/local/lib: verified where they were installed.
  install -m 0644 "$REPO/deploy/systemd/cloudflared-tunnel.service" "$r/etc/systemd/system/"
  verify_clean "$r" tunnelguard.service cloudflared-tunnel.service
  ok "prefix $p: systemd-analyze verify of the installed units is clean"

  systemd-sysusers --root="$r" >/dev/null 2>&1 || fail "prefix $p: systemd-sysusers --root failed"
  grep -q '^tunnelguard:' "$r/etc/group" || fail "prefix $p: sysusers made no tunnelguard group from $p/lib/sysusers.d"
  ok "prefix $p: systemd-sysusers makes group tunnelguard"
}

check_prefix /usr /etc
check_prefix /usr/local /usr/local/etc

# A second install keeps the admin's config.
r=$TMP/tree_usr
echo "# edited" >>"$r/etc/tunnelguard/tunnelguard.conf"
DESTDIR=$r cmake --install "$BUILD" --prefix /usr >/dev/null 2>&1 || fail "second install failed"
tail -1 "$r/etc/tunnelguard/tunnelguard.conf" | grep -qx '# edited' || fail "a second install overwrote /etc/tunnelguard/tunnelguard.conf"
ok "a second install keeps an edited /etc/tunnelguard/tunnelguard.conf"
