# shellcheck shell=bash
# shellcheck disable=SC2034 # a library: the scripts that source it read its globals
# tests/lib.sh: helpers for ue-wal integration tests against a real
# PostgreSQL 15.  Source it first thing:
#
#     source "$(dirname "$0")/../lib.sh"
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   UW_BIN_DIR    build directory holding ue-wal-push, ue-wal-fetch, ue-pitr
#   UW_SRC_DIR    source tree (default: the parent of this file's directory)
#   UW_PORT_BASE  first of 20 ports this test may use (UW_PORT_BASE..+19)
# Optional:
#   UW_PG_BIN     PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   UW_KEEP=1     keep the test directory even when the test passes
#   ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS are handed on to every binary,
#   including those PostgreSQL runs (archive_command / restore_command).
#
# What sourcing does: creates the test directory $T (mktemp under /tmp,
# mode 755), copies the binaries to $T/bin (so that the postgres user can
# run them even when the build lives under /root), cd's to $T and installs
# an EXIT trap that stops every cluster the test started and removes $T on
# success, or keeps it and prints its path and the log tails on failure.
#
# Clusters live in $T/NAME, log to $T/NAME.log, and listen only on a unix
# socket in $T/sock (listen_addresses = ''), so tests cannot collide with
# each other or with a Debian cluster on 5432.

set -euo pipefail

