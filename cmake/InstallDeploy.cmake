# Install-time part of deploy/'s install rules (run by `cmake --install`, included from an
# install(CODE) in deploy/CMakeLists.txt). It runs at install time, not at configure time, so
# that `cmake --install build --prefix P` decides the paths written into the units:
#  - ExecStart=/ExecStartPre= name P/bin/tunnelguard, --config names the config's real place;
#  - the config goes to /etc for prefix /usr (GNUInstallDirs' rule), to P/etc otherwise;
#  - units and sysusers go where systemd's pkg-config file says for systemd's own prefix (/usr),
#    and to P/lib/systemd/system, P/lib/sysusers.d otherwise (systemd reads /usr/local/lib/...).
# The files in deploy/systemd/ are the templates: they are correct as written for prefix /usr
# (other tests and the NixOS module read them unchanged); here only their paths are rewritten.
# Inputs (set by the install(CODE)): TG_SOURCE_DIR, TG_BINDIR, TG_DOCDIR (relative, from
# GNUInstallDirs), TG_GENERATED_DIR (completions built from the binaries), TG_SYSTEMD_PREFIX,
# TG_SYSTEMD_UNITDIR, TG_SYSUSERSDIR (pkg-config systemd).
# file(INSTALL) prepends $DESTDIR itself and records each file in install_manifest.txt.

set(_p "${CMAKE_INSTALL_PREFIX}")
if(_p STREQUAL "/usr")
  set(_etc "/etc")
else()
  set(_etc "${_p}/etc")
endif()
if(_p STREQUAL TG_SYSTEMD_PREFIX)
  set(_unitdir "${TG_SYSTEMD_UNITDIR}")
  set(_sysusersdir "${TG_SYSUSERSDIR}")
else()
  set(_unitdir "${_p}/lib/systemd/system")
  set(_sysusersdir "${_p}/lib/sysusers.d")
endif()
# zsh: Debian's zsh reads /usr/share/zsh/vendor-completions; other prefixes' site-functions.
if(_p STREQUAL "/usr")
  set(_zshdir "${_p}/share/zsh/vendor-completions")
else()
  set(_zshdir "${_p}/share/zsh/site-functions")
endif()
set(_gen "${CMAKE_CURRENT_BINARY_DIR}/tg-installed-units")
file(MAKE_DIRECTORY "${_gen}")

# tg_unit(SOURCE DEST_DIR): SOURCE (relative to deploy/systemd) with its paths rewritten.
function(tg_unit src dest)
  file(READ "${TG_SOURCE_DIR}/deploy/systemd/${src}" text)
  string(REPLACE "/usr/bin/tunnelguard" "${_p}/${TG_BINDIR}/tunnelguard" text "${text}")
  string(REPLACE "/etc/tunnelguard/" "${_etc}/tunnelguard/" text "${text}")
  string(REPLACE "file:/usr/share/doc/tunnelguard/" "file:${_p}/${TG_DOCDIR}/" text "${text}")
  get_filename_component(name "${src}" NAME)
  file(WRITE "${_gen}/${name}" "${text}")
  file(INSTALL "${_gen}/${name}" DESTINATION "${dest}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endfunction()

tg_unit(tunnelguard.service "${_unitdir}")
tg_unit(cloudflared-tunnel.service.d/tunnelguard.conf "${_unitdir}/cloudflared-tunnel.service.d")
tg_unit(cloudflared.service.d/tunnelguard.conf "${_unitdir}/cloudflared.service.d")
tg_unit(tunnelguard-optional.conf "${_p}/${TG_DOCDIR}/systemd")
file(INSTALL "${TG_SOURCE_DIR}/deploy/systemd/tunnelguard.sysusers.conf"
     DESTINATION "${_sysusersdir}" RENAME tunnelguard.conf
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An existing config is the admin's: never overwritten (the Debian package marks it a conffile).
if(EXISTS "$ENV{DESTDIR}${_etc}/tunnelguard/tunnelguard.conf")
  message(STATUS "Kept: $ENV{DESTDIR}${_etc}/tunnelguard/tunnelguard.conf (exists)")
else()
  file(INSTALL "${TG_SOURCE_DIR}/deploy/config/tunnelguard.conf" DESTINATION "${_etc}/tunnelguard"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()

foreach(prog tunnelguard tunnelctl)
  file(INSTALL "${TG_GENERATED_DIR}/_${prog}" DESTINATION "${_zshdir}"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
