#!/usr/bin/env bash
# bench/run.sh: ue-wal against pgBackRest on this machine, in one run.
# What it measures and how to read the result: bench/README.md.
#
#   bench/run.sh                   # full: scale 50, 64 segments, 3 interleaved runs
#   BENCH_QUICK=1 bench/run.sh     # quick: scale 5, 16 segments, 1 run
#   BENCH_FIGURES="push fetch backup restore defaults" bench/run.sh
#                                  # also each tool at its own defaults, ue-wal at zstd 1 and 6
#
# Run as root (servers and tools run as the postgres user through runuser).
set -euo pipefail
# The whole script is one compound command: bash parses it before running it,
# so editing this file while a benchmark runs cannot change the running one.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)

# ------------------------------------------------------------- parameters --
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then d_scale=5 d_seg=16 d_runs=1; else d_scale=50 d_seg=64 d_runs=3; fi
SCALE=${BENCH_SCALE:-$d_scale}            # pgbench scale of both clusters
SEGMENTS=${BENCH_SEGMENTS:-$d_seg}        # WAL segments per corpus
RUNS=${BENCH_RUNS:-$d_runs}               # interleaved runs; medians are reported
PMAX=${BENCH_PROCESS_MAX:-2}              # process-max for async, prefetch, backup, restore
QUEUE_MAX=${BENCH_QUEUE_MAX:-268435456}   # archive-get-queue-max (both tools), bytes
LEVEL=3                                   # zstd level, both tools (except the defaults figures)
UE_LEVELS="1 6"                           # defaults figures: ue-wal push sync also at these zstd levels
CORPORA=${BENCH_CORPORA:-"plain realistic"}
FIGURES=${BENCH_FIGURES:-"push fetch backup restore"}   # optional: defaults
DIR=${BENCH_DIR:-/var/tmp/ue-wal-bench}   # everything lives here
BUILD=${BENCH_BUILD:-/tmp/bench-build}    # cmake build directory of ue-wal
PGBIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55432}                 # plain cluster; realistic = PORT+1
KEEP=${BENCH_KEEP:-0}                     # 1: keep $DIR (clusters, corpora) at exit
REUSE=${BENCH_REUSE:-0}                   # 1: reuse clusters+corpora kept by BENCH_KEEP=1
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}         # 1: use the binaries already in $BUILD
PGUSER_OS=postgres
OUT=$HERE/out
STAMP=$(date -u +%Y%m%d-%H%M%S)
STANZA=bench

[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (servers run as $PGUSER_OS via runuser)" >&2; exit 2; }
# $DIR is removed at exit: it must be ours (marker file) or not exist yet.
MARK=.ue-wal-bench
[[ $DIR == /?*/?* && $DIR != *..* ]] || { echo "bench: BENCH_DIR must be an absolute path two levels deep or more" >&2; exit 2; }
if [[ -e $DIR && ! -f $DIR/$MARK ]]; then
    echo "bench: $DIR exists and was not made by this benchmark (no $MARK): refusing to use it" >&2
    exit 2
fi
for v in SCALE SEGMENTS RUNS PMAX QUEUE_MAX PORT; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "bench: BENCH_$v must be a positive integer" >&2; exit 2; }
done
command -v pgbackrest >/dev/null || { echo "bench: pgbackrest is not installed (apt-get install -y pgbackrest)" >&2; exit 2; }
[[ -x $PGBIN/postgres ]] || { echo "bench: no PostgreSQL in $PGBIN" >&2; exit 2; }

T0=$EPOCHREALTIME
log() { printf '[bench %6.0fs] %s\n' "$(awk -v a="$EPOCHREALTIME" -v b="$T0" 'BEGIN{print a-b}')" "$*" >&2; }
die() { printf '[bench] FAIL: %s\n' "$*" >&2; exit 1; }

PGENV=(PATH="$PGBIN:/usr/local/bin:/usr/bin:/bin" LC_ALL=C.UTF-8 LANG=C.UTF-8 TZ=UTC HOME="$DIR")
as_pg() { runuser -u "$PGUSER_OS" -- env -i "${PGENV[@]}" "$@"; }
psql_c() { # psql_c CORPUS SQL: one value
    as_pg "$PGBIN/psql" -X -q -A -t -h "$DIR/sock" -p "$(port_of "$1")" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$2"
}
port_of() { [[ $1 == plain ]] && echo "$PORT" || echo $((PORT + 1)); }