# ---------------------------------------------------------------- basics --
UW_TEST_NAME=${UW_TEST_NAME:-$(basename "$0" .sh)}
UW_SRC_DIR=${UW_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
UW_PORT_BASE=${UW_PORT_BASE:-25400}
PGBIN=${UW_PG_BIN:-/usr/lib/postgresql/15/bin}
_UW_T0=$EPOCHREALTIME

# Hermetic environment: nothing from the caller may change what the
# binaries or libpq do behind the test's back.
while IFS= read -r _v; do unset "$_v"; done < <(compgen -e | grep -E '^(UE_WAL_|PG(HOST|PORT|DATABASE|USER|DATA|SERVICE|OPTIONS|PASSWORD|PASSFILE|SSLMODE|APPNAME|HOSTADDR|CONNECT_TIMEOUT|TZ|CLIENTENCODING|TARGETSESSIONATTRS)$)' || true)
unset _v
export LC_ALL=C.UTF-8 LANG=C.UTF-8

# note MSG...: progress line, prefixed with the elapsed time of the test.
note() {
    local now=$EPOCHREALTIME
    printf '[%s %7.2fs] %s\n' "$UW_TEST_NAME" "$(_uw_sub "$now" "$_UW_T0")" "$*"
}
# die MSG...: fail the test.
die() {
    printf '[%s] FAIL: %s\n' "$UW_TEST_NAME" "$*" >&2
    exit 1
}
ok() { note "ok: $*"; }
# skip REASON...: end the test as skipped, never as passed: exit code 77,
# which ctest reports as "Skipped" (SKIP_RETURN_CODE, tests/CMakeLists.txt).
# Only for what the machine cannot provide (e.g. root for a mount); never
# for a missing binary or tool that the build or scripts/setup-deps.sh
# provides: that is a failure (die).
UW_SKIP_RC=77
skip() {
    _UW_SKIPPED=1
    printf '[%s] SKIPPED: %s\n' "$UW_TEST_NAME" "$*" >&2
    exit "$UW_SKIP_RC"
}

_uw_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
# now: a timestamp; elapsed START: seconds since START with 2 decimals.
now() { echo "$EPOCHREALTIME"; }
elapsed() { _uw_sub "$EPOCHREALTIME" "$1"; }
# ratio A B [DIGITS]: A / B.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { if (b == 0) print "inf"; else printf "%.*f", d, a / b }'; }

# ------------------------------------------------------------ users, dirs --
if [[ $(id -u) -eq 0 ]]; then
    PGUSER_OS=postgres
    getent passwd postgres >/dev/null || die "user 'postgres' does not exist (run scripts/setup-deps.sh)"
else
    # Not root: everything runs as the current user (no user switching).
    PGUSER_OS=$(id -un)
fi

# The environment handed to everything run as the PostgreSQL user.
_UW_PG_ENV=(PATH="$PGBIN:/usr/local/bin:/usr/bin:/bin" LC_ALL=C.UTF-8 LANG=C.UTF-8 TZ=UTC)

# as_pg CMD...: run CMD as the PostgreSQL OS user (with the sanitizer env).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PGUSER_OS" -- env "${_UW_PG_ENV[@]}" "$@"
    else
        env "${_UW_PG_ENV[@]}" "$@"
    fi
}
# pg_dir DIR [MODE]: create DIR owned by the PostgreSQL OS user.
pg_dir() {
    mkdir -p "$1"
    chmod "${2:-700}" "$1"
    [[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$1"
}
# pg_file FILE [MODE]: create (or keep) FILE owned by the PostgreSQL OS user.
pg_file() {
    touch "$1"
    chmod "${2:-600}" "$1"
    [[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$1"
}

[[ -x "$PGBIN/initdb" && -x "$PGBIN/pg_ctl" ]] ||
    die "PostgreSQL binaries not found in $PGBIN (run scripts/setup-deps.sh)"

T=$(mktemp -d "/tmp/uw-${UW_TEST_NAME}.XXXXXX")
chmod 755 "$T"
mkdir -p "$T/out"
pg_dir "$T/sock" 755
REPO=$T/repo
CONF=$T/ue-wal.conf
STANZA=demo
cd "$T"

# ----------------------------------------------------------------- cleanup --
declare -A _UW_PORT=()        # cluster name -> port
declare -A _UW_NAME=()        # port -> cluster name
declare -a _UW_RUNNING=()     # clusters to stop on exit

# Sanitizer reports anywhere in the server logs or captured stderr fail the
# test, even when the failing process's exit code was swallowed somewhere.
_uw_sanitizer_reports() {
    grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' \
        "$T"/*.log "$T"/out/* 2>/dev/null || true
}

_uw_cleanup() {
    local rc=$? name f
    trap - EXIT INT TERM
    set +e
    # Exit code 77 means "skipped" to ctest: only skip() may end a test so;
    # any other command that exits 77 fails the test.
    if ((rc == UW_SKIP_RC)) && [[ -z "${_UW_SKIPPED:-}" ]]; then
        echo "[$UW_TEST_NAME] exit code $rc from a command (not skip()): failing the test" >&2
        rc=1
    fi
    [[ -n "${_UW_WATCHDOG:-}" ]] && kill "$_UW_WATCHDOG" 2>/dev/null
    [[ -s "$T/out/watchdog" ]] && cat "$T/out/watchdog" >&2
    for name in "${_UW_RUNNING[@]}"; do
        [[ -n "$name" && -f "$T/$name/postmaster.pid" ]] &&
            as_pg "$PGBIN/pg_ctl" -D "$T/$name" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    if ((rc == 0)); then
        local -a reports
        mapfile -t reports < <(_uw_sanitizer_reports)
        if ((${#reports[@]})); then
            echo "[$UW_TEST_NAME] FAIL: sanitizer reports found in: ${reports[*]}" >&2
            grep -h -A25 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "${reports[@]}" | head -80 >&2
            rc=1
        fi
    fi
    if ((rc == 0 || rc == UW_SKIP_RC)); then
        if ((rc == 0)); then note "PASS (total $(elapsed "$_UW_T0") s)"; else note "SKIPPED (total $(elapsed "$_UW_T0") s)"; fi
        if [[ "${UW_KEEP:-0}" == 1 ]]; then note "kept $T (UW_KEEP=1)"; else rm -rf "$T"; fi
    else
        echo "[$UW_TEST_NAME] FAILED with exit code $rc after $(elapsed "$_UW_T0") s; test directory kept: $T" >&2
        for f in "$T"/*.log; do
            [[ -s "$f" ]] || continue
            echo "----- last 25 lines of $f -----" >&2
            tail -n 25 "$f" >&2
        done
    fi
    exit "$rc"
}
trap _uw_cleanup EXIT
trap 'echo "[$UW_TEST_NAME] interrupted by SIGTERM (timeout?)" >&2; exit 143' TERM
trap 'exit 130' INT

# Watchdog: stop the test (and so its clusters, through the EXIT trap) before
# ctest's own timeout would SIGKILL it and leave servers running.
# Generous: it only catches a hang that no wait_* bound caught (a loaded
# machine makes some tests take several times their idle duration).
UW_TEST_TIMEOUT=${UW_TEST_TIMEOUT:-1700}
(
    exec </dev/null >/dev/null 2>&1
    for ((_i = 0; _i < UW_TEST_TIMEOUT; _i++)); do
        sleep 1
        kill -0 $$ 2>/dev/null || exit 0
    done
    echo "[$UW_TEST_NAME] watchdog: test exceeded ${UW_TEST_TIMEOUT}s" >"$T/out/watchdog"
    kill -TERM $$
) &
_UW_WATCHDOG=$!

# ---------------------------------------------------------------- binaries --
: "${UW_BIN_DIR:?UW_BIN_DIR must point at the cmake build directory}"
mkdir -p "$T/bin"
for _b in ue-wal-push ue-wal-fetch ue-pitr ue-basebackup; do
    [[ -x "$UW_BIN_DIR/$_b" ]] || die "binary not found: $UW_BIN_DIR/$_b (build the project first)"
    cp "$UW_BIN_DIR/$_b" "$T/bin/$_b"
done
chmod 755 "$T/bin" "$T"/bin/*
unset _b
PUSH=$T/bin/ue-wal-push
FETCH=$T/bin/ue-wal-fetch
PITR=$T/bin/ue-pitr

# Sanitizer build: make sure reports abort the process (a plain exit code 1
# from a sanitizer would look like "not in archive" to restore_command).
if grep -q '^UW_SANITIZE:BOOL=ON' "$UW_BIN_DIR/CMakeCache.txt" 2>/dev/null; then
        UW_SANITIZED=1
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
else
    UW_SANITIZED=0
fi
for _v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
    [[ -n "${!_v:-}" ]] && _UW_PG_ENV+=("$_v=${!_v}")
done
unset _v

# _uw_check_sanitizer NAME: fail at once if NAME's server log holds a
# sanitizer report (from archive_command / restore_command).
_uw_check_sanitizer() {
    local name=$1
    [[ -n "$name" && -f "$T/$name.log" ]] || return 0
    if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/$name.log"; then
        grep -A25 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/$name.log" | head -60 >&2
        die "sanitizer report in $T/$name.log"
    fi
}

# ---------------------------------------------------------------- clusters --
# pg_init NAME PORT [initdb args...]: new cluster in $T/NAME (not started).
pg_init() {
    local name=$1 port=$2
    shift 2
    local d=$T/$name
    pg_dir "$d" 700
    pg_file "$T/$name.log" 644
    if ! as_pg "$PGBIN/initdb" -D "$d" -U postgres --auth=trust --no-locale -E UTF8 \
        --no-sync "$@" >"$T/out/$name.initdb" 2>&1; then
        cat "$T/out/$name.initdb" >&2
        die "initdb of $name failed"
    fi
    cat >>"$d/postgresql.conf" <<EOF

# ---- ue-wal test settings ----
port = $port
listen_addresses = ''
unix_socket_directories = '$T/sock'
fsync = off
wal_level = replica
max_wal_size = 64MB
min_wal_size = 32MB
checkpoint_timeout = 30s
shared_buffers = 64MB
max_wal_senders = 4
log_line_prefix = '%m [%p] %b '
log_min_messages = info
EOF
    _UW_PORT[$name]=$port
    _UW_NAME[$port]=$name
}

# pg_conf NAME 'key = value'...: append settings to NAME's postgresql.conf
# (later lines win, so this also overrides settings copied by a backup).
pg_conf() {
    local name=$1
    shift
    printf '%s\n' "$@" >>"$T/$name/postgresql.conf"
}

# pg_set_port NAME PORT: (re)assign NAME's port (e.g. for a restored backup).
pg_set_port() {
    pg_conf "$1" "port = $2"
    _UW_PORT[$1]=$2
    _UW_NAME[$2]=$1
}

_uw_running_add() { _UW_RUNNING+=("$1"); }
_uw_running_del() {
    local i
    for i in "${!_UW_RUNNING[@]}"; do
        [[ "${_UW_RUNNING[$i]}" == "$1" ]] && unset '_UW_RUNNING[i]'
    done
    return 0
}

# pg_start NAME: start and wait until it accepts connections; on failure
# print the log tail and fail the test.
pg_start() {
    local name=$1
    pg_file "$T/$name.log" 644
    _uw_running_add "$name"
    if ! as_pg "$PGBIN/pg_ctl" -D "$T/$name" -l "$T/$name.log" -w -t 120 start \
        >"$T/out/$name.pg_ctl" 2>&1; then
        cat "$T/out/$name.pg_ctl" >&2
        echo "----- $T/$name.log (tail) -----" >&2
        tail -n 40 "$T/$name.log" >&2
        die "could not start cluster $name"
    fi
}

# pg_start_nowait NAME: start without waiting (for servers expected to fail).
pg_start_nowait() {
    local name=$1
    pg_file "$T/$name.log" 644
    _uw_running_add "$name"
    as_pg "$PGBIN/pg_ctl" -D "$T/$name" -l "$T/$name.log" -W start >"$T/out/$name.pg_ctl" 2>&1 ||
        { cat "$T/out/$name.pg_ctl" >&2; die "pg_ctl start of $name failed"; }
    # pg_ctl -W returns before the postmaster wrote its pid file, and
    # pg_running (pg_ctl status) in that moment says "not running": wait for
    # the pid, or for the log to say the start failed.
    local deadline=$((SECONDS + 300))
    until [[ $(head -n 1 "$T/$name/postmaster.pid" 2>/dev/null) =~ ^[0-9]+$ ]]; do
        if grep -qE 'FATAL|PANIC|database system is shut down' "$T/$name.log" 2>/dev/null; then
            return 0
        fi
        ((SECONDS < deadline)) || { tail -n 20 "$T/$name.log" >&2; die "$name did not write its pid file"; }
        sleep 0.05
    done
}

# pg_stop NAME [MODE]: stop (fast by default) and wait.
pg_stop() {
    local name=$1 mode=${2:-fast}
    if ! as_pg "$PGBIN/pg_ctl" -D "$T/$name" -m "$mode" -w -t 120 stop >"$T/out/$name.pg_ctl" 2>&1; then
        cat "$T/out/$name.pg_ctl" >&2
        tail -n 40 "$T/$name.log" >&2
        die "could not stop cluster $name"
    fi
    _uw_running_del "$name"
}

# pg_running NAME: true if NAME's postmaster is alive.
pg_running() {
    as_pg "$PGBIN/pg_ctl" -D "$T/$1" status >/dev/null 2>&1
}

pg_reload() {
    as_pg "$PGBIN/pg_ctl" -D "$T/$1" reload >/dev/null
}

# q PORT SQL: run SQL, print unaligned tuples-only output; fails the test
# on error.
q() {
    local port=$1 sql=$2 out
    if ! out=$("$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$T/sock" -p "$port" \
        -U postgres -d postgres -c "$sql" 2>"$T/out/psql.err"); then
        cat "$T/out/psql.err" >&2
        die "query on port $port failed: $sql"
    fi
    printf '%s\n' "$out"
}
# q_try PORT SQL: like q but returns non-zero instead of failing the test.
q_try() {
    "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$T/sock" -p "$1" \
        -U postgres -d postgres -c "$2" 2>/dev/null
}

# pgbench_run PORT ARGS...: pgbench as the superuser on PORT.
pgbench_run() {
    local port=$1
    shift
    "$PGBIN/pgbench" -h "$T/sock" -p "$port" -U postgres "$@" postgres
}

# basebackup PORT NAME [args...]: pg_basebackup -X none (WAL must come
# from the archive) into $T/NAME; fails after 600 s (it waits for the end
# segment to be archived, so a broken archive_command would hang it; the
# bound is generous: it only catches that hang, on however slow a machine).
basebackup() {
    local port=$1 name=$2
    shift 2
    pg_dir "$T/$name" 700
    if ! as_pg timeout 600 "$PGBIN/pg_basebackup" -h "$T/sock" -p "$port" -U postgres \
        -D "$T/$name" -X none -c fast --no-sync "$@" >"$T/out/$name.basebackup" 2>&1; then
        cat "$T/out/$name.basebackup" >&2
        die "pg_basebackup of port $port into $name failed (or timed out waiting for WAL archiving)"
    fi
}

# ------------------------------------------------------------------ config --
# write_config [-f FILE] [-s STANZA] [-n CLUSTER] [-r REPO] [global-key=value...]
# Writes an ue-wal config (defaults: $CONF, stanza $STANZA, cluster src,
# repo $REPO, compress-type=zstd, cipher-type=none).  key=value arguments
# override or extend the [global] section.
write_config() {
    local file=$CONF stanza=$STANZA name=src repo=$REPO
    while (($#)); do
        case $1 in
        -f) file=$2; shift 2 ;;
        -s) stanza=$2; shift 2 ;;
        -n) name=$2; shift 2 ;;
        -r) repo=$2; shift 2 ;;
        *) break ;;
        esac
    done
    local -A g=([repo1-type]=posix [repo1-path]=$repo [compress-type]=zstd
        [compress-level]=3 [cipher-type]=none [log-level]=info)
    local -a order=(repo1-type repo1-path compress-type compress-level cipher-type log-level)
    local kv k
    for kv in "$@"; do
        k=${kv%%=*}
        [[ -v "g[$k]" ]] || order+=("$k")
        g[$k]=${kv#*=}
    done
    [[ -d "$repo" ]] || pg_dir "$repo" 750
    local port=${_UW_PORT[$name]:-}
    [[ -n "$port" ]] || die "write_config: unknown cluster '$name'"
    {
        echo "[global]"
        for k in "${order[@]}"; do echo "$k=${g[$k]}"; done
        echo
        echo "[$stanza]"
        echo "pg-path=$T/$name"
        echo "pg-port=$port"
        echo "pg-socket-path=$T/sock"
        echo "pg-user=postgres"
    } >"$file"
    pg_file "$file" 600
}

# enable_archiving NAME [CONFIG] [STANZA]: point archive_command at
# ue-wal-push (archive_mode must already be on) and reload.
enable_archiving() {
    local name=$1 conf=${2:-$CONF} stanza=${3:-$STANZA}
    pg_conf "$name" "archive_command = '$PUSH --config $conf --stanza $stanza %p'"
    pg_reload "$name"
    local port=${_UW_PORT[$name]} deadline=$((SECONDS + 120))
    while ((SECONDS < deadline)); do
        [[ $(q "$port" "show archive_command") == *ue-wal-push* ]] && return 0
        sleep 0.1
    done
    die "archive_command of $name not reloaded within 120 s"
}

# setup_restore NAME PORT [CONFIG] [STANZA]: turn base backup $T/NAME into
# a recovery cluster on PORT that fetches WAL with ue-wal-fetch (recovery
# to the end of the archive, then promotion).  Archiving is off.
setup_restore() {
    local name=$1 port=$2 conf=${3:-$CONF} stanza=${4:-$STANZA}
    pg_set_port "$name" "$port"
    pg_conf "$name" "archive_mode = off" "wal_keep_size = 0" \
        "restore_command = '$FETCH --config $conf --stanza $stanza %f %p'"
    pg_file "$T/$name/recovery.signal" 600
    pg_file "$T/$name.log" 644
}

# ------------------------------------------------------------------ waiting --
# Waiting: every wait_* helper polls for its condition, and its TIMEOUT is
# the time allowed WITHOUT PROGRESS (a file archived, a segment replayed, a
# file appearing): the deadline moves on with every sign of progress, so a
# slow or loaded machine is never mistaken for a hang, while a hang still
# fails after TIMEOUT seconds.  The watchdog (UW_TEST_TIMEOUT) bounds the
# whole test.

# wait_archived PORT SEGNAME [TIMEOUT=60]: until pg_stat_archiver shows
# SEGNAME (or a later segment) archived; TIMEOUT seconds without a file
# archived fail the test.  A .backup file named after segment X only proves
# that segments before X are archived.
wait_archived() {
    local port=$1 seg=$2 timeout=${3:-60} deadline row last count seen=""
    deadline=$((SECONDS + timeout))
    while :; do
        row=$(q_try "$port" "select coalesce(last_archived_wal,''), archived_count, failed_count, coalesce(last_failed_wal,'') from pg_stat_archiver") || row=""
        last=${row%%|*}
        count=$(cut -d'|' -f2 <<<"$row")
        if [[ -n "$count" && "$count" != "$seen" ]]; then
            seen=$count
            deadline=$((SECONDS + timeout))
        fi
        if [[ "$last" =~ ^[0-9A-F]{24}$ ]]; then
            [[ ! "$last" < "$seg" ]] && return 0
        elif [[ "$last" =~ ^([0-9A-F]{24})\. ]]; then
            [[ "${BASH_REMATCH[1]}" > "$seg" ]] && return 0
        fi
        _uw_check_sanitizer "${_UW_NAME[$port]:-}"
        if ((SECONDS >= deadline)); then
            echo "pg_stat_archiver (last_archived_wal|archived_count|failed_count|last_failed_wal): $row" >&2
            local name=${_UW_NAME[$port]:-}
            [[ -n "$name" ]] && { echo "----- $T/$name.log (tail) -----" >&2; tail -n 30 "$T/$name.log" >&2; }
            die "segment $seg not archived on port $port: no file archived for ${timeout}s"
        fi
        sleep 0.2
    done
}

# wait_promoted PORT [TIMEOUT=120]: until pg_is_in_recovery() is false;
# TIMEOUT seconds without recovery progress (replay position, or segments
# restored according to the server log) fail the test.  Fails early if the
# postmaster dies.
wait_promoted() {
    local port=$1 timeout=${2:-120} deadline r name=${_UW_NAME[$1]:-} mark seen=""
    deadline=$((SECONDS + timeout))
    while :; do
        r=$(q_try "$port" "select pg_is_in_recovery(), pg_last_wal_replay_lsn()") || r=""
        [[ "$r" == f* ]] && return 0
        mark=$r
        [[ -n "$name" ]] && mark+=" $(grep -c 'restored log file' "$T/$name.log" 2>/dev/null)"
        if [[ "$mark" != "$seen" ]]; then
            seen=$mark
            deadline=$((SECONDS + timeout))
        fi
        _uw_check_sanitizer "$name"
        if [[ -n "$name" ]] && ! pg_running "$name"; then
            tail -n 40 "$T/$name.log" >&2
            die "cluster $name (port $port) exited before promotion"
        fi
        if ((SECONDS >= deadline)); then
            [[ -n "$name" ]] && tail -n 40 "$T/$name.log" >&2
            die "cluster on port $port not promoted: no recovery progress for ${timeout}s"
        fi
        sleep 0.2
    done
}

# wait_port PORT [TIMEOUT=60]: until something accepts TCP connections on
# 127.0.0.1:PORT (a helper server the test started in the background).
wait_port() {
    local port=$1 timeout=${2:-60} deadline
    deadline=$((SECONDS + timeout))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || die "nothing listens on 127.0.0.1:$port after ${timeout}s"
        sleep 0.1
    done
}

# switch_wal PORT: pg_switch_wal(); prints the name of the segment it
# completed (the one to wait for).
switch_wal() {
    q "$1" "select pg_walfile_name(pg_switch_wal())"
}
# current_seg PORT: segment holding the current insert position.
current_seg() {
    q "$1" "select pg_walfile_name(pg_current_wal_lsn())"
}

# --------------------------------------------------------- segment names --
# 16 MB segments (initdb's default): 256 segments per 4 GB "log id".
UW_SEGS_PER_ID=256
seg_no() {   # seg_no NAME: the segment number within its timeline
    local n=$1
    echo $((16#${n:8:8} * UW_SEGS_PER_ID + 16#${n:16:8}))
}
seg_name() { # seg_name TLI_HEX NUMBER
    printf '%s%08X%08X\n' "$1" $(($2 / UW_SEGS_PER_ID)) $(($2 % UW_SEGS_PER_ID))
}
seg_add() {  # seg_add NAME N: the segment N after NAME
    seg_name "${1:0:8}" $(($(seg_no "$1") + $2))
}
seg_range() { # seg_range FIRST LAST: all names from FIRST to LAST
    local a b i
    a=$(seg_no "$1")
    b=$(seg_no "$2")
    for ((i = a; i <= b; i++)); do seg_name "${1:0:8}" "$i"; done
}

# wal_segments DIR: the WAL segment files (24 hex digits) in DIR, sorted.
wal_segments() {
    find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}$' -printf '%f\n' | sort
}

# objects SEG [REPO]: repository files stored for SEG (one per line).
objects() {
    find "${2:-$REPO}" -type f -name "$1-*" | sort
}
# object_count SEG [REPO]
object_count() {
    objects "$@" | grep -c . || true
}

# -------------------------------------------------------------- assertions --
assert_eq() { # assert_eq EXPECTED ACTUAL MESSAGE
    [[ "$1" == "$2" ]] || die "$3: expected '$1', got '$2'"
    ok "$3"
}
assert_ne() { # assert_ne UNEXPECTED ACTUAL MESSAGE
    [[ "$1" != "$2" ]] || die "$3: got '$2'"
    ok "$3"
}
assert_file_absent() {
    [[ ! -e "$1" ]] || die "${2:-file should not exist}: $1 exists ($(stat -c %s "$1") bytes)"
}

# run CMD...: run CMD, capturing stdout/stderr into $LAST_OUT/$LAST_ERR;
# sets LAST_RC.  Never fails by itself.
_UW_RUN_N=0
run() {
    _UW_RUN_N=$((_UW_RUN_N + 1))
    LAST_OUT=$T/out/run$_UW_RUN_N.out
    LAST_ERR=$T/out/run$_UW_RUN_N.err
    printf '%s\n' "$*" >"$T/out/run$_UW_RUN_N.cmd"
    set +e
    "$@" >"$LAST_OUT" 2>"$LAST_ERR"
    LAST_RC=$?
    set -e
    return 0
}
# assert_exit CODE CMD...: run CMD (see run) and require exit code CODE.
assert_exit() {
    local want=$1
    shift
    run "$@"
    if [[ "$LAST_RC" != "$want" ]]; then
        echo "command: $*" >&2
        echo "----- stderr -----" >&2
        head -c 4000 "$LAST_ERR" >&2
        echo "----- stdout -----" >&2
        head -c 2000 "$LAST_OUT" >&2
        die "expected exit code $want, got $LAST_RC"
    fi
}
# assert_exit_pg CODE CMD...: same, CMD run as the PostgreSQL OS user.
assert_exit_pg() {
    local want=$1
    shift
    assert_exit "$want" as_pg "$@"
}

# ---------------------------------------------------------------- content --
# table_checksum PORT [DB]: one line per user table, "table rows md5",
# over the table's contents independent of physical row order.
table_checksum() {
    local port=$1 t
    local tables
    tables=$(q "$port" "select format('%I.%I', n.nspname, c.relname) from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r','p') and n.nspname not in ('pg_catalog','information_schema')
          and n.nspname !~ '^pg_toast' order by 1")
    for t in $tables; do
        printf '%s %s\n' "$t" "$(q "$port" "select count(*) || ' ' || coalesce(md5(string_agg(h, '' order by h)), '-')
            from (select md5(x::text) h from $t x) s")"
    done
}

# flip_byte FILE OFFSET: xor the byte at OFFSET with 0xff (always changes it).
flip_byte() {
    local f=$1 off=$2 b
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    [[ -n "$b" ]] || die "flip_byte: offset $off beyond end of $f"
    # shellcheck disable=SC2059 # the format is the octal escape of the new byte
    printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
    local nb
    nb=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    [[ "$nb" != "$b" ]] || die "flip_byte: byte at $off of $f did not change"
}

# sha FILE: sha256 hex of FILE.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ------------------------------------------------ base backups and restores --
# ue-basebackup (always built; need_basebackup stays for the tests that call it).
BASEBACKUP=$T/bin/ue-basebackup
need_basebackup() {
    [[ -x "$BASEBACKUP" ]] || die "ue-basebackup not found in $UW_BIN_DIR (build the project first)"
}

# take_backup [ue-basebackup args...]: back up the cluster of $CONF/$STANZA
# as the PostgreSQL user (set CONF/STANZA around the call for another one).
# Sets BACKUP_ID (the id printed on stdout) and BACKUP_LOG (its stderr
# file); fails the test, showing stderr, on a non-zero exit or a malformed
# id.
take_backup() {
    need_basebackup
    assert_exit_pg 0 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" "$@"
    BACKUP_ID=$(tail -n 1 "$LAST_OUT")
        BACKUP_LOG=$LAST_ERR
    [[ "$BACKUP_ID" =~ ^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}I)?$ ]] ||
        { cat "$LAST_ERR" >&2; die "ue-basebackup printed '$BACKUP_ID', not a backup id"; }
}

# kill_backup_mid_copy TAG PROBE [ue-basebackup args...]: start ue-basebackup
# ($CONF, $STANZA) in the background as the PostgreSQL user (pg_bg TAG), call
# PROBE (a command or shell function, run in a subshell, its exit status
# ignored) until it prints the id of the new backup once one of its file
# copies is in flight (a temporary, a stored part, a staged block: each
# repository type has its own sign), and SIGKILL ue-basebackup at once.
# Waits on that progress, never on a time.  Sets KILLED_BACKUP (the id
# PROBE printed) and KILL_SECS (seconds from the start to the kill).  Fails
# the test when ue-basebackup ends before PROBE names a backup (showing its
# stderr), or when no copy is seen in flight within 300 s (a generous bound
# that only catches a hang).
kill_backup_mid_copy() {
    local tag=$1 probe=$2 deadline t0 id
    shift 2
    need_basebackup
    t0=$(now)
    pg_bg "$tag" "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" "$@"
    deadline=$((SECONDS + 300))
    while :; do
        id=$("$probe") || id=""
        id=${id%%$'\n'*}
        [[ -n "$id" ]] && break
        if ! kill -0 "$BG_PID" 2>/dev/null; then
            cat "$T/out/$tag.err" >&2
            die "$tag: ue-basebackup ended before a copy was caught in flight"
        fi
        ((SECONDS < deadline)) || die "$tag: no copy of a new backup seen in flight within 300 s"
        sleep 0.02
    done
    kill -KILL "$BG_PID" 2>/dev/null ||
        { cat "$T/out/$tag.err" >&2; die "$tag: ue-basebackup of $id ended before it could be killed"; }
    wait "$BG_JOB" 2>/dev/null || true
    KILLED_BACKUP=$id
    KILL_SECS=$(elapsed "$t0")
}

# manifest_get ID KEY [REPO] [STANZA]: value of KEY in the [backup] section
# of backup ID's manifest (empty if absent).
manifest_get() {
    local f=${3:-$REPO}/${4:-$STANZA}/backup/$1/manifest
    [[ -f "$f" ]] || die "no manifest for backup $1: $f"
    awk -F= -v k="$2" '/^\[/ { s = $0; next } s == "[backup]" && $1 == k { sub(/^[^=]*=/, ""); print; exit }' "$f"
}

# pg_adopt NAME PORT: register the cluster in $T/NAME, started by something
# else than pg_start (e.g. `ue-pitr restore --start`), so that q/wait_* find
# it by port and the EXIT trap stops it.
pg_adopt() {
    _UW_PORT[$1]=$2
    _UW_NAME[$2]=$1
    _uw_running_add "$1"
}

# restore_to NAME [ue-pitr restore args...]: `ue-pitr restore` from
# $CONF/$STANZA as the PostgreSQL user into an empty data directory that
# $T/NAME leads to, like any cluster of the test.  With `--start --port P`
# among the args the cluster is adopted (pg_adopt) before the restore runs.
# Fails the test, showing stderr, on a non-zero exit; RESTORE_LOG and
# RESTORE_OUT are its stderr and stdout files.
#
# `--start --port` makes the server put its socket in the data directory's
# parent when the owner may write there (else /tmp): the data directory is
# $T/sock/NAME, so that the socket lands where q and pgbench_run look;
# $T/NAME is a symbolic link to it, and $T/NAME.log to the server log that
# --start writes (NAME/log/ue-wal-restore.log).
restore_to() {
    local name=$1
    shift
    local port="" start=0 a prev=""
    for a in "$@"; do
        case $a in
        --start | --start=y) start=1 ;;
        --port=*) port=${a#--port=} ;;
        esac
        [[ "$prev" == --port ]] && port=$a
        prev=$a
    done
    [[ ! -e "$T/$name" && ! -e "$T/sock/$name" ]] || die "restore_to: $T/$name already exists"
    pg_dir "$T/sock/$name" 700
    ln -s "sock/$name" "$T/$name"
    ln -sfn "$name/log/ue-wal-restore.log" "$T/$name.log"
    if ((start)); then
        [[ -n "$port" ]] || die "restore_to $name: --start without --port"
        pg_adopt "$name" "$port"
    fi
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/sock/$name" "$@"
        RESTORE_LOG=$LAST_ERR
        RESTORE_OUT=$LAST_OUT
    # Not started: a plain log file for a later pg_start.
    if [[ ! -e "$T/$name.log" ]]; then
        rm -f "$T/$name.log"
        pg_file "$T/$name.log" 644
    fi
}

# check_relations PORT: amcheck every user table (verify_heapam) and every
# user btree index (bt_index_check with heapallindexed), and check every
# user table's visibility map against its heap (pg_visibility: no tuple on
# a page marked all-visible or all-frozen may be otherwise) in database
# postgres; fails the test on any report.  Needs a writable (promoted)
# cluster for CREATE EXTENSION.
check_relations() {
    local port=$1 out
    q "$port" "create extension if not exists amcheck" >/dev/null
    q "$port" "create extension if not exists pg_visibility" >/dev/null
    out=$(q "$port" "select format('%s: %s tuples on pages marked all-visible are not (e.g. %s), %s on pages marked all-frozen are not',
            c.oid::regclass, v.n, v.tid, f.n)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace,
             lateral (select count(*) n, min(t) tid from pg_check_visible(c.oid) t) v,
             lateral (select count(*) n from pg_check_frozen(c.oid)) f
        where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast' and (v.n > 0 or f.n > 0)")
    [[ -z "$out" ]] || die "visibility map on port $port: $out"
    out=$(q "$port" "select c.oid::regclass || ': ' || coalesce(v.msg, '?')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace,
             lateral (select string_agg(format('blk %s off %s: %s', blkno, offnum, msg), '; ') msg
                      from verify_heapam(c.oid)) v
        where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast' and v.msg is not null")
    [[ -z "$out" ]] || die "verify_heapam on port $port: $out"
    q "$port" "select bt_index_check(c.oid, true) from pg_index i
        join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
        join pg_namespace n on n.oid = c.relnamespace
        where am.amname = 'btree' and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast'" >/dev/null
}

# ====================================================== object storage ==
# Helpers for tests against the loopback servers of tests/objstore.sh
# (s3rver, Azurite), with reference clients that are not ue-wal's code:
# boto3 for S3, tests/azure_tool.py (its own SharedKey signing) for Azure.

declare -a _UW_OBJSTORES=() # objstore.sh directories to stop on exit
declare -a _UW_BG_PIDS=()   # helper processes (proxies...) to stop on exit

# EXIT trap installed by objstore_start and bg_register: stop the clusters
# first (a recovering cluster would otherwise keep calling its
# restore_command against a stopped server), then the helper processes and
# the servers, then lib.sh's cleanup, which takes the exit status from $?.
# errexit is off here: with it, `(exit 1)` would end the shell before
# _uw_cleanup runs.
_uw_objstore_cleanup() {
    local rc=$? name p d
    trap - EXIT
    set +e
    for name in "${_UW_RUNNING[@]}"; do
        [[ -n "$name" && -f "$T/$name/postmaster.pid" ]] &&
            as_pg "$PGBIN/pg_ctl" -D "$T/$name" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    for p in "${_UW_BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    for d in "${_UW_OBJSTORES[@]}"; do
        bash "$UW_SRC_DIR/tests/objstore.sh" stop "$d" >/dev/null 2>&1
    done
    (exit "$rc")
    _uw_cleanup
}

# bg_register PID: stop PID (a helper the test started in the background)
# on exit.
bg_register() {
    _UW_BG_PIDS+=("$1")
    trap _uw_objstore_cleanup EXIT
}

# objstore_start DIR s3|azure [VAR=VALUE...]: start a loopback server with
# its data under DIR (VARs: UW_S3_PORT, UW_S3_BUCKET, UW_AZURE_PORT,
# UW_*_TLS_CERT/KEY, see tests/objstore.sh) and stop it on exit.  Starting
# again on the same DIR after objstore_stop keeps the data.
objstore_start() {
    local dir=$1 kind=$2 d known=0 err
    shift 2
    for d in "${_UW_OBJSTORES[@]}"; do [[ "$d" == "$dir" ]] && known=1; done
    ((known)) || _UW_OBJSTORES+=("$dir")
    trap _uw_objstore_cleanup EXIT
    err=$T/out/objstore.$(basename "$dir").$kind.start
    env "$@" bash "$UW_SRC_DIR/tests/objstore.sh" start "$dir" "$kind" 2>"$err" ||
        { cat "$err" >&2; die "could not start the $kind server in $dir"; }
}
# objstore_stop DIR: stop the servers of DIR (the data stays).
objstore_stop() {
    bash "$UW_SRC_DIR/tests/objstore.sh" stop "$1" 2>"$T/out/objstore.stop" ||
        { cat "$T/out/objstore.stop" >&2; die "could not stop the servers of $1"; }
}

# s3_tool_init ENDPOINT BUCKET: S3TOOL=(...), a boto3 client of the bucket
# (path style, s3rver's credentials, certificates not verified):
#   "${S3TOOL[@]}" list PREFIX     "size key etag last-modified-epoch-ms" per object
#   "${S3TOOL[@]}" get KEY FILE    download
#   "${S3TOOL[@]}" put KEY FILE    upload (replaces the object)
#   "${S3TOOL[@]}" head KEY        "size etag"
#   "${S3TOOL[@]}" uploads PREFIX [PAGE]  "key upload-id initiated-epoch-s" per
#       unfinished multipart upload (ListMultipartUploads, paginated)
#   "${S3TOOL[@]}" mpu-start KEY   start an upload of one part, print its id
#   "${S3TOOL[@]}" abort KEY ID    AbortMultipartUpload
#   "${S3TOOL[@]}" dump PREFIX DIR download every object under PREFIX to
#       DIR/KEY, checking that the bytes received equal both the listing's
#       Size and the GET's Content-Length, and that a single-part ETag is
#       the MD5 of the bytes; prints "size key" per object; exit 1 on a
#       mismatch (after checking them all).
s3_tool_init() {
    python3 -c 'import boto3' 2>/dev/null || die "python3 with boto3 is required (apt-get install python3-boto3)"
    cat >"$T/s3tool.py" <<'EOF'
import hashlib, os, sys
import boto3
from botocore.config import Config
endpoint, bucket, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1", verify=False,
                  config=Config(s3={"addressing_style": "path"},
                                retries={"max_attempts": 2, "mode": "standard"}))

def listing(prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o

if cmd == "list":
    for o in listing(args[0]):
        print(o["Size"], o["Key"], o["ETag"].strip('"'), int(o["LastModified"].timestamp() * 1000))
elif cmd == "get":
    s3.download_file(bucket, args[0], args[1])
elif cmd == "put":
    with open(args[1], "rb") as f:
        s3.put_object(Bucket=bucket, Key=args[0], Body=f.read())
elif cmd == "head":
    h = s3.head_object(Bucket=bucket, Key=args[0])
    print(h["ContentLength"], h["ETag"].strip('"'))
elif cmd == "dump":
    bad = 0
    for o in listing(args[0]):
        key, size, etag = o["Key"], o["Size"], o["ETag"].strip('"')
        r = s3.get_object(Bucket=bucket, Key=key)
        data = r["Body"].read()
        dest = os.path.join(args[1], key)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        if not (len(data) == size == r["ContentLength"]):
            print("size mismatch: %s: listed %d, Content-Length %d, received %d"
                  % (key, size, r["ContentLength"], len(data)), file=sys.stderr)
            bad += 1
        elif "-" not in etag and etag != hashlib.md5(data).hexdigest():
            print("ETag mismatch: %s: %s is not the MD5 of the %d bytes received"
                  % (key, etag, len(data)), file=sys.stderr)
            bad += 1
        print(size, key)
    sys.exit(1 if bad else 0)
elif cmd == "uploads":
    # list_multipart_uploads through boto3's paginator (key-marker and
    # upload-id-marker), pages of args[1] uploads when given
    pages = s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, Prefix=args[0],
        PaginationConfig={"PageSize": int(args[1])} if len(args) > 1 else {})
    for page in pages:
        for u in page.get("Uploads", []):
            print(u["Key"], u["UploadId"], int(u["Initiated"].timestamp()))
elif cmd == "mpu-start":
    # an unfinished upload of one 1 KiB part; prints its upload id. The part
    # with a signed payload (newer botocore would stream it with a checksum
    # trailer, which s3rver refuses).
    try:
        cfg = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                          aws_secret_access_key="S3RVER", region_name="us-east-1", verify=False,
                          config=cfg)
    except TypeError:
        pass  # an older botocore: it signs the payload anyway
    u = s3.create_multipart_upload(Bucket=bucket, Key=args[0])
    s3.upload_part(Bucket=bucket, Key=args[0], UploadId=u["UploadId"], PartNumber=1,
                   Body=b"x" * 1024)
    print(u["UploadId"])
elif cmd == "abort":
    s3.abort_multipart_upload(Bucket=bucket, Key=args[0], UploadId=args[1])
else:
    sys.exit("s3tool: unknown command " + cmd)
EOF
        S3TOOL=(python3 "$T/s3tool.py" "$1" "$2")
}

# az_dump CONTAINER PREFIX DIR: every blob under PREFIX, listed and
# downloaded by tests/azure_tool.py's own signed requests (AZ_ENDPOINT,
# AZ_ACCOUNT, AZ_KEY) into DIR/NAME, checking the bytes received against the
# listing's Content-Length and, where the listing has one, Content-MD5;
# prints "size name" per blob; exit 1 on a mismatch.
az_dump() {
    python3 - "$UW_SRC_DIR/tests" "$@" <<'EOF'
import base64, hashlib, os, sys
import xml.etree.ElementTree as ET
sys.path.insert(0, sys.argv[1])
import azure_tool as az
container, prefix, out = sys.argv[2], sys.argv[3], sys.argv[4]
marker, bad = "", 0
while True:
    q = {"restype": "container", "comp": "list", "prefix": prefix}
    if marker:
        q["marker"] = marker
    st, _, body = az.request("GET", "/" + container, q)
    az.check(st, body)
    root = ET.fromstring(body)
    for b in root.iter("Blob"):
        name = b.findtext("Name")
        size = int(b.findtext("Properties/Content-Length"))
        md5 = b.findtext("Properties/Content-MD5") or ""
        st, _, data = az.request("GET", "/%s/%s" % (container, name))
        az.check(st, data)
        dest = os.path.join(out, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        if len(data) != size:
            print("size mismatch: %s: listed %d, received %d" % (name, size, len(data)), file=sys.stderr)
            bad += 1
        elif md5 and md5 != base64.b64encode(hashlib.md5(data).digest()).decode():
            print("Content-MD5 mismatch: %s" % name, file=sys.stderr)
            bad += 1
        print(size, name)
    marker = root.findtext("NextMarker") or ""
    if not marker:
        break
sys.exit(1 if bad else 0)
EOF
}

# check_wal_objects LIST WALDIR...: LIST holds "size key" lines of a stanza's
# objects (from a reference client); every WAL object among them
# (archive/<16 hex>/<name>-<sha256>.zst, archive/history/<tli>.history-...)
# is fetched with ue-wal-fetch
# ($CONF, $STANZA) as the PostgreSQL user: it must deliver a file whose
# SHA-256 is the one in the object's name and, when a WALDIR still holds the
# file, that is byte-identical to it (the first WALDIR that has it).  Sets
# WAL_OBJECTS (how many were fetched) and WAL_COMPARED (how many compared
# with a WALDIR's file); fails the test otherwise.
check_wal_objects() {
    local list=$1 waldir size key base name sum dir=$T/walcheck
    shift
    WAL_OBJECTS=0
    WAL_COMPARED=0
    rm -rf "$dir"
    pg_dir "$dir" 700
    while read -r size key; do
        [[ "$key" == */archive/* ]] || continue
        [[ "$key" =~ /archive/([0-9A-F]{16}|history)/([^/]+)$ ]] ||
            die "unexpected object in the archive: $key"
        base=${BASH_REMATCH[2]}
        [[ "$base" =~ ^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)-([0-9a-f]{64})\.zst$ ]] ||
            die "unexpected object name in the archive: $key"
        name=${BASH_REMATCH[1]}
        sum=${BASH_REMATCH[3]}
        assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$name" "$dir/$name"
        [[ "$(sha "$dir/$name")" == "$sum" ]] ||
            die "ue-wal-fetch $name ($key, $size bytes): SHA-256 $(sha "$dir/$name") is not the one in the name"
        for waldir in "$@"; do
            [[ -f "$waldir/$name" ]] || continue
            cmp -s "$dir/$name" "$waldir/$name" || die "ue-wal-fetch $name differs from $waldir/$name"
            WAL_COMPARED=$((WAL_COMPARED + 1))
            break
        done
        rm -f "$dir/$name"
        WAL_OBJECTS=$((WAL_OBJECTS + 1))
    done <"$list"
}

# ================================ asynchronous push and prefetching fetch ==
# Helpers for async_push.sh and prefetch_fetch.sh.

declare -a _UW_EXIT_HOOKS=()

# at_exit CMD: eval CMD when the test exits (errors ignored), after every
# cluster is stopped (so that no restore_command can start a new
# prefetcher) and before lib.sh's cleanup, which still gets the exit status
# (through _uw_objstore_cleanup when the object-storage helpers are loaded:
# call at_exit after objstore_start / bg_register, which set their own trap).
at_exit() {
    _UW_EXIT_HOOKS+=("$1")
    trap _uw_exit_hooks EXIT
}
_uw_exit_hooks() {
    local rc=$? name h
    trap - EXIT
    set +e
    for name in "${_UW_RUNNING[@]}"; do
        [[ -n "$name" && -f "$T/$name/postmaster.pid" ]] &&
            as_pg "$PGBIN/pg_ctl" -D "$T/$name" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    for h in "${_UW_EXIT_HOOKS[@]}"; do eval "$h"; done
    # The next cleanup takes the exit status from $?: nothing may run
    # between `(exit "$rc")` and its call.
    local next=_uw_cleanup
    declare -F _uw_objstore_cleanup >/dev/null && next=_uw_objstore_cleanup
    (exit "$rc")
    "$next"
}

# own_pids [BINARY...]: pids of the processes running this test's private
# copies $T/bin/BINARY (default: ue-wal-push and ue-wal-fetch), e.g.
# detached prefetchers or an orphaned asynchronous batch.  Matches the exact
# executable path, so nothing of another test or of the system is found.
# shellcheck disable=SC2120 # BINARY... is optional
own_pids() {
    local -a bins=("$@") exes=()
    ((${#bins[@]})) || bins=(ue-wal-push ue-wal-fetch)
    local b
    for b in "${bins[@]}"; do
        ((${#exes[@]})) && exes+=(-o)
        exes+=(-lname "$T/bin/$b" -o -lname "$T/bin/$b (deleted)")
    done
    # One find over /proc, not a readlink per process: a scan must stay
    # cheap on a loaded machine, where forks are slow.
    { find /proc/[0-9]*/exe -maxdepth 0 \( "${exes[@]}" \) 2>/dev/null || true; } | cut -d/ -f3
    return 0
}
# kill_own_processes: SIGKILL (by pid) whatever own_pids finds; waits up
# to 30 s for them to go.
kill_own_processes() {
    local pids deadline=$((SECONDS + 30))
    pids=$(own_pids)
    [[ -n "$pids" ]] || return 0
    echo "[$UW_TEST_NAME] killing leftover processes of $T/bin: ${pids//$'\n'/ }" >&2
    # A process may exit between the scan and the kill: not an error (and
    # never one under set -e).
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null || true
    while ((SECONDS < deadline)); do
        [[ -z "$(own_pids)" ]] && return 0
        sleep 0.1
    done
}

# set_archive_command NAME COMMAND: archive_command = COMMAND, reload, wait
# until a new session sees it.
set_archive_command() {
    local name=$1 cmd=$2 port=${_UW_PORT[$1]} deadline=$((SECONDS + 120))
    pg_conf "$name" "archive_command = '$cmd'"
    pg_reload "$name"
    while ((SECONDS < deadline)); do
        [[ "$(q "$port" "show archive_command")" == "$cmd" ]] && return 0
        sleep 0.1
    done
    die "archive_command of $name not reloaded within 120 s"
}

# pg_bg TAG CMD...: start CMD in the background as the PostgreSQL OS user,
# stdout and stderr in $T/out/TAG.out and $T/out/TAG.err.  Sets BG_PID, the
# pid of CMD itself (to signal it: not that of runuser), and BG_JOB, the
# shell job to `wait` for.
pg_bg() {
    local tag=$1 deadline=$((SECONDS + 120))
    shift
    pg_dir "$T/pids" 755
    local pidfile=$T/pids/$tag
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    as_pg sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
        >"$T/out/$tag.out" 2>"$T/out/$tag.err" &
        BG_JOB=$!
    while ((SECONDS < deadline)); do
        [[ -s "$pidfile" ]] && break
        kill -0 "$BG_JOB" 2>/dev/null || break
        sleep 0.05
    done
    BG_PID=$(cat "$pidfile" 2>/dev/null) || BG_PID=""
    [[ "$BG_PID" =~ ^[0-9]+$ ]] || die "pg_bg $tag: the command did not start"
}

# spool_lock_holders SPOOL: pids holding SPOOL/lock open (a prefetcher keeps
# its flock on it for its whole life).
# One find over /proc (not a readlink per descriptor: thousands of forks take
# minutes on a loaded machine).
spool_lock_holders() {
    local lock
    lock=$(readlink -f "$1" 2>/dev/null || echo "$1")/lock
    # One find over every open file (see own_pids).
    { find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname "$lock" 2>/dev/null || true; } | cut -d/ -f3 | sort -u
    return 0
}
# spool_segments SPOOL: the WAL segments spooled in SPOOL (names, sorted).
spool_segments() {
    find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}$' \
        -printf '%f\n' 2>/dev/null | sort
}
# wait_lock_free DIR TIMEOUT: until no process holds DIR/lock (an
# asynchronous pusher or a prefetcher has left); fails after TIMEOUT seconds
# in which DIR did not change (no note, error or status written).
wait_lock_free() {
    local dir=$1 deadline=$((SECONDS + $2)) holders mark seen=""
    while :; do
        holders=$(spool_lock_holders "$dir")
        [[ -z "$holders" ]] && return 0
        mark=$(find "$dir" -maxdepth 1 -printf '%f %s\n' 2>/dev/null | sort | cksum)
        if [[ "$mark" != "$seen" ]]; then
            seen=$mark
            deadline=$((SECONDS + $2))
        fi
        ((SECONDS < deadline)) || die "$dir/lock still held by ${holders//$'\n'/ }, and nothing written in $dir for $2 s"
        sleep 0.1
    done
}
# wait_prefetcher_gone SPOOL TIMEOUT: until no process holds SPOOL/lock and
# SPOOL holds neither segments, nor temporary files, nor `last`.  Sets
# PREFETCH_GONE_SECS; fails the test after TIMEOUT seconds.
wait_prefetcher_gone() {
    local spool=$1 timeout=$2 t0=$EPOCHREALTIME deadline holders left
    deadline=$((SECONDS + timeout))
    while :; do
        holders=$(spool_lock_holders "$spool")
        left=$(find "$spool" -maxdepth 1 -type f \( -regextype posix-extended \
            -regex '.*/[0-9A-F]{24}' -o -name '*.uwtmp.*' -o -name last \) -printf '%f ' 2>/dev/null)
        if [[ -z "$holders" && -z "$left" ]]; then
                        PREFETCH_GONE_SECS=$(elapsed "$t0")
            return 0
        fi
        if ((SECONDS >= deadline)); then
            die "prefetcher of $spool still there after ${timeout}s: holders of its lock: '${holders//$'\n'/ }', files left: '$left'"
        fi
        sleep 0.5
    done
}

# stored_objects SEG [REPO]: the objects stored for WAL file SEG (one path
# per line), leaving out the temporary files (*.uwtmp.*) of writes that have
# not completed; repo_temp_files [REPO]: those temporary files.
stored_objects() {
    find "${2:-$REPO}" -type f -name "$1-*" ! -name '*.uwtmp.*' | sort
}
repo_temp_files() {
    find "${1:-$REPO}" -type f -name '*.uwtmp.*' | sort
}

# wal_dir_ready DIR SRCDIR SEG...: a pg_wal-like directory DIR (owned by the
# PostgreSQL user) holding copies of SRCDIR/SEG with archive_status/SEG.ready.
wal_dir_ready() {
    local dir=$1 src=$2 seg
    shift 2
    pg_dir "$dir" 700
    pg_dir "$dir/archive_status" 700
    for seg in "$@"; do
        cp "$src/$seg" "$dir/$seg"
        : >"$dir/archive_status/$seg.ready"
    done
    [[ $(id -u) -ne 0 ]] || chown -R "$PGUSER_OS:" "$dir"
}

# archive_ready_dir DIR CMD...: the archiver's loop over a pg_wal-like DIR:
# while DIR/archive_status holds .ready files, run `CMD... DIR/<oldest>` as
# the PostgreSQL user and on exit 0 rename its .ready to .done, as
# PostgreSQL does.  Stops at the first failure.  Sets ARCHIVE_CALLS,
# ARCHIVE_RC (0, or the failing exit code), ARCHIVE_FAILED (the file) and
# ARCHIVE_LOG (the calls' stderr, concatenated).
archive_ready_dir() {
    local dir=$1 next
    shift
    ARCHIVE_CALLS=0
        ARCHIVE_RC=0
        ARCHIVE_FAILED=""
    ARCHIVE_LOG=$T/out/archive_ready.$(basename "$dir").log
    : >"$ARCHIVE_LOG"
    while :; do
        next=$(find "$dir/archive_status" -maxdepth 1 -name '*.ready' -printf '%f\n' | sort | head -1)
        [[ -n "$next" ]] || return 0
        next=${next%.ready}
        run as_pg "$@" "$dir/$next"
        ARCHIVE_CALLS=$((ARCHIVE_CALLS + 1))
        cat "$LAST_ERR" >>"$ARCHIVE_LOG"
        if ((LAST_RC != 0)); then
            ARCHIVE_RC=$LAST_RC
            ARCHIVE_FAILED=$next
            return 0
        fi
        mv "$dir/archive_status/$next.ready" "$dir/archive_status/$next.done"
    done
}
