#!/usr/bin/env bash
# Install everything needed to build ue-wal and run its tests (Debian 12).
#
# Idempotent: when every package is already installed it does nothing (no
# `apt-get update`, no network).  Set UW_SKIP_SETUP=1 to skip it entirely.
#
# PostgreSQL: Debian's postgresql-common normally creates and starts a
# "main" cluster on port 5432 when the server package is first installed.
# ue-wal's demo and tests never use it (they create their own clusters with
# their own socket directories and ports), but to keep a fresh machine clean
# we ask postgresql-common not to create it when it is not installed yet.
set -euo pipefail

if [[ "${UW_SKIP_SETUP:-0}" == 1 ]]; then
    echo "setup-deps: skipped (UW_SKIP_SETUP=1)"
    exit 0
fi

PACKAGES=(
    build-essential cmake pkg-config
    clang libclang-rt-dev            # clang + its sanitizer runtimes (ASan/LSan/UBSan)
    libcurl4-openssl-dev libssl-dev libzstd-dev libpq-dev libuv1-dev
    postgresql-15 postgresql-contrib # postgresql-15 ships pgbench, pg_basebackup, ...
    postgresql-server-dev-15         # server headers: the archive module (ue_wal_archive)
    python3 zstd util-linux          # util-linux: runuser
    python3-boto3 openssl            # object-storage tests: boto3 reference client, test certificates
    shellcheck clang-format          # scripts/lint.sh
    gcovr                            # scripts/coverage.sh
)
# Node.js and npm run the loopback object-storage servers. A machine that
# already has them (e.g. from NodeSource, whose nodejs conflicts with Debian's
# npm) keeps its own; otherwise Debian's are installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    PACKAGES+=(nodejs npm)
fi

installed() {
    local st
    st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$st" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
else
    echo "setup-deps: installing: ${missing[*]}"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || {
            echo "setup-deps: not root and no sudo; please install: ${missing[*]}" >&2
            exit 1
        }
        SUDO=(sudo)
    fi
    # Do not let postgresql-common create (and start) the default 15/main
    # cluster.  Only when postgresql-common is not configured yet; an existing
    # createcluster.conf is kept as is (UCF_FORCE_CONFFOLD).
    if ! installed postgresql-common && [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        "${SUDO[@]}" mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" |
            "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The server headers at the installed server's version when the archive
    # has it: a newer postgresql-server-dev-15 would upgrade (and so restart)
    # a running server. Minor versions share the module ABI, so any will do.
    for i in "${!missing[@]}"; do
        if [[ ${missing[i]} != postgresql-server-dev-15 ]] || ! installed postgresql-15; then continue; fi
        v=$(dpkg-query -W -f='${Version}' postgresql-15)
        if apt-cache madison postgresql-server-dev-15 | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF "$v"; then
            missing[i]=postgresql-server-dev-15=$v
        fi
    done
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 \
        apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef \
        "${missing[@]}"
fi

# Sanity checks of what the demo and the integration tests rely on.
PGBIN=/usr/lib/postgresql/15/bin
for b in initdb pg_ctl postgres psql pgbench pg_basebackup; do
    [[ -x "$PGBIN/$b" ]] || { echo "setup-deps: missing $PGBIN/$b" >&2; exit 1; }
done
getent passwd postgres >/dev/null || { echo "setup-deps: no 'postgres' user" >&2; exit 1; }
command -v runuser >/dev/null || { echo "setup-deps: runuser not found" >&2; exit 1; }

# A Debian "main" cluster may exist (it listens on 5432 with its sockets in
# /var/run/postgresql); ue-wal's demo and tests use private socket
# directories and other ports, so it cannot get in the way.  Just say so.
if command -v pg_lsclusters >/dev/null; then
    if pg_lsclusters -h 2>/dev/null | grep -q .; then
        echo "setup-deps: note: Debian cluster(s) present (not used by ue-wal):" \
            "$(pg_lsclusters -h | awk '{printf "%s/%s:%s(%s) ", $1, $2, $3, $4}')"
    fi
fi
echo "setup-deps: ok"