# ------------------------------------------------------------ cleanup -----
STARTED=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$?
    set +e
    for pgdata in "${STARTED[@]}"; do
        [[ -f $pgdata/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1
    done
    if [[ $KEEP == 1 ]]; then
        log "kept $DIR (BENCH_KEEP=1); rerun with BENCH_REUSE=1 BENCH_KEEP=1 to reuse the corpora"
        rm -rf "$DIR"/*/run
        [[ $rc -ne 0 ]] && echo "[bench] failed (exit $rc); logs are in $DIR/log" >&2
    else
        [[ $rc -ne 0 ]] && echo "[bench] failed (exit $rc); rerun with BENCH_KEEP=1 to keep the logs ($DIR/log)" >&2
        [[ -f $DIR/$MARK ]] && rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_start() { # pg_start CORPUS
    local pgdata=$DIR/$1/pgdata
    as_pg "$PGBIN/pg_ctl" -D "$pgdata" -l "$DIR/log/$1.pg.log" -w -t 120 start >/dev/null
    STARTED+=("$pgdata")
}

# ------------------------------------------------------------ build -------
# What the kept corpora were made with: reused only when it matches.
CORPUS_STAMP="scale=$SCALE segments=$SEGMENTS corpora=$CORPORA"
REUSING=0
if [[ $REUSE == 1 && -f $DIR/ready && $(cat "$DIR/ready") == "$CORPUS_STAMP" ]]; then REUSING=1; fi
if [[ $REUSE == 1 && $REUSING == 0 ]]; then log "BENCH_REUSE=1 but $DIR holds no corpora for $CORPUS_STAMP: generating"; fi
if [[ $REUSING == 1 ]]; then
    log "reusing $DIR ($CORPUS_STAMP)"
    rm -rf "${DIR:?}"/*/run "${DIR:?}"/bin
else
    if [[ -d $DIR ]]; then
        # Leftovers of an interrupted run: stop its servers first.
        for pid in "$DIR"/*/pgdata/postmaster.pid; do
            if [[ -f $pid ]]; then as_pg "$PGBIN/pg_ctl" -D "$(dirname "$pid")" -m immediate -w stop >/dev/null 2>&1 || true; fi
        done
        rm -rf "$DIR"
    fi
fi
mkdir -p "$DIR"/{bin,log,sock} "$OUT"
touch "$DIR/$MARK"
chmod 755 "$DIR"

if [[ $SKIP_BUILD != 1 ]]; then
    log "building ue-wal (Release) in $BUILD"
    for attempt in 1 2 3 4 5 6; do
        if cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$DIR/log/build.log" 2>&1 &&
            cmake --build "$BUILD" -j2 --target ue-wal-push ue-wal-fetch ue-pitr ue-basebackup >>"$DIR/log/build.log" 2>&1; then
            break
        fi
        [[ $attempt == 6 ]] && { tail -20 "$DIR/log/build.log" >&2; die "build failed (see above)"; }
        log "build failed (a file may be mid-edit); retrying in 60 s"
        sleep 60
    done
fi
for b in ue-wal-push ue-wal-fetch ue-pitr ue-basebackup; do
    [[ -x $BUILD/$b ]] || die "$BUILD/$b is missing"
    cp "$BUILD/$b" "$DIR/bin/"   # a private copy: rebuilds during the run do not matter
done
BIN=$DIR/bin
cc -O2 -std=gnu11 -Wall -o "$BIN/drive" "$HERE/drive.c" -lpthread
cc -O2 -std=gnu11 -Wall -o "$BIN/ceiling" "$HERE/ceiling.c" -lzstd -lcrypto -lpthread
PGBR=$(command -v pgbackrest)
UE_COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$SRC" status --porcelain -- common archive restore pitr 2>/dev/null) ]]; then UE_COMMIT+="+dirty"; fi

HAVE_RESTORE=0
PITR_HELP=$("$BIN/ue-pitr" --help 2>&1 || true)   # not piped into grep -q: SIGPIPE + pipefail
if grep -Eq '^[[:space:]]+restore([[:space:]]|$)' <<<"$PITR_HELP"; then HAVE_RESTORE=1; fi
[[ $HAVE_RESTORE == 1 ]] || log "ue-pitr has no 'restore' command yet: the restore figure is skipped"
# The defaults figures run ue-wal as it ships; the report names what that is.
PUSH_HELP=$("$BIN/ue-wal-push" --help 2>&1 || true)
UE_DEFAULT="$(sed -n 's/^ *--compress-type .*\[default: \([^]]*\)\].*/\1/p' <<<"$PUSH_HELP") level $(sed -n 's/^ *--compress-level .*\[default: \([^]]*\)\].*/\1/p' <<<"$PUSH_HELP")"

# --------------------------------------------------------- configs --------
# LEVEL (default $LEVEL) is the zstd level; "default" writes no compression
# settings at all, so the tool compresses as it ships.
no_compress_conf() { # no_compress_conf FILE LEVEL
    if [[ $2 == default ]]; then sed -i '/^compress-\(type\|level\)=/d' "$1"; fi
}
ue_conf() { # ue_conf FILE REPO PGDATA CORPUS [LEVEL]
    cat >"$1" <<EOF
[global]
repo1-path=$2
compress-type=zstd
compress-level=${5:-$LEVEL}
log-level=warn

[$STANZA]
pg-path=$3
pg-port=$(port_of "$4")
pg-socket-path=$DIR/sock
pg-user=postgres
EOF
    no_compress_conf "$1" "${5:-$LEVEL}"
}
pb_conf() { # pb_conf FILE REPO PGDATA CORPUS SCRATCH [LEVEL]
    mkdir -p "$5/pb-lock" "$5/pb-log" "$5/pb-spool"
    cat >"$1" <<EOF
[global]
repo1-path=$2
repo1-retention-full=99
compress-type=zst
compress-level=${6:-$LEVEL}
start-fast=y
lock-path=$5/pb-lock
log-path=$5/pb-log
spool-path=$5/pb-spool
log-level-console=warn
log-level-stderr=warn
log-level-file=off

[$STANZA]
pg1-path=$3
pg1-port=$(port_of "$4")
pg1-socket-path=$DIR/sock
pg1-user=postgres
EOF
    no_compress_conf "$1" "${6:-$LEVEL}"
}

# ------------------------------------------------------ corpus ------------
# A cluster at scale $SCALE (plain: pgbench's blank filler; realistic: filler
# rewritten with random md5 text, and kept random by the run's own updates),
# then pgbench with a CHECKPOINT every few seconds (full-page images) until
# $SEGMENTS full segments after the load are archived (cp); keep those.
gen_corpus() {
    local c=$1 d=$DIR/$1 port
    port=$(port_of "$c")
    rm -rf "$d"
    mkdir -p "$d/archive-raw" "$d/corpus"
    chown -R "$PGUSER_OS:" "$DIR"
    log "$c: initdb + pgbench -i -s $SCALE"
    as_pg "$PGBIN/initdb" -D "$d/pgdata" -U postgres -A trust --no-sync >"$DIR/log/$c.initdb.log"
    cat >>"$d/pgdata/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$DIR/sock'
archive_mode = on
archive_command = 'cp %p $d/archive-raw/%f'
max_wal_size = 8GB
checkpoint_timeout = 30s
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = on
EOF
    pg_start "$c"
    as_pg "$PGBIN/pgbench" -h "$DIR/sock" -p "$port" -U postgres -i -s "$SCALE" -q postgres >"$DIR/log/$c.init.log" 2>&1
    local script=()
    if [[ $c == realistic ]]; then
        log "$c: filler = random md5 text in every pgbench_accounts row"
        psql_c "$c" "UPDATE pgbench_accounts SET filler = md5(random()::text) || md5(random()::text)" >/dev/null
        psql_c "$c" "VACUUM ANALYZE pgbench_accounts" >/dev/null
        cat >"$d/tpcb-md5.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta, filler = md5(random()::text) || md5(random()::text) WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
EOF
        chown "$PGUSER_OS:" "$d/tpcb-md5.sql"
        script=(-f "$d/tpcb-md5.sql")
    fi
    psql_c "$c" "CHECKPOINT" >/dev/null
    local first
    first=$(psql_c "$c" "SELECT pg_walfile_name(pg_switch_wal())")
    # pg_switch_wal returns the end of the switched segment: the next one is the first we keep.
    local tli=${first:0:8} segno=$(( (16#${first:8:8} << 8) + 16#${first:16:8} + 1 ))
    local last=$((segno + SEGMENTS - 1)) cur
    : >"$d/list"
    for ((s = segno; s <= last; s++)); do
        printf '%s%08X%08X\n' "$tli" $((s >> 8)) $((s & 255)) >>"$d/list"
    done
    log "$c: pgbench with checkpoints until $(tail -1 "$d/list") is complete"
    while :; do
        cur=$(psql_c "$c" "SELECT pg_walfile_name(pg_current_wal_lsn())")
        (( (16#${cur:8:8} << 8) + 16#${cur:16:8} > last )) && break
        as_pg "$PGBIN/pgbench" -h "$DIR/sock" -p "$port" -U postgres -n -c 4 -j 2 -T 5 "${script[@]}" postgres >>"$DIR/log/$c.pgbench.log" 2>&1
        psql_c "$c" "CHECKPOINT" >/dev/null
    done
    psql_c "$c" "SELECT pg_switch_wal()" >/dev/null
    local want
    want=$(tail -1 "$d/list")
    for _ in $(seq 600); do
        [[ $(psql_c "$c" "SELECT coalesce(last_archived_wal, '') >= '$want' FROM pg_stat_archiver") == t ]] && break
        sleep 0.5
    done
    while read -r n; do
        [[ -f $d/archive-raw/$n && $(stat -c %s "$d/archive-raw/$n") == 16777216 ]] || die "$c: segment $n was not archived"
        mv "$d/archive-raw/$n" "$d/corpus/$n"
    done <"$d/list"
    cp "$d/pgdata/global/pg_control" "$d/pg_control"
    log "$c: corpus of $SEGMENTS segments: $(zstd -3 -q -c "$d"/corpus/* | wc -c | awk -v n="$SEGMENTS" '{printf "%.2fx with zstd -3", n*16777216/$1}')"
}

# Stanzas: created once against the live cluster into template repositories,
# which every run copies (a fresh repository per run, no server needed).
make_stanzas() {
    local c=$1 d=$DIR/$1
    mkdir -p "$d/tpl/ue" "$d/tpl/pb" "$d/tpl/scratch"
    ue_conf "$d/tpl/ue.conf" "$d/tpl/ue" "$d/pgdata" "$c"
    pb_conf "$d/tpl/pb.conf" "$d/tpl/pb" "$d/pgdata" "$c" "$d/tpl/scratch"
    chown -R "$PGUSER_OS:" "$d/tpl"
    as_pg "$BIN/ue-pitr" --config "$d/tpl/ue.conf" --stanza "$STANZA" stanza-create >"$DIR/log/$c.stanza.log" 2>&1 ||
        { cat "$DIR/log/$c.stanza.log" >&2; die "$c: ue-pitr stanza-create failed"; }
    as_pg "$PGBR" --config="$d/tpl/pb.conf" --stanza="$STANZA" stanza-create >>"$DIR/log/$c.stanza.log" 2>&1 ||
        { cat "$DIR/log/$c.stanza.log" >&2; die "$c: pgbackrest stanza-create failed"; }
    rm -rf "$d/tpl/scratch"
    # Backup repositories: the cluster archives into both (a backup waits for its WAL).
    mkdir -p "$d/bk/scratch"
    cp -a "$d/tpl/ue" "$d/bk/ue"
    cp -a "$d/tpl/pb" "$d/bk/pb"
    ue_conf "$d/bk/ue.conf" "$d/bk/ue" "$d/pgdata" "$c"
    pb_conf "$d/bk/pb.conf" "$d/bk/pb" "$d/pgdata" "$c" "$d/bk/scratch"
    chown -R "$PGUSER_OS:" "$d/bk"
    psql_c "$c" "ALTER SYSTEM SET archive_command = '$BIN/ue-wal-push --config $d/bk/ue.conf --stanza $STANZA %p && $PGBR --config=$d/bk/pb.conf --stanza=$STANZA archive-push %p'" >/dev/null
    psql_c "$c" "SELECT pg_reload_conf()" >/dev/null
}

if [[ $REUSING == 0 ]]; then
    for c in $CORPORA; do
        gen_corpus "$c"
        make_stanzas "$c"   # from now on the cluster archives into the backup repositories
        rm -rf "$DIR/$c/archive-raw"
    done
    chown -R "$PGUSER_OS:" "$DIR"
    echo "$CORPUS_STAMP" >"$DIR/ready"
else
    for c in $CORPORA; do
        [[ -f $DIR/$c/list ]] || die "BENCH_REUSE=1 but $DIR/$c has no corpus"
        pg_start "$c"
    done
fi
chown -R "$PGUSER_OS:" "$DIR"

# ------------------------------------------------------- measuring --------
RESULTS=$DIR/results.tsv
: >"$RESULTS"
record() { # record CORPUS FIGURE TOOL RUN "drive output" [EXTRA]
    local s rss bg pss
    s=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$5")
    rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    bg=$(sed -n 's/.*bg_maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    pss=$(sed -n 's/.*tree_pss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$s" "$rss" "$bg" "${6:-}" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$pss" >>"$RESULTS"
    log "$1 $2 $3 run $4: ${s}s (rss ${rss} KiB, background ${bg} KiB, tree pss ${pss} KiB)${6:+, $6}"
}

# A fresh pg_wal with every segment .ready, as the archiver would see it.
fake_pgdata() { # fake_pgdata CORPUS WITH_SEGMENTS
    local d=$DIR/$1 f=$DIR/$1/run/pgdata
    mkdir -p "$f/pg_wal/archive_status" "$f/global"
    cp "$d/pg_control" "$f/global/pg_control"
    cp "$d/pgdata/PG_VERSION" "$f/"
    if [[ $2 == 1 ]]; then
        while read -r n; do
            ln "$d/corpus/$n" "$f/pg_wal/$n"
            : >"$f/pg_wal/archive_status/$n.ready"
        done <"$d/list"
    fi
}

# "COUNT BYTES" of the WAL objects in a repository (any extension: .zst, .gz).
count_objects() { # count_objects ue|pb REPO
    if [[ $1 == ue ]]; then find "$2/$STANZA/archive" -type f -name '0*' -printf '%s\n'
    else find "$2/archive/$STANZA" -mindepth 3 -type f -name '0*' -printf '%s\n'; fi |
        awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }'
}

# The figure name of a compression setting: none for $LEVEL, -default, -lN.
variant() { # variant [LEVEL]
    case ${1:-} in "") ;; default) echo -default ;; *) echo "-l$1" ;; esac
}

run_push() { # run_push CORPUS ue|pb sync|async RUN [LEVEL]
    local c=$1 tool=$2 mode=$3 r=$4 lvl=${5:-} d=$DIR/$1 run=$DIR/$1/run cmd out
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/ue-spool"
    fake_pgdata "$c" 1
    cp -a "$d/tpl/$tool" "$run/repo"
    if [[ $tool == ue ]]; then
        ue_conf "$run/conf" "$run/repo" "$d/pgdata" "$c" "$lvl"
        cmd="$BIN/ue-wal-push --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --process-max $PMAX --spool-path $run/ue-spool"
        cmd+=" %p"
    else
        pb_conf "$run/conf" "$run/repo" "$run/pgdata" "$c" "$run/scratch" "$lvl"
        cmd="$PGBR --config=$run/conf --stanza=$STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --process-max=$PMAX"
        cmd+=" archive-push %p"
    fi
    chown -R "$PGUSER_OS:" "$run"
    sync
    out=$(as_pg DRIVE_GRACE=30 DRIVE_TREE_PSS="$([[ $mode == async ]] && echo 1 || echo 0)" "$BIN/drive" push "$run/pgdata" "$d/list" "$cmd" 2>>"$DIR/log/$c.push.log") ||
        { tail -5 "$DIR/log/$c.push.log" >&2; die "$c: push $tool $mode failed"; }
    local objects got bytes
    objects=$(count_objects "$tool" "$run/repo")
    read -r got bytes <<<"$objects"
    [[ $got == "$SEGMENTS" ]] || die "$c: push $tool $mode$(variant "$lvl"): $got objects in the repository, expected $SEGMENTS"
    record "$c" "push-$mode$(variant "$lvl")" "$tool" "$r" "$out" "$bytes"
    # The first complete archive of each tool is what the fetch figures read
    # (at the compared level: the other levels are not fetched).
    if [[ -z $lvl && ! -d $d/archived/$tool ]]; then
        mkdir -p "$d/archived"
        mv "$run/repo" "$d/archived/$tool"
    fi
    rm -rf "$run"
}

run_fetch() { # run_fetch CORPUS ue|pb sync|async RUN
    local c=$1 tool=$2 mode=$3 r=$4 d=$DIR/$1 run=$DIR/$1/run cmd out
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/fetched"
    fake_pgdata "$c" 0
    if [[ $tool == ue ]]; then
        ue_conf "$run/conf" "$d/archived/ue" "$d/pgdata" "$c"
        cmd="$BIN/ue-wal-fetch --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-get-queue-max $QUEUE_MAX --process-max $PMAX"
        cmd+=" %f %p"
    else
        pb_conf "$run/conf" "$d/archived/pb" "$run/pgdata" "$c" "$run/scratch"
        cmd="$PGBR --config=$run/conf --stanza=$STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --archive-get-queue-max=$QUEUE_MAX --process-max=$PMAX"
        cmd+=" archive-get %f %p"
    fi
    chown -R "$PGUSER_OS:" "$run"
    sync
    out=$(as_pg DRIVE_GRACE=3 DRIVE_TREE_PSS="$([[ $mode == async ]] && echo 1 || echo 0)" DRIVE_COLLECT="$run/fetched" "$BIN/drive" fetch "$run/pgdata" "$d/list" "$cmd" 2>>"$DIR/log/$c.fetch.log") ||
        { tail -5 "$DIR/log/$c.fetch.log" >&2; die "$c: fetch $tool $mode failed"; }
    while read -r n; do
        cmp -s "$d/corpus/$n" "$run/fetched/$n" || die "$c: fetch $tool $mode delivered a wrong $n"
    done <"$d/list"
    record "$c" "fetch-$mode" "$tool" "$r" "$out"
    rm -rf "$run"
}

run_ceiling() { # run_ceiling CORPUS RUN
    local c=$1 r=$2 d=$DIR/$1 out files
    mapfile -t files <"$d/list"
    out=$(cd "$d/corpus" && "$BIN/ceiling" -l "$LEVEL" "${files[@]}")
    printf '%s\tceiling\tcpu\t%s\t%s\t\t\t%s\t%s\n' "$c" "$r" "$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")" \
        "$(sed -n 's/.*out_bytes=\([0-9]*\).*/\1/p' <<<"$out")" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
    log "$c ceiling run $r: $out"
}

warm_cluster() { # read the data directory once, so both backups start from the page cache
    find "$DIR/$1/pgdata/base" "$DIR/$1/pgdata/global" -type f -exec cat {} + >/dev/null
}

newest() { printf '%s\n' "$1"/*/ | sort | tail -1; }   # backup ids sort by time

# Backups at another compression go to the same repositories (the cluster
# archives into those; a full backup does not depend on the earlier ones) with
# their own configuration file. Restore runs right after the run's backup at
# $LEVEL, so it always restores that one.
run_backup() { # run_backup CORPUS ue|pb RUN [LEVEL]
    local c=$1 tool=$2 r=$3 lvl=${4:-} d=$DIR/$1 out dir conf
    conf=$d/bk/$tool.conf
    if [[ -n $lvl ]]; then
        conf=$d/bk/$tool$(variant "$lvl").conf
        if [[ $tool == ue ]]; then ue_conf "$conf" "$d/bk/ue" "$d/pgdata" "$c" "$lvl"
        else pb_conf "$conf" "$d/bk/pb" "$d/pgdata" "$c" "$d/bk/scratch" "$lvl"; fi
        chown "$PGUSER_OS:" "$conf"
    fi
    warm_cluster "$c"
    sync
    if [[ $tool == ue ]]; then
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$BIN/ue-basebackup --config $conf --stanza $STANZA --process-max $PMAX" 2>>"$DIR/log/$c.backup.log") ||
            { tail -5 "$DIR/log/$c.backup.log" >&2; die "$c: ue-basebackup failed"; }
        dir=$(newest "$d/bk/ue/$STANZA/backup")
    else
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$PGBR --config=$conf --stanza=$STANZA backup --type=full --process-max=$PMAX" 2>>"$DIR/log/$c.backup.log") ||
            { tail -5 "$DIR/log/$c.backup.log" >&2; die "$c: pgbackrest backup failed"; }
        dir=$(printf '%s\n' "$d/bk/pb/backup/$STANZA/"*F | sort | tail -1)
    fi
    record "$c" "backup$(variant "$lvl")" "$tool" "$r" "$out" "$(du -sb "$dir" | cut -f1)"
}

run_restore() { # run_restore CORPUS ue|pb RUN
    local c=$1 tool=$2 r=$3 d=$DIR/$1 run=$DIR/$1/run out
    rm -rf "$run"
    mkdir -p "$run/target"
    chmod 700 "$run/target"
    chown -R "$PGUSER_OS:" "$run"
    sync
    if [[ $tool == ue ]]; then
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$BIN/ue-pitr --config $d/bk/ue.conf --stanza $STANZA restore --pgdata $run/target --process-max $PMAX" 2>>"$DIR/log/$c.restore.log") ||
            { tail -5 "$DIR/log/$c.restore.log" >&2; die "$c: ue-pitr restore failed"; }
    else
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$PGBR --config=$d/bk/pb.conf --stanza=$STANZA restore --pg1-path=$run/target --process-max=$PMAX" 2>>"$DIR/log/$c.restore.log") ||
            { tail -5 "$DIR/log/$c.restore.log" >&2; die "$c: pgbackrest restore failed"; }
    fi
    [[ -f $run/target/PG_VERSION && -f $run/target/global/pg_control ]] || die "$c: $tool restore left no data directory"
    record "$c" restore "$tool" "$r" "$out" "$(du -sb "$run/target" | cut -f1)"
    # Not deleted now: on ext4 without a journal, creating files within a
    # minute of deleting a thousand others scans past the freed inodes
    # (recently_deleted), which made the next restore, of either tool, up to
    # twice as slow at random. The restored trees go at the end of the runs.
    mkdir -p "$DIR/trash"
    mv "$run" "$DIR/trash/$c-$tool-$r"
}

has() { [[ " $FIGURES " == *" $1 "* ]]; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= RUNS; r++)); do
    # Interleaved: every figure once per run; the tool that goes first alternates.
    if ((r % 2)); then order="ue pb"; else order="pb ue"; fi
    for c in $CORPORA; do
        log "run $r/$RUNS, $c"
        if has push; then
            for mode in sync async; do for t in $order; do run_push "$c" "$t" "$mode" "$r"; done; done
            run_ceiling "$c" "$r"
        fi
        if has fetch; then
            [[ -d $DIR/$c/archived/ue && -d $DIR/$c/archived/pb ]] || die "fetch needs the push figure (an archive to read)"
            for mode in sync async; do for t in $order; do run_fetch "$c" "$t" "$mode" "$r"; done; done
        fi
        if has backup; then
            for t in $order; do run_backup "$c" "$t" "$r"; done
        fi
        if has restore && [[ $HAVE_RESTORE == 1 ]]; then
            has backup || die "restore needs the backup figure"
            for t in $order; do run_restore "$c" "$t" "$r"; done
        fi
        if has defaults; then
            # Each tool as it ships (pgBackRest: gz level 6), and the levels
            # ue-wal's default is chosen among (push-sync is the $LEVEL one).
            for t in $order; do run_push "$c" "$t" sync "$r" default; done
            for l in $UE_LEVELS; do run_push "$c" ue sync "$r" "$l"; done
            for t in $order; do run_backup "$c" "$t" "$r" default; done
        fi
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$DIR/trash"

# -------------------------------------------------------- report ----------
REPORT=$OUT/$STAMP.md
{
    echo "# ue-wal vs pgBackRest — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
    echo "- PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $("$PGBR" version), ue-wal $UE_COMMIT (Release build)"
    echo "- scale $SCALE, $SEGMENTS segments per corpus, $RUNS interleaved run(s), process-max $PMAX, zstd level $LEVEL, archive-get-queue-max $QUEUE_MAX"
    echo "- load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other work on the machine skews every figure)"
    if has defaults; then echo "- defaults figures: each tool without compression settings (ue-wal: $UE_DEFAULT; pgBackRest: gz level 6); ue-wal push sync also at zstd levels ${UE_LEVELS// /, }"; fi
    if [[ $HAVE_RESTORE != 1 ]]; then echo "- **restore skipped: \`ue-pitr\` has no \`restore\` command in this build**"; fi
    if [[ $QUICK == 1 ]]; then echo "- **quick mode**: a smoke test of the harness; the targets are judged on the full run"; fi
    echo
    python3 "$HERE/report.py" "$RESULTS" "$SEGMENTS" "$(nproc)"
} >"$REPORT"
cat "$REPORT"
log "report saved to $REPORT"
exit 0
}
