#!/usr/bin/env bash
# tests/objstore.sh: loopback object-storage servers for tests and developers.
#
#   tests/objstore.sh install                    install the servers (npm) if missing
#   tests/objstore.sh start DIR [s3|azure|all]   start them with data under DIR
#   tests/objstore.sh stop DIR                   stop what `start DIR` started
#   tests/objstore.sh status DIR                 list what runs for DIR
#
# Servers (installed with npm into a cache directory on first use, ~15 s):
#   s3     @20minutes/s3rver 5.0.0: S3 API with Signature V4 verification,
#          path-style, access key and secret "S3RVER", region us-east-1.
#          Run through tests/s3rver_uploads.js, which adds the
#          ListMultipartUploads and AbortMultipartUpload it lacks (s3rver
#          itself answers 501 and 405) over its own store of uploads, and
#          checks the signature of a bucket request written "/bucket/?..."
#          (pgBackRest's path-style listing) over the path as sent, as AWS
#          does (s3rver itself checks it against "/bucket" and refuses it).
#   azure  Azurite 3.35.0 (blob service only), the well-known development
#          account "devstoreaccount1" and its key.
#
# Environment:
#   UW_NPM_CACHE     install directory (default /var/tmp/ue-wal-npm)
#   UW_S3_PORT       s3rver port (default 9000)
#   UW_S3_BUCKET     bucket(s) to create at start, comma-separated (default uw-test)
#   UW_S3_TLS_CERT   with UW_S3_TLS_KEY: serve HTTPS with this certificate (PEM)
#   UW_S3_TLS_KEY    private key (PEM) of UW_S3_TLS_CERT
#   UW_S3_KEY_PAIR   ID:SECRET, a credential s3rver accepts besides S3RVER:S3RVER
#                    (read from the environment, never put on node's argv)
#   UW_S3_UPLOADS_PAGE  most uploads per ListMultipartUploads page (default 1000)
#   UW_S3_HOLD_FILE  while this file exists, UploadPart of part 2 and later is
#                    held for keys under the prefix on its first line (a test
#                    kills a push with exactly one part stored, on any machine)
#   UW_AZURE_PORT    Azurite blob port (default 10000)
#   UW_AZURE_TLS_CERT, UW_AZURE_TLS_KEY: serve Azurite over HTTPS
#   AZURITE_ACCOUNTS ACCOUNT:BASE64KEY, Azurite's own variable: an account
#                    of one's own instead of devstoreaccount1
#   UW_NODE          node binary (default: node from PATH when it is version 20
#                    or newer, else a pinned node 22 installed from the npm
#                    registry into the cache: Debian 12's node 18 cannot run
#                    s3rver 5, which uses Array.prototype.toReversed)
#
# DIR receives: s3/ (s3rver data), azurite/ (Azurite data), s3rver.pid,
# azurite.pid, s3rver.log, azurite.log.  `start` waits until every server
# accepts TCP connections (30 s at most) and fails otherwise (printing the
# log).  It refuses to start a server whose pid file names a live process.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${UW_NPM_CACHE:-/var/tmp/ue-wal-npm}
S3RVER_VERSION=5.0.0
AZURITE_VERSION=3.35.0
NODE_PIN=22.23.3
S3_PORT=${UW_S3_PORT:-9000}
S3_BUCKET=${UW_S3_BUCKET:-uw-test}
AZ_PORT=${UW_AZURE_PORT:-10000}

say() { echo "objstore: $*" >&2; }
fail() {
    say "ERROR: $*"
    exit 1
}

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

s3rver_cli() { echo "$CACHE/node_modules/@20minutes/s3rver/lib/cli.js"; }
azurite_main() { echo "$CACHE/node_modules/azurite/dist/src/blob/main.js"; }

node_arch() {
    case $(uname -m) in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) fail "no pinned node for $(uname -m): set UW_NODE to a node >= 20" ;;
    esac
}

# NODE: the node that runs the servers; PINNED_NODE=1 when it comes from the cache.
PINNED_NODE=0
if [[ -n "${UW_NODE:-}" ]]; then
    NODE=$UW_NODE
elif command -v node >/dev/null &&
    (($(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0) >= 20)); then
    NODE=$(command -v node)
else
    PINNED_NODE=1
    NODE=$CACHE/node_modules/node-linux-$(node_arch)/bin/node
fi

version_is() { # version_is PACKAGE-DIR VERSION
    grep -q "\"version\": *\"$2\"" "$CACHE/node_modules/$1/package.json" 2>/dev/null
}

installed() {
    [[ -f "$(s3rver_cli)" && -f "$(azurite_main)" ]] || return 1
    # the versions asked for, not whatever an older cache holds
    version_is @20minutes/s3rver "$S3RVER_VERSION" && version_is azurite "$AZURITE_VERSION" || return 1
    ((PINNED_NODE == 0)) || [[ -x "$NODE" ]]
}

