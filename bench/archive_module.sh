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
STANZA=bench
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root" >&2; exit 2; }
[[ $DIR == /?*/?* ]] || { echo "bench: AM_DIR must be an absolute path two levels deep" >&2; exit 2; }

log() { printf '[am-bench %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { printf '[am-bench] FAIL: %s\n' "$*" >&2; exit 1; }
as_pg() { runuser -u postgres -- env -i PATH="$PGBIN:/usr/bin:/bin" LC_ALL=C.UTF-8 HOME="$DIR" "$@"; }
psql_c() { as_pg "$PGBIN/psql" -X -q -A -t -h "$DIR/sock" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"; }
RUNNING=""
cleanup() {
    local rc=$?
    [[ -n $RUNNING && -f $RUNNING/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$RUNNING" -m immediate -w stop >/dev/null 2>&1
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
chmod 755 "$DIR" "$DIR/bin" "$DIR"/bin/*
chown -R postgres: "$DIR"
PGBR=$(command -v pgbackrest || true)
[[ -n $PGBR ]] || log "pgbackrest not installed (bench/setup.sh): its figures are skipped"

ue_conf() { # FILE REPO SPOOL [extra]
    printf '[global]\nrepo1-path=%s\ncompress-type=zstd\ncompress-level=3\nlog-level=warn\nspool-path=%s\n%s\n[%s]\npg-path=%s\npg-port=%s\npg-socket-path=%s\npg-user=postgres\n' \
        "$2" "$3" "${4:-}" "$STANZA" "$DIR/gen" "$PORT" "$DIR/sock" >"$1"
}
pb_conf() { # FILE REPO PGDATA SCRATCH [extra]
    mkdir -p "$4"/{lock,log,spool}
    printf '[global]\nrepo1-path=%s\ncompress-type=zst\ncompress-level=3\nlock-path=%s/lock\nlog-path=%s/log\nspool-path=%s/spool\nlog-level-console=warn\nlog-level-stderr=warn\nlog-level-file=off\n%s\n[%s]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\npg1-user=postgres\n' \
        "$2" "$4" "$4" "$4" "${5:-}" "$STANZA" "$3" "$PORT" "$DIR/sock" >"$1"
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
mkdir -p "$DIR/tpl"
ue_conf "$DIR/tpl/ue.conf" "$DIR/tpl/ue" "$DIR/tpl/spool"
pb_conf "$DIR/tpl/pb.conf" "$DIR/tpl/pb" "$DIR/gen" "$DIR/tpl/pbs"
chown -R postgres: "$DIR/tpl"
as_pg "$DIR/bin/ue-pitr" --config "$DIR/tpl/ue.conf" --stanza "$STANZA" stanza-create >"$DIR/log/ue-stanza.log" 2>&1 ||
    { cat "$DIR/log/ue-stanza.log"; die "ue-pitr stanza-create failed"; }
if [[ -n $PGBR ]]; then
    as_pg "$PGBR" --config="$DIR/tpl/pb.conf" --stanza="$STANZA" stanza-create >"$DIR/log/pb-stanza.log" 2>&1 ||
        { cat "$DIR/log/pb-stanza.log"; die "pgbackrest stanza-create failed"; }
fi
as_pg "$PGBIN/pg_ctl" -D "$DIR/gen" -m fast -w stop >/dev/null
RUNNING=""
NREADY=$(ready "$DIR/gen")

# ---- one figure ----
# run_figure NAME: a fresh copy of the cluster and of the repositories,
# archiving with NAME's settings; prints "segments/s segments seconds".
run_figure() {
    local name=$1 r=$DIR/run conf=()
    rm -rf "$r"
    mkdir -p "$r"
    cp -a "$DIR/gen" "$r/pg"
    cp -a "$DIR/tpl/ue" "$r/ue"
    if [[ -n $PGBR ]]; then cp -a "$DIR/tpl/pb" "$r/pb"; fi
    local push="archive_command = '$DIR/bin/ue-wal-push --config $r/ue.conf --stanza $STANZA %p'"
    local pb="archive_command = '$PGBR --config=$r/pb.conf --stanza=$STANZA archive-push %p'"
    case $name in
    module)
        ue_conf "$r/ue.conf" "$r/ue" "$r/spool"
        conf=("archive_library = '$DIR/bin/ue_wal_archive'" "ue_wal_archive.config = '$r/ue.conf'"
            "ue_wal_archive.stanza = '$STANZA'") ;;
    push) ue_conf "$r/ue.conf" "$r/ue" "$r/spool"; conf=("$push") ;;
    push-async) ue_conf "$r/ue.conf" "$r/ue" "$r/spool" "archive-async=y"$'\n'"process-max=$PMAX"; conf=("$push") ;;
    pgbackrest) pb_conf "$r/pb.conf" "$r/pb" "$r/pg" "$r/pbs"; conf=("$pb") ;;
    pgbackrest-async) pb_conf "$r/pb.conf" "$r/pb" "$r/pg" "$r/pbs" "archive-async=y"$'\n'"process-max=$PMAX"; conf=("$pb") ;;
    esac
    printf '%s\n' "${conf[@]}" >>"$r/pg/postgresql.conf"
    chown -R postgres: "$r"
    sync
    RUNNING=$r/pg
    as_pg "$PGBIN/pg_ctl" -D "$r/pg" -l "$DIR/log/$name.log" -w start >/dev/null
    local t0=$EPOCHREALTIME a0 a1 f1
    a0=$(psql_c "select archived_count from pg_stat_archiver")
    while (($(ready "$r/pg") > 0)); do sleep 0.05; done
    local t1=$EPOCHREALTIME
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
    awk -v n="$((a1 - a0))" -v a="$t1" -v b="$t0" -v c="$cpu" 'BEGIN { printf "%.2f %d %.2f %s\n", n / (a - b), n, a - b, c }'
}

FIGS=(module push push-async)
if [[ -n $PGBR ]]; then FIGS+=(pgbackrest pgbackrest-async); fi
declare -A RES=() CPU=()
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((run = 1; run <= RUNS; run++)); do
    order=("${FIGS[@]}")
    if ((run % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${FIGS[@]}" | tac); fi
    for f in "${order[@]}"; do
        out=$(run_figure "$f")
        log "run $run $f: $out (segments/s, segments, seconds, CPU ms per segment); load $(cut -d' ' -f1 /proc/loadavg)"
        RES[$f]+="${out%% *} "
        CPU[$f]+="${out##* } "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "archive module bench: $NREADY files in the backlog, pgbench scale $SCALE, $RUNS run(s), $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| figure | segments/s (median) | module / figure | CPU ms per segment (median) | figure / module |"
echo "| --- | --- | --- | --- | --- |"
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
    echo "| $f | $v | $(awk -v a="$m" -v b="$v" 'BEGIN { printf "%.2fx", a / b }') | $c | $cr |"
done
}
