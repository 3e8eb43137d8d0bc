#!/usr/bin/env bash
# shellcheck disable=SC2034,SC2153 # sourced: the caller sets the parameters and uses what it sets
# bench/lib.sh: what bench/run.sh (posix repositories) and bench/objstore.sh
# (S3 and Azure emulators) share: checks, logging, the postgres user, the
# build, the corpora of real WAL, configuration files and the fake data
# directory. Sourced, never run; the caller sets its parameters first:
#   DIR PGBIN PORT SCALE SEGMENTS STANZA LEVEL BUILD SKIP_BUILD KEEP REUSE
#   CORPORA HERE SRC PGUSER_OS OUT (bench/scale.sh too, with NEED_PGBR)
# and calls bench_checks, bench_traps, bench_prepare_dir and bench_build.

# ------------------------------------------------------------- checks -----
# bench_checks VAR...: root, $DIR ours, the named parameters positive
# integers, pgBackRest (unless NEED_PGBR=0: a caller that never runs it) and
# PostgreSQL installed.
bench_checks() {
    [[ $(id -u) -eq 0 ]] || { echo "bench: run as root (servers run as $PGUSER_OS via runuser)" >&2; exit 2; }
    # $DIR is removed at exit: it must be ours (marker file) or not exist yet.
    [[ $DIR == /?*/?* && $DIR != *..* ]] || { echo "bench: BENCH_DIR must be an absolute path two levels deep or more" >&2; exit 2; }
    if [[ -e $DIR && ! -f $DIR/$MARK ]]; then
        echo "bench: $DIR exists and was not made by this benchmark (no $MARK): refusing to use it" >&2
        exit 2
    fi
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "bench: BENCH_$v must be a positive integer" >&2; exit 2; }
    done
    if [[ ${NEED_PGBR:-1} == 1 ]]; then
        command -v pgbackrest >/dev/null || { echo "bench: pgbackrest is not installed (bench/setup.sh)" >&2; exit 2; }
    fi
    [[ -x $PGBIN/postgres ]] || { echo "bench: no PostgreSQL in $PGBIN" >&2; exit 2; }
}
MARK=.ue-wal-bench

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
    # The caller's own cleanup first (object-store servers...).
    if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
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
bench_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

pg_start() { # pg_start CORPUS
    local pgdata=$DIR/$1/pgdata
    as_pg "$PGBIN/pg_ctl" -D "$pgdata" -l "$DIR/log/$1.pg.log" -w -t 120 start >/dev/null
    STARTED+=("$pgdata")
}

# ------------------------------------------------------- directory -------
# bench_prepare_dir: $DIR made (or reused, see REUSE); sets REUSING and
# CORPUS_STAMP (what the kept corpora were made with: reused only when it
# matches).
bench_prepare_dir() {
    local pid
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
}

# ------------------------------------------------------------ build -------
# bench_build: ue-wal built (Release, retried while a file may be mid-edit),
# private copies of its binaries, drive and ceiling in $BIN; sets BIN, PGBR,
# UE_COMMIT.
bench_build() {
    local attempt b
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
    PGBR=$(command -v pgbackrest || true)
    UE_COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$SRC" status --porcelain -- common archive restore pitr 2>/dev/null) ]]; then UE_COMMIT+="+dirty"; fi
}

# --------------------------------------------------------- configs --------
# LEVEL (default $LEVEL) is the zstd level; "default" writes no compression
# settings at all, so the tool compresses as it ships.
no_compress_conf() { # no_compress_conf FILE LEVEL
    if [[ $2 == default ]]; then sed -i '/^compress-\(type\|level\)=/d' "$1"; fi
}
# EXTRA: more [global] lines (the object-store settings of bench/objstore.sh,
# the cipher and spool settings of run.sh's encrypted figures).
ue_conf() { # ue_conf FILE REPO PGDATA CORPUS [LEVEL] [EXTRA]
    cat >"$1" <<EOF
[global]
repo1-path=$2
compress-type=zstd
compress-level=${5:-$LEVEL}
log-level=warn
${6:-}

[$STANZA]
pg-path=$3
pg-port=$(port_of "$4")
pg-socket-path=$DIR/sock
pg-user=postgres
EOF
    no_compress_conf "$1" "${5:-$LEVEL}"
    chmod 600 "$1"   # it may hold a secret (cipher passphrase, object-store key)
}
pb_conf() { # pb_conf FILE REPO PGDATA CORPUS SCRATCH [LEVEL] [EXTRA]
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
${7:-}

[$STANZA]
pg1-path=$3
pg1-port=$(port_of "$4")
pg1-socket-path=$DIR/sock
pg1-user=postgres
EOF
    no_compress_conf "$1" "${6:-$LEVEL}"
    chmod 600 "$1"
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

warm_cluster() { # read the data directory once, so both backups start from the page cache
    find "$DIR/$1/pgdata/base" "$DIR/$1/pgdata/global" -type f -exec cat {} + >/dev/null
}
