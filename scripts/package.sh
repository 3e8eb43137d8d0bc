#!/usr/bin/env bash
# Build the Debian package ue-wal_<version>_<arch>.deb from a clean build
# directory (CMake with -DUW_PACKAGE=ON, then CPack's DEB generator; what goes
# in it: packaging/package.cmake).
#
#   scripts/package.sh [OUTDIR]
#
# OUTDIR (default: build-pkg/) receives the .deb; its path is the last line
# printed. Installs help2man (man pages), dpkg-dev (dpkg-shlibdeps) and
# lintian with apt-get when they are missing (root, or sudo). Compiler flags:
# the project's own plus Debian's hardening flags (dpkg-buildflags).
#
# Environment: UW_PKG_BUILD_DIR (default build-pkg/build; removed first),
# UW_SKIP_SETUP=1 (do not install anything).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/build-pkg}")
BUILD=$(realpath -m "${UW_PKG_BUILD_DIR:-$ROOT/build-pkg/build}")

need=()
for tool in help2man:help2man dpkg-shlibdeps:dpkg-dev lintian:lintian cmake:cmake; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
    [[ "${UW_SKIP_SETUP:-0}" != 1 ]] || {
        echo "package: missing ${need[*]} (and UW_SKIP_SETUP=1)" >&2
        exit 1
    }
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    echo "package: installing ${need[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null ||
        {
            "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                    --no-install-recommends "${need[@]}" >/dev/null
        }
fi

# Debian's hardening flags (PIE, relro/now, fortify, stack protector). CMake
# reads CFLAGS and LDFLAGS, not CPPFLAGS: fortify is moved into CFLAGS.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
eval "$(dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS"
# Reproducible man page dates: the time of the newest commit, when there is one.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]] && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
    SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct)
    export SOURCE_DATE_EPOCH
fi

rm -rf "$BUILD"
mkdir -p "$OUT"
cmake -S "$ROOT" -B "$BUILD" -DUW_PACKAGE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX=/usr >"$BUILD.cmake.log" 2>&1 ||
    { cat "$BUILD.cmake.log" >&2; exit 1; }
# Everything: whatever install() rules name must exist for cpack.
cmake --build "$BUILD" -j"${UW_JOBS:-2}"
(cd "$BUILD" && cpack -G DEB -B "$OUT" >"$BUILD.cpack.log" 2>&1) ||
    { cat "$BUILD.cpack.log" >&2; exit 1; }
rm -rf "$OUT/_CPack_Packages"
deb=$(find "$OUT" -maxdepth 1 -name 'ue-wal_*.deb' -newer "$BUILD.cmake.log" | sort | tail -1)
[[ -n "$deb" ]] || { echo "package: cpack wrote no .deb into $OUT" >&2; exit 1; }
echo "package: $(dpkg-deb -f "$deb" Package Version Architecture Depends | paste -sd' ')"
echo "$deb"
