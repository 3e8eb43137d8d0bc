#!/usr/bin/env bash
# bench/archive_module.sh: how fast PostgreSQL's own archiver drains a WAL
# backlog through the archive module (archive_library = ue_wal_archive)
# against archive_command = ue-wal-push (sync and async) and, when installed
# (bench/setup.sh), pgBackRest's archive-push (sync and async), on the same
# WAL in one run.
#
#   bench/archive_module.sh                     # 32 segments, 1 run
#   AM_SEGMENTS=64 AM_RUNS=3 bench/archive_module.sh
#
# How: one cluster (pgbench scale AM_SCALE, filler rewritten with random md5
# text, like bench/run.sh's realistic corpus) runs with archive_mode = on and
# no archiving until AM_SEGMENTS segments wait as .ready, and the stanzas of
# both tools are created from it (template repositories); then it is
# stopped. For each figure and run, a copy of that stopped cluster starts
# with the figure's archive settings and a fresh copy of the template
# repository, and the time from "accepting connections" until no .ready is
# left gives segments per second (pg_stat_archiver's archived_count, counted
# from that moment). Every tool: zstd level 3, posix repository, fsync as it
# does it; the server runs with fsync = on (the archiver's .done renames are
# durable). Figures alternate order between runs; medians are printed.
# Besides the wall clock, the CPU time the archiver and the commands it
# waited for used per segment (/proc/<archiver>/stat: utime + stime +
# cutime + cstime), which other load on the machine disturbs far less; the
# asynchronous figures have none (their pushers are detached).
#
# AM_STORE=s3: the same figures into an S3 repository instead, s3rver on
# loopback over verified TLS (tests/objstore.sh starts it; a private CA
# made here, as bench/objstore.sh does), both tools on the same server. Each
# figure and run archives into a prefix of its own, whose stanza both tools
# create before the cluster is stopped (S3 has no cheap copy of a template
# repository). The CPU time of s3rver (its node process, during the
# figure) is printed too: on 2 cores, the emulator competes with the
# archiver.
# Run as root (the servers and tools run as postgres). Not part of CI.
set -euo pipefail
{
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
SEGMENTS=${AM_SEGMENTS:-32}
SCALE=${AM_SCALE:-20}
RUNS=${AM_RUNS:-1}
PMAX=${AM_PROCESS_MAX:-2}
DIR=${AM_DIR:-/var/tmp/ue-wal-am-bench}
BUILD=${AM_BUILD:-/tmp/ue-wal-am-build}
PORT=${AM_PORT:-56432}
PGBIN=${AM_PG_BIN:-/usr/lib/postgresql/15/bin}
STORE=${AM_STORE:-posix}                 # posix or s3
S3_PORT=${AM_S3_PORT:-$((PORT + 1))}     # s3rver's HTTPS port (AM_STORE=s3)
STANZA=bench
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root" >&2; exit 2; }
[[ $DIR == /?*/?* ]] || { echo "bench: AM_DIR must be an absolute path two levels deep" >&2; exit 2; }
[[ $STORE == posix || $STORE == s3 ]] || { echo "bench: AM_STORE must be posix or s3" >&2; exit 2; }

log() { printf '[am-bench %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { printf '[am-bench] FAIL: %s\n' "$*" >&2; exit 1; }
as_pg() { runuser -u postgres -- env -i PATH="$PGBIN:/usr/bin:/bin" LC_ALL=C.UTF-8 HOME="$DIR" "$@"; }
psql_c() { as_pg "$PGBIN/psql" -X -q -A -t -h "$DIR/sock" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"; }
RUNNING=""
cleanup() {
    local rc=$?
    [[ -n $RUNNING && -f $RUNNING/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$RUNNING" -m immediate -w stop >/dev/null 2>&1
    [[ $STORE == s3 && -d $DIR/objstore ]] && bash "$SRC/tests/objstore.sh" stop "$DIR/objstore" >/dev/null 2>&1
    [[ ${AM_KEEP:-0} == 1 ]] || rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT

if [[ ${AM_SKIP_BUILD:-0} != 1 ]]; then
    log "building (Release) in $BUILD"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target ue-wal-push ue-pitr ue_wal_archive >/dev/null
fi
rm -rf "$DIR"
mkdir -p "$DIR"/{bin,sock,log}
cp "$BUILD"/ue-wal-push "$BUILD"/ue-pitr "$BUILD"/ue_wal_archive.so "$DIR/bin/"
# The compute ceiling (bench/ceiling.c, as bench/run.sh builds it): what any
# archiver must do per segment (SHA-256 and zstd level 3, in process), on
# every core and on one, over the same backlog. It bounds every figure.
cc -O2 -std=gnu11 -Wall -o "$DIR/bin/ceiling" "$HERE/ceiling.c" -lzstd -lcrypto -lpthread
chmod 755 "$DIR" "$DIR/bin" "$DIR"/bin/*
chown -R postgres: "$DIR"
PGBR=$(command -v pgbackrest || true)
[[ -n $PGBR ]] || log "pgbackrest not installed (bench/setup.sh): its figures are skipped"

# The repository lines of each tool on S3 (secrets in the configuration
# file, which only postgres reads; never on a command line).
TLS=$DIR/tls
s3_lines() { # s3_lines ue|pb
    [[ $STORE == s3 ]] || return 0
    if [[ $1 == ue ]]; then
        printf '%s\n' repo1-type=s3 "repo1-s3-endpoint=https://localhost:$S3_PORT" repo1-s3-bucket=bench \
            repo1-s3-region=us-east-1 repo1-s3-uri-style=path repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
            "repo1-storage-ca-file=$TLS/ca.crt"
    else
        printf '%s\n' repo1-type=s3 repo1-s3-endpoint=localhost "repo1-storage-port=$S3_PORT" repo1-s3-bucket=bench \
            repo1-s3-region=us-east-1 repo1-s3-uri-style=path repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
            "repo1-storage-ca-file=$TLS/ca.crt"
    fi
}
ue_conf() { # FILE REPO SPOOL [extra]
    printf '[global]\nrepo1-path=%s\ncompress-type=zstd\ncompress-level=3\nlog-level=warn\nspool-path=%s\n%s\n%s\n[%s]\npg-path=%s\npg-port=%s\npg-socket-path=%s\npg-user=postgres\n' \
        "$2" "$3" "${4:-}" "$(s3_lines ue)" "$STANZA" "$DIR/gen" "$PORT" "$DIR/sock" >"$1"
    chmod 600 "$1"
}
pb_conf() { # FILE REPO PGDATA SCRATCH [extra]
    mkdir -p "$4"/{lock,log,spool}
    printf '[global]\nrepo1-path=%s\ncompress-type=zst\ncompress-level=3\nlock-path=%s/lock\nlog-path=%s/log\nspool-path=%s/spool\nlog-level-console=warn\nlog-level-stderr=warn\nlog-level-file=off\n%s\n%s\n[%s]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\npg1-user=postgres\n' \
        "$2" "$4" "$4" "$4" "${5:-}" "$(s3_lines pb)" "$STANZA" "$3" "$PORT" "$DIR/sock" >"$1"
    chmod 600 "$1"
}
S3PID=""
if [[ $STORE == s3 ]]; then
    log "s3rver on https://localhost:$S3_PORT (private CA)"
    mkdir -p "$TLS"
    (
        cd "$TLS"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ue-wal am-bench CA" -keyout ca.key -out ca.crt
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.crt
    ) >"$DIR/log/openssl.log" 2>&1 || { cat "$DIR/log/openssl.log" >&2; die "openssl could not make the certificates"; }
    chmod 755 "$TLS"
    chmod 644 "$TLS/ca.crt"
    UW_S3_PORT=$S3_PORT UW_S3_BUCKET=bench UW_S3_TLS_CERT=$TLS/server.crt UW_S3_TLS_KEY=$TLS/server.key \
        bash "$SRC/tests/objstore.sh" start "$DIR/objstore" s3 2>"$DIR/log/objstore.log" ||
        { cat "$DIR/log/objstore.log" >&2; die "could not start s3rver"; }
    S3PID=$(cat "$DIR/objstore/s3rver.pid")
fi
# CPU seconds s3rver's process used so far (0 without it).
s3_cpu() {
    [[ -n $S3PID ]] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$S3PID/stat"
}

# ---- the backlog ----
log "cluster: initdb, pgbench -i -s $SCALE, random filler"
as_pg "$PGBIN/initdb" -D "$DIR/gen" -U postgres -A trust >"$DIR/log/initdb.log"
cat >>"$DIR/gen/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR/sock'
archive_mode = on
archive_command = ''
max_wal_size = 8GB
shared_buffers = 256MB
synchronous_commit = off
log_line_prefix = '%m [%p] %b '
EOF
RUNNING=$DIR/gen
as_pg "$PGBIN/pg_ctl" -D "$DIR/gen" -l "$DIR/log/gen.log" -w start >/dev/null
as_pg "$PGBIN/pgbench" -h "$DIR/sock" -p "$PORT" -U postgres -i -s "$SCALE" -q postgres >"$DIR/log/init.log" 2>&1
psql_c "UPDATE pgbench_accounts SET filler = md5(random()::text) || md5(random()::text)" >/dev/null
cat >"$DIR/md5.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta, filler = md5(random()::text) || md5(random()::text) WHERE aid = :aid;
EOF
chmod 644 "$DIR/md5.sql"
ready() { find "$1/pg_wal/archive_status" -name '*.ready' | wc -l; }
while (($(ready "$DIR/gen") < SEGMENTS)); do
    as_pg "$PGBIN/pgbench" -h "$DIR/sock" -p "$PORT" -U postgres -n -c 4 -j 2 -T 3 -f "$DIR/md5.sql" postgres >>"$DIR/log/pgbench.log" 2>&1
    psql_c "CHECKPOINT" >/dev/null
done
log "$(ready "$DIR/gen") files wait as .ready"
# stanzas TAG [ue|pb]: the stanzas (both tools', or one's) in the
# repositories of TAG (a directory under $DIR/tpl on posix, the prefix
# /TAG-ue or /TAG-pb on S3).
stanzas() {
    local t=$DIR/tpl ue_repo=$DIR/tpl/ue pb_repo=$DIR/tpl/pb
    if [[ $STORE == s3 ]]; then ue_repo=/$1-ue pb_repo=/$1-pb; fi
    mkdir -p "$t"
    ue_conf "$t/ue.conf" "$ue_repo" "$t/spool"
    pb_conf "$t/pb.conf" "$pb_repo" "$DIR/gen" "$t/pbs"
    chown -R postgres: "$t"
    if [[ ${2:-ue} == ue ]]; then
        as_pg "$DIR/bin/ue-pitr" --config "$t/ue.conf" --stanza "$STANZA" stanza-create >>"$DIR/log/ue-stanza.log" 2>&1 ||
            { cat "$DIR/log/ue-stanza.log"; die "ue-pitr stanza-create failed"; }
    fi
    if [[ -n $PGBR && ${2:-pb} == pb ]]; then
        as_pg "$PGBR" --config="$t/pb.conf" --stanza="$STANZA" stanza-create >>"$DIR/log/pb-stanza.log" 2>&1 ||
            { cat "$DIR/log/pb-stanza.log"; die "pgbackrest stanza-create failed"; }
    fi
}
# ---- one figure ----
# run_figure NAME RUN: a fresh copy of the cluster and of the repositories,
# archiving with NAME's settings; prints "segments/s segments seconds CPU
# emulator-CPU".
run_figure() {
    local name=$1 r=$DIR/run conf=() ue_repo=$DIR/run/ue pb_repo=$DIR/run/pb
    rm -rf "$r"
    mkdir -p "$r"
    cp -a "$DIR/gen" "$r/pg"
    if [[ $STORE == posix ]]; then
        cp -a "$DIR/tpl/ue" "$r/ue"
        if [[ -n $PGBR ]]; then cp -a "$DIR/tpl/pb" "$r/pb"; fi
    else
        ue_repo=/r$2-$name-ue pb_repo=/r$2-$name-pb
    fi
    local push="archive_command = '$DIR/bin/ue-wal-push --config $r/ue.conf --stanza $STANZA %p'"
    local pb="archive_command = '$PGBR --config=$r/pb.conf --stanza=$STANZA archive-push %p'"
    case $name in
    module)
        ue_conf "$r/ue.conf" "$ue_repo" "$r/spool"
        conf=("archive_library = '$DIR/bin/ue_wal_archive'" "ue_wal_archive.config = '$r/ue.conf'"
            "ue_wal_archive.stanza = '$STANZA'") ;;
    push) ue_conf "$r/ue.conf" "$ue_repo" "$r/spool"; conf=("$push") ;;
    push-async) ue_conf "$r/ue.conf" "$ue_repo" "$r/spool" "archive-async=y"$'\n'"process-max=$PMAX"; conf=("$push") ;;
    pgbackrest) pb_conf "$r/pb.conf" "$pb_repo" "$r/pg" "$r/pbs"; conf=("$pb") ;;
    pgbackrest-async) pb_conf "$r/pb.conf" "$pb_repo" "$r/pg" "$r/pbs" "archive-async=y"$'\n'"process-max=$PMAX"; conf=("$pb") ;;
    esac
    printf '%s\n' "${conf[@]}" >>"$r/pg/postgresql.conf"
    chown -R postgres: "$r"
    sync
    RUNNING=$r/pg
    local e0
    e0=$(s3_cpu)
    as_pg "$PGBIN/pg_ctl" -D "$r/pg" -l "$DIR/log/$name.log" -w start >/dev/null
    local t0=$EPOCHREALTIME a0 a1 f1
    a0=$(psql_c "select archived_count from pg_stat_archiver")
    while (($(ready "$r/pg") > 0)); do sleep 0.05; done
    local t1=$EPOCHREALTIME e1
    e1=$(s3_cpu)
    IFS='|' read -r a1 f1 <<<"$(psql_c "select archived_count, failed_count from pg_stat_archiver")"
    # CPU time of the archiver and of the commands it ran and waited for
    # (utime, stime, cutime, cstime): robust to other load on the machine,
    # unlike the wall clock. Not for async: its pushers are detached.
    local apid ticks cpu=-
    apid=$(psql_c "select pid from pg_stat_activity where backend_type = 'archiver'")
    ticks=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$apid/stat")
    [[ $name == *async ]] || cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$a1" 'BEGIN { printf "%.0f", 1000 * t / hz / n }')
    as_pg "$PGBIN/pg_ctl" -D "$r/pg" -m fast -w stop >/dev/null
    RUNNING=""
    ((f1 == 0)) || die "$name: $f1 archiving failures (log: $DIR/log/$name.log)"
    awk -v n="$((a1 - a0))" -v a="$t1" -v b="$t0" -v c="$cpu" -v e="$(awk -v x="$e1" -v y="$e0" 'BEGIN { printf "%.2f", x - y }')" \
        'BEGIN { printf "%.2f %d %.2f %s %s\n", n / (a - b), n, a - b, c, e }'
}

FIGS=(module push push-async)
if [[ -n $PGBR ]]; then FIGS+=(pgbackrest pgbackrest-async); fi
if [[ $STORE == posix ]]; then
    stanzas tpl
else
    # One pair of stanzas per figure and run, while the cluster runs.
    for ((run = 1; run <= RUNS; run++)); do for f in "${FIGS[@]}"; do
        if [[ $f == pgbackrest* ]]; then stanzas "r$run-$f" pb; else stanzas "r$run-$f" ue; fi
    done; done
fi
as_pg "$PGBIN/pg_ctl" -D "$DIR/gen" -m fast -w stop >/dev/null
RUNNING=""
NREADY=$(ready "$DIR/gen")

declare -A RES=() CPU=() EMU=()
CEIL_ALL="" CEIL_ONE=""
mapfile -t BACKLOG < <(find "$DIR/gen/pg_wal/archive_status" -name '*.ready' -printf "$DIR/gen/pg_wal/%f\n" | sed 's/\.ready$//' | sort)
ceiling() { # ceiling THREADS: segments/s
    local out
    out=$("$DIR/bin/ceiling" -t "$1" -l 3 "${BACKLOG[@]}")
    awk -v n="${#BACKLOG[@]}" -v s="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")" 'BEGIN { printf "%.2f", n / s }'
}
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((run = 1; run <= RUNS; run++)); do
    CEIL_ALL+="$(ceiling "$(nproc)") " CEIL_ONE+="$(ceiling 1) "
    log "run $run ceiling (segments/s): $(nproc) threads: $CEIL_ALL; 1 thread: $CEIL_ONE"
    order=("${FIGS[@]}")
    if ((run % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${FIGS[@]}" | tac); fi
    for f in "${order[@]}"; do
        out=$(run_figure "$f" "$run")
        log "run $run $f: $out (segments/s, segments, seconds, CPU ms per segment, emulator CPU s); load $(cut -d' ' -f1 /proc/loadavg)"
        read -r v _ secs c e <<<"$out"
        RES[$f]+="$v "
        CPU[$f]+="$c "
        EMU[$f]+="$(awk -v e="$e" -v s="$secs" 'BEGIN { printf "%.0f", 100 * e / s }') "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "archive module bench: $STORE repository, $NREADY files in the backlog, pgbench scale $SCALE, $RUNS run(s), $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| figure | segments/s (median) | module / figure | CPU ms per segment (median) | figure / module | emulator CPU % of a core (median) |"
echo "| --- | --- | --- | --- | --- | --- |"
m=$(median <<<"${RES[module]}")
mc=$(median <<<"${CPU[module]}")
for f in "${FIGS[@]}"; do
    v=$(median <<<"${RES[$f]}")
    c=-
    cr=-
    if [[ $f != *async ]]; then
        c=$(median <<<"${CPU[$f]}")
        cr=$(awk -v a="$c" -v b="$mc" 'BEGIN { printf "%.2fx", a / b }')
    fi
    em=-
    [[ $STORE == s3 ]] && em=$(median <<<"${EMU[$f]}")
    echo "| $f | $v | $(awk -v a="$m" -v b="$v" 'BEGIN { printf "%.2fx", a / b }') | $c | $cr | $em |"
done
ca=$(median <<<"$CEIL_ALL")
c1=$(median <<<"$CEIL_ONE")
echo
echo "Compute ceiling on this backlog (bench/ceiling.c: SHA-256 and zstd level 3 in process, nothing written; median):" \
    "$ca segments/s on $(nproc) threads, $c1 on 1. The module reaches $(awk -v a="$m" -v b="$ca" 'BEGIN { printf "%.0f", 100 * a / b }') %" \
    "of the $(nproc)-thread ceiling."
if [[ -n $PGBR && $STORE == posix ]]; then
    p=$(median <<<"${RES[pgbackrest]}")
    pa=$(median <<<"${RES[pgbackrest-async]}")
    echo "Issue 14's targets in segments/s: 2.5x pgbackrest = $(awk -v a="$p" 'BEGIN { printf "%.2f", 2.5 * a }')" \
        "($(awk -v a="$p" -v c="$ca" 'BEGIN { printf "%.0f", 250 * a / c }') % of the ceiling)," \
        "1.3x pgbackrest-async = $(awk -v a="$pa" 'BEGIN { printf "%.2f", 1.3 * a }')" \
        "($(awk -v a="$pa" -v c="$ca" 'BEGIN { printf "%.0f", 130 * a / c }') % of the ceiling)."
fi
}