do_install() {
    command -v npm >/dev/null || fail "npm not found (install the Debian packages nodejs and npm)"
    [[ -n "$CACHE" ]] || fail "empty UW_NPM_CACHE"
    mkdir -p "$CACHE"
    # Several tests may start at once (ctest -j): one installs, the others wait.
    exec 9>"$CACHE/.lock"
    flock -w 600 9 || fail "timed out waiting for the install lock $CACHE/.lock"
    if installed; then
        exec 9>&-
        return 0
    fi
    local extra=""
    ((PINNED_NODE == 0)) || extra=", \"node-linux-$(node_arch)\": \"$NODE_PIN\""
    say "installing @20minutes/s3rver@$S3RVER_VERSION azurite@$AZURITE_VERSION${extra:+ node@$NODE_PIN} into $CACHE"
    local t0=$SECONDS
    # Exact versions in a package.json of our own: `npm install` installs
    # exactly these (and prunes whatever an older cache held).
    printf '{"name": "ue-wal-objstore", "private": true,\n "dependencies": {"@20minutes/s3rver": "%s", "azurite": "%s"%s}}\n' \
        "$S3RVER_VERSION" "$AZURITE_VERSION" "$extra" >"$CACHE/package.json"
    if ! (cd "$CACHE" && npm install --no-audit --no-fund --loglevel=error >"$CACHE/npm-install.log" 2>&1); then
        tail -n 30 "$CACHE/npm-install.log" >&2
        fail "npm install failed (log: $CACHE/npm-install.log)"
    fi
    installed || fail "npm install finished but the servers are not where expected under $CACHE"
    say "installed in $((SECONDS - t0)) s"
    exec 9>&-
}

# alive PIDFILE: the process named in PIDFILE runs.
alive() {
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# wait_port PORT PIDFILE LOG NAME
wait_port() {
    local port=$1 pidfile=$2 log=$3 name=$4 i
    for ((i = 0; i < 300; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! alive "$pidfile"; then
            tail -n 30 "$log" >&2
            fail "$name exited during startup (log: $log)"
        fi
        sleep 0.1
    done
    tail -n 30 "$log" >&2
    fail "$name does not accept connections on 127.0.0.1:$port after 30 s (log: $log)"
}

start_s3() {
    local dir=$1 pidfile=$1/s3rver.pid log=$1/s3rver.log
    alive "$pidfile" && fail "s3rver already runs for $dir (pid $(cat "$pidfile"))"
    mkdir -p "$dir/s3"
    local -a args=(--address 127.0.0.1 --port "$S3_PORT" --directory "$dir/s3" --silent)
    local b
    IFS=, read -r -a buckets <<<"$S3_BUCKET"
    for b in "${buckets[@]}"; do
        [[ -n "$b" ]] && args+=(--configure-bucket "$b")
    done
    if [[ -n "${UW_S3_TLS_CERT:-}" ]]; then
        [[ -n "${UW_S3_TLS_KEY:-}" ]] || fail "UW_S3_TLS_CERT needs UW_S3_TLS_KEY"
        args+=(--cert "$UW_S3_TLS_CERT" --key "$UW_S3_TLS_KEY")
    fi
    # s3rver 5 has no bin script: tests/s3rver_uploads.js runs its CLI module
    # with ListMultipartUploads and AbortMultipartUpload added (and
    # UW_S3_KEY_PAIR's credential).  Its ListObjectsV2 continuation tokens use
    # a cipher OpenSSL 3 only has in the legacy provider.
    # setsid: a process group of its own, so `stop` ends node and nothing else.
    NODE_OPTIONS="--openssl-legacy-provider ${NODE_OPTIONS:-}" setsid "$NODE" \
        "$HERE/s3rver_uploads.js" "$(dirname "$(s3rver_cli)")" "${args[@]}" \
        </dev/null >"$log" 2>&1 &
    echo $! >"$pidfile"
    wait_port "$S3_PORT" "$pidfile" "$log" s3rver
    say "s3rver $S3RVER_VERSION on $([[ -n "${UW_S3_TLS_CERT:-}" ]] && echo https || echo http)://127.0.0.1:$S3_PORT (bucket $S3_BUCKET, pid $(cat "$pidfile"))"
}

start_azure() {
    local dir=$1 pidfile=$1/azurite.pid log=$1/azurite.log
    alive "$pidfile" && fail "azurite already runs for $dir (pid $(cat "$pidfile"))"
    mkdir -p "$dir/azurite"
    local -a args=(--blobHost 127.0.0.1 --blobPort "$AZ_PORT" -l "$dir/azurite" --disableTelemetry
        --skipApiVersionCheck --silent)
    if [[ -n "${UW_AZURE_TLS_CERT:-}" ]]; then
        [[ -n "${UW_AZURE_TLS_KEY:-}" ]] || fail "UW_AZURE_TLS_CERT needs UW_AZURE_TLS_KEY"
        args+=(--cert "$UW_AZURE_TLS_CERT" --key "$UW_AZURE_TLS_KEY")
    fi
    setsid "$NODE" "$(azurite_main)" "${args[@]}" </dev/null >"$log" 2>&1 &
    echo $! >"$pidfile"
    wait_port "$AZ_PORT" "$pidfile" "$log" azurite
    say "azurite $AZURITE_VERSION on 127.0.0.1:$AZ_PORT (pid $(cat "$pidfile"))"
}

# stop_one PIDFILE NAME: TERM the server's process group, KILL after 5 s.
stop_one() {
    local pidfile=$1 name=$2 pid i
    [[ -s "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        # started with setsid: its pid is its process group id
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

cmd=${1:-}
case $cmd in
install)
    do_install
    ;;
start)
    [[ $# -ge 2 ]] || usage
    dir=$2 what=${3:-all}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    do_install
    case $what in
    s3) start_s3 "$dir" ;;
    azure) start_azure "$dir" ;;
    all)
        start_s3 "$dir"
        start_azure "$dir"
        ;;
    *) usage ;;
    esac
    ;;
stop)
    [[ $# -ge 2 ]] || usage
    dir=$2
    [[ -d "$dir" ]] || exit 0
    stop_one "$dir/s3rver.pid" s3rver
    stop_one "$dir/azurite.pid" azurite
    ;;
status)
    [[ $# -ge 2 ]] || usage
    for n in s3rver azurite; do
        if alive "$2/$n.pid"; then echo "$n: running (pid $(cat "$2/$n.pid"))"; else echo "$n: stopped"; fi
    done
    ;;
*)
    usage
    ;;
esac
