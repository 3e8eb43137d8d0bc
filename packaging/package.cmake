# The Debian package (cmake -DUW_PACKAGE=ON, then cpack -G DEB; scripts/package.sh
# does both in a clean build directory). Everything the package installs beyond
# the four binaries is declared here, from the files in packaging/:
#
#   /usr/bin/                       ue-wal-push, ue-wal-fetch, ue-basebackup, ue-pitr
#   /usr/share/man/man1/            one page per binary and per ue-pitr subcommand,
#                                   generated from their --help (gen-man.sh)
#   /etc/ue-wal/ue-wal.conf         conffile, 0640 root:postgres (postinst sets the group)
#   /lib/systemd/system/            ue-wal-<job>@.service/.timer, instance = stanza
#   /usr/share/doc/ue-wal/examples/ ue-wal.cron, postgresql.conf, ue-wal-3-2-1.conf
#   /usr/share/ue-wal/prometheus/   alert rules      (packaging/prometheus/*, when present)
#   /usr/share/ue-wal/grafana/      dashboards       (packaging/grafana/*, when present)
#
# /var/spool/ue-wal, /var/log/ue-wal and /var/lib/ue-wal are created by postinst
# (owner postgres, who exists only once postgresql-common is configured).
set(UW_PKG ${CMAKE_SOURCE_DIR}/packaging)

# The package's version is the project's; its Debian changelog must agree.
file(STRINGS ${UW_PKG}/debian/changelog UW_CHANGELOG_TOP LIMIT_COUNT 1)
if(NOT UW_CHANGELOG_TOP MATCHES "^ue-wal \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/debian/changelog: the newest entry is not version "
                      "${PROJECT_VERSION} (project version): '${UW_CHANGELOG_TOP}'")
endif()

find_program(UW_HELP2MAN help2man)
find_program(UW_GZIP gzip)
if(NOT UW_HELP2MAN OR NOT UW_GZIP)
  message(FATAL_ERROR "UW_PACKAGE needs help2man and gzip (apt-get install help2man)")
endif()

# Man pages, rebuilt whenever a binary changes (its --help may have).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/man/stamp
  COMMAND bash ${UW_PKG}/gen-man.sh ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/man
  DEPENDS ue-wal-push ue-wal-fetch ue-basebackup ue-pitr ${UW_PKG}/gen-man.sh
  COMMENT "Generating man pages from --help")
add_custom_target(man ALL DEPENDS ${CMAKE_BINARY_DIR}/man/stamp)
install(DIRECTORY ${CMAKE_BINARY_DIR}/man/ DESTINATION share/man/man1 FILES_MATCHING
        PATTERN "*.1.gz")

# Debian wants the changelog compressed without a timestamp (gzip -n).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/changelog.gz
  COMMAND ${UW_GZIP} -9nc ${UW_PKG}/debian/changelog > ${CMAKE_BINARY_DIR}/changelog.gz
  DEPENDS ${UW_PKG}/debian/changelog)
add_custom_target(changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/changelog.gz)

set(UW_DOC share/doc/ue-wal)
install(FILES ${UW_PKG}/ue-wal.conf.example DESTINATION /etc/ue-wal RENAME ue-wal.conf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
file(GLOB UW_UNITS ${UW_PKG}/systemd/*.service ${UW_PKG}/systemd/*.timer)
# /lib, not /usr/lib: Debian 12's debhelper and systemd still use /lib/systemd/system.
install(FILES ${UW_UNITS} DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${UW_PKG}/debian/copyright
              ${CMAKE_BINARY_DIR}/changelog.gz DESTINATION ${UW_DOC})
install(FILES ${UW_PKG}/ue-wal.cron ${UW_PKG}/postgresql.conf ${UW_PKG}/ue-wal-3-2-1.conf
        DESTINATION ${UW_DOC}/examples)
install(FILES ${UW_PKG}/debian/lintian-overrides DESTINATION share/lintian/overrides
        RENAME ue-wal)
# Alert rules and dashboards: whatever packaging/prometheus/ and packaging/grafana/
# hold, but READMEs (they document the source tree) and promtool's rule tests
# (*.test.yml: a rule_files glob over the directory must load rules only).
foreach(dir prometheus grafana)
  if(IS_DIRECTORY ${UW_PKG}/${dir})
    install(DIRECTORY ${UW_PKG}/${dir}/ DESTINATION share/ue-wal/${dir} PATTERN "README*" EXCLUDE
            PATTERN "*.test.y*ml" EXCLUDE)
  endif()
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ue-wal)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "ue-wal developers <ue-wal@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "continuous WAL archiving, base backups and PITR for PostgreSQL")
# The summary is the synopsis line; this is the extended description under it.
set(CPACK_PACKAGE_DESCRIPTION
    "ue-wal archives PostgreSQL's WAL (archive_command ue-wal-push, restore_command
ue-wal-fetch), takes full and block-level incremental base backups
(ue-basebackup) and restores to a point in time (ue-pitr), into local
directories, S3 or Azure Blob Storage, compressed with zstd and optionally
encrypted with AES-256-GCM.
.
The package ships systemd timers for a daily full backup, incremental backups
every six hours, a weekly restore drill, daily retention and metrics every
minute (instance = stanza), a cron alternative, Prometheus alert rules and a
Grafana dashboard.")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps finds what the binaries link (libc6, libssl3, libzstd1,
# libuv1). libcurl (object stores) and libpq (ue-basebackup, restore --start)
# are dlopen()ed on first use, so it cannot see them: they are named here.
# postgresql-common creates the postgres user and group that run every command
# and own the configuration, spool and log directories. The server itself is
# only recommended: ue-wal talks to it through libpq and runs its pg_ctl for
# restore --start and drills, which a host that only holds a repository
# does not need; psql (postgresql-client) is never used.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcurl4, libpq5, postgresql-common")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postgresql")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus-node-exporter")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${UW_PKG}/debian/conffiles ${UW_PKG}/debian/postinst
                                       ${UW_PKG}/debian/prerm ${UW_PKG}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                                GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
include(CPack)
