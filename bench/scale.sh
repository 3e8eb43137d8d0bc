#!/usr/bin/env bash
# bench/scale.sh: ue-wal at scale (issue 14, item 4), on demand, not in CI.
# What it measures and how to read the result: bench/README.md, "scale.sh".
#
#   bench/scale.sh                          # both parts, BENCH_RUNS=3
#   SCALE_PARTS=relations bench/scale.sh    # 20,000 relation files: backups and restore vs pgBackRest
#   SCALE_PARTS=repository bench/scale.sh   # 100,000 segments and 500 backups vs a small repository
#   SCALE_QUICK=1 bench/scale.sh            # smoke test: 1,000 tables, 2,000 segments, 1 run
#
# Run as root (the server and every tool run as the postgres user through runuser).
set -euo pipefail
# One compound command: editing the file while it runs changes nothing.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)

# ------------------------------------------------------------- parameters --
# BENCH_* names as bench/run.sh has them (bench/lib.sh reads DIR, BUILD,
# PORT...); the SCALE_* names of earlier versions still work.
QUICK=${SCALE_QUICK:-0}
if [[ $QUICK == 1 ]]; then d_tables=1000 d_touch=30 d_seg=2000 d_back=50 d_runs=1
else d_tables=10000 d_touch=300 d_seg=100000 d_back=500 d_runs=3; fi
PARTS=${SCALE_PARTS:-"relations repository"}
TABLES=${SCALE_TABLES:-$d_tables}          # tables, each with a primary key index: 2 files
TOUCH=${SCALE_TOUCH:-$d_touch}             # tables updated before each incremental backup
SEGMENTS=${SCALE_SEGMENTS:-$d_seg}         # big repository: 1 MiB segments
BACKUPS=${SCALE_BACKUPS:-$d_back}          # big repository: backups (a full every 8)
SMALL_SEGMENTS=${SCALE_SMALL_SEGMENTS:-100}
SMALL_BACKUPS=${SCALE_SMALL_BACKUPS:-5}
FETCH_CALLS=${SCALE_FETCH_CALLS:-20}       # ue-wal-fetch calls per run (of one segment)
RUNS=${BENCH_RUNS:-$d_runs}                # interleaved runs; medians are reported
PMAX=${BENCH_PROCESS_MAX:-2}
LEVEL=3
DIR=${BENCH_DIR:-${SCALE_DIR:-/var/tmp/ue-wal-scale}}
BUILD=${BENCH_BUILD:-${SCALE_BUILD:-/tmp/scale-build}}
SKIP_BUILD=${BENCH_SKIP_BUILD:-${SCALE_SKIP_BUILD:-0}}
PGBIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-${SCALE_PORT:-55442}}
KEEP=${BENCH_KEEP:-${SCALE_KEEP:-0}}
REUSE=${BENCH_REUSE:-0}                    # 1: reuse the repositories a BENCH_KEEP=1 run left
PGUSER_OS=postgres
OUT=$HERE/out
STAMP=$(date -u +%Y%m%d-%H%M%S)
STANZA=scale
# What bench/lib.sh's BENCH_REUSE compares: the generated repositories' sizes.
SCALE="small=$SMALL_SEGMENTS/$SMALL_BACKUPS" CORPORA="repository backups=$BACKUPS"

for v in TABLES TOUCH SEGMENTS BACKUPS SMALL_SEGMENTS SMALL_BACKUPS FETCH_CALLS; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "scale: SCALE_$v must be a positive integer" >&2; exit 2; }
done
for p in $PARTS; do
    [[ $p == relations || $p == repository ]] || { echo "scale: SCALE_PARTS: unknown part '$p'" >&2; exit 2; }
done
has() { [[ " $PARTS " == *" $1 "* ]]; }
# Only the relations part runs pgBackRest.
if has relations; then NEED_PGBR=1; else NEED_PGBR=0; fi

source "$HERE/lib.sh"
bench_checks RUNS PMAX PORT
bench_traps
bench_prepare_dir
bench_build
if [[ $SKIP_BUILD != 1 ]]; then
    cmake --build "$BUILD" -j2 --target scale-gen >>"$DIR/log/build.log" 2>&1 ||
        { tail -20 "$DIR/log/build.log" >&2; die "building scale-gen failed"; }
fi
[[ -x $BUILD/scale-gen ]] || die "$BUILD/scale-gen is missing"
cp "$BUILD/scale-gen" "$BIN/"
chown -R "$PGUSER_OS:" "$DIR"
PGDATA=$DIR/rel/pgdata

RESULTS=$DIR/results.tsv
: >"$RESULTS"
# record PART FIGURE TOOL RUN "drive output" [EXTRA]: one row of RESULTS
record() {
    local s rss calls cpu
    s=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$5")
    cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$5")
    rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    calls=$(sed -n 's/.*calls=\([0-9]*\).*/\1/p' <<<"$5")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$s" "$rss" "$calls" "${6:-}" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$cpu" >>"$RESULTS"
    log "$1 $2 $3 run $4: ${s}s (cpu ${cpu}s), peak rss ${rss} KiB${6:+, $6}"
}
# once LOG DIR CMD...: one timed call through drive (peak RSS from wait4)
once() {
    local logf=$1 cwd=$2
    shift 2
    as_pg "$BIN/drive" once "$cwd" "$*" 2>>"$logf" || { tail -5 "$logf" >&2; return 1; }
}

# ---------------------------------------------- part 1: 20,000 relations --
rel_part() {
    local d=$DIR/rel
    rm -rf "$d"   # BENCH_REUSE keeps the repositories only
    mkdir -p "$d" "$d/ue" "$d/pb" "$d/scratch/pb-lock" "$d/scratch/pb-log" "$d/scratch/pb-spool" "$d/spool" "$d/trash"
    chown -R "$PGUSER_OS:" "$d"
    log "relations: initdb, $TABLES tables with a primary key each"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >"$DIR/log/initdb.log"
    cat >>"$PGDATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR/sock'
archive_mode = on
archive_command = '/bin/false'
max_wal_size = 4GB
checkpoint_timeout = 1h
shared_buffers = 256MB
fsync = off
synchronous_commit = off
autovacuum = off
EOF
    pg_start rel
    # Batches of 250 tables per transaction (each holds a lock per relation).
    awk -v n="$TABLES" 'BEGIN {
        for (i = 1; i <= n; i++) {
            if (i % 250 == 1) print "BEGIN;";
            printf "CREATE TABLE t%05d (id int PRIMARY KEY, v int NOT NULL);\n", i;
            printf "INSERT INTO t%05d SELECT g, g * %d FROM generate_series(1, 20) g;\n", i, i;
            if (i % 250 == 0 || i == n) print "COMMIT;";
        } }' >"$d/tables.sql"
    chown "$PGUSER_OS:" "$d/tables.sql"
    as_pg "$PGBIN/psql" -X -q -h "$DIR/sock" -p "$(port_of plain)" -U postgres -d postgres -v ON_ERROR_STOP=1 -f "$d/tables.sql" >"$DIR/log/tables.log" 2>&1 ||
        { tail -5 "$DIR/log/tables.log" >&2; die "creating the tables failed"; }
    psql_c plain "CHECKPOINT" >/dev/null
    # pg_internal.init is rebuilt at start-up: neither tool backs it up.
    RELFILES=$(find "$PGDATA/base" "$PGDATA/global" -type f ! -name pg_internal.init | wc -l)
    RELBYTES=$(du -sb "$PGDATA" | cut -f1)
    log "relations: $RELFILES files under base/ and global/, $((RELBYTES >> 20)) MiB in the data directory"

    cat >"$d/ue.conf" <<EOF
[global]
repo1-path=$d/ue
compress-type=zstd
compress-level=$LEVEL
spool-path=$d/spool
log-level=warn

[$STANZA]
pg-path=$PGDATA
pg-port=$PORT
pg-socket-path=$DIR/sock
pg-user=postgres
EOF
    cat >"$d/pb.conf" <<EOF
[global]
repo1-path=$d/pb
repo1-retention-full=99
compress-type=zst
compress-level=$LEVEL
start-fast=y
lock-path=$d/scratch/pb-lock
log-path=$d/scratch/pb-log
spool-path=$d/scratch/pb-spool
log-level-console=warn
log-level-stderr=warn
log-level-file=off

[$STANZA]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$DIR/sock
pg1-user=postgres
EOF
    chown "$PGUSER_OS:" "$d/ue.conf" "$d/pb.conf"
    as_pg "$BIN/ue-pitr" --config "$d/ue.conf" --stanza "$STANZA" stanza-create >"$DIR/log/stanza.log" 2>&1 ||
        { cat "$DIR/log/stanza.log" >&2; die "ue-pitr stanza-create failed"; }
    as_pg pgbackrest --config="$d/pb.conf" --stanza="$STANZA" stanza-create >>"$DIR/log/stanza.log" 2>&1 ||
        { cat "$DIR/log/stanza.log" >&2; die "pgbackrest stanza-create failed"; }
    # Both backups wait for their WAL: the server archives into both repositories.
    psql_c plain "ALTER SYSTEM SET archive_command = '$BIN/ue-wal-push --config $d/ue.conf --stanza $STANZA %p && pgbackrest --config=$d/pb.conf --stanza=$STANZA archive-push %p'" >/dev/null
    psql_c plain "SELECT pg_reload_conf()" >/dev/null

    local r order t
    for ((r = 1; r <= RUNS; r++)); do
        if ((r % 2)); then order="ue pb"; else order="pb ue"; fi
        log "relations: run $r/$RUNS"
        for t in $order; do rel_backup "$t" full "$r"; done
        # A few hundred tables change (one row each), spread over all of them.
        local step=$((TABLES / TOUCH)) sql="" i
        ((step > 0)) || step=1
        for ((i = 1 + r % step; i <= TABLES; i += step)); do
            sql+="UPDATE t$(printf %05d "$i") SET v = v + 1 WHERE id = $(((i + r) % 20 + 1));"
        done
        psql_c plain "$sql" >/dev/null
        psql_c plain "CHECKPOINT" >/dev/null
        for t in $order; do rel_backup "$t" incr "$r"; done
        for t in $order; do rel_restore "$t" "$r"; done
    done
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    rm -rf "$d/trash"
}

rel_backup() { # rel_backup ue|pb full|incr RUN
    local tool=$1 type=$2 r=$3 d=$DIR/rel out dir
    find "$PGDATA/base" "$PGDATA/global" -type f -exec cat {} + >/dev/null   # page cache warm for both
    sync
    if [[ $tool == ue ]]; then
        out=$(once "$DIR/log/backup.log" "$d" "$BIN/ue-basebackup --config $d/ue.conf --stanza $STANZA --type $type --process-max $PMAX") ||
            die "ue-basebackup --type $type failed"
        dir=$(printf '%s\n' "$d/ue/$STANZA/backup/"*/ | sort | tail -1)
    else
        out=$(once "$DIR/log/backup.log" "$d" "pgbackrest --config=$d/pb.conf --stanza=$STANZA backup --type=$type --process-max=$PMAX") ||
            die "pgbackrest backup --type=$type failed"
        dir=$(printf '%s\n' "$d/pb/backup/$STANZA/"*[FI] | sort | tail -1)
    fi
    record relations "backup-$type" "$tool" "$r" "$out" "$(du -sb "$dir" | cut -f1)"
}

rel_restore() { # rel_restore ue|pb RUN: the newest backup (the run's incremental)
    local tool=$1 r=$2 d=$DIR/rel out target=$DIR/rel/target
    rm -rf "$target"
    mkdir -p "$target"
    chmod 700 "$target"
    chown "$PGUSER_OS:" "$target"
    sync
    if [[ $tool == ue ]]; then
        out=$(once "$DIR/log/restore.log" "$d" "$BIN/ue-pitr --config $d/ue.conf --stanza $STANZA restore --pgdata $target --process-max $PMAX") ||
            die "ue-pitr restore failed"
    else
        out=$(once "$DIR/log/restore.log" "$d" "pgbackrest --config=$d/pb.conf --stanza=$STANZA restore --pg1-path=$target --process-max=$PMAX") ||
            die "pgbackrest restore failed"
    fi
    local n
    n=$(find "$target/base" "$target/global" -type f ! -name pg_internal.init | wc -l)
    ((n >= RELFILES)) || die "$tool restore: $n files under base/ and global/, the cluster has $RELFILES"
    record relations restore "$tool" "$r" "$out" "$(du -sb "$target" | cut -f1)"
    # Deleting 20,000 files right before the next restore creates as many slows it
    # down (ext4 recently_deleted): the trees go at the end.
    mv "$target" "$d/trash/$tool-$r"
}

# ------------------------------------ part 2: a big and a small repository --
repo_gen() { # repo_gen small|big SEGMENTS BACKUPS
    local d=$DIR/repo-$1
    if [[ $REUSING == 1 && -f $d/size ]]; then
        log "repository $1: reusing the one generated before ($(cat "$d/size"))"
        return
    fi
    rm -rf "$d"
    mkdir -p "$d/repo" "$d/gen" "$d/spool" "$d/pgdata/pg_wal"
    cat >"$d/conf" <<EOF
[global]
repo1-path=$d/repo
compress-type=zstd
compress-level=$LEVEL
spool-path=$d/spool
log-level=warn
retention-full=2

[$STANZA]
EOF
    chown -R "$PGUSER_OS:" "$d"
    log "repository $1: generating $2 segments and $3 backups"
    as_pg "$BIN/scale-gen" --config "$d/conf" --stanza "$STANZA" --process-max "$PMAX" "$2" "$3" "$d/gen" 2>"$DIR/log/gen-$1.log" ||
        { cat "$DIR/log/gen-$1.log" >&2; die "scale-gen $1 failed"; }
    cat "$DIR/log/gen-$1.log" >&2
    echo "$(find "$d/repo" -type f | wc -l) $(du -sb "$d/repo" | cut -f1)" >"$d/size"
    # The segment a recovery would ask for last: the newest.
    printf '00000001%08X%08X\n' $(($2 >> 12)) $(($2 & 4095)) >"$d/newest"
    local i
    for ((i = 0; i < FETCH_CALLS; i++)); do cat "$d/newest"; done >"$d/fetch.list"
    chown -R "$PGUSER_OS:" "$d"
}

repo_measure() { # repo_measure small|big RUN
    local s=$1 r=$2 d=$DIR/repo-$1 out c
    c="--config $d/conf --stanza $STANZA"
    out=$(once "$DIR/log/info.log" "$d" "$BIN/ue-pitr $c info >$d/info.out") || die "$s: ue-pitr info failed"
    grep -q '): ok$' "$d/info.out" || { cat "$d/info.out" >&2; die "$s: info says the stanza is not ok"; }
    record repository info "$s" "$r" "$out"
    out=$(as_pg "$BIN/drive" fetch "$d/pgdata" "$d/fetch.list" "$BIN/ue-wal-fetch $c %f %p" 2>>"$DIR/log/fetch.log") ||
        { tail -5 "$DIR/log/fetch.log" >&2; die "$s: ue-wal-fetch failed"; }
    record repository fetch "$s" "$r" "$out"
    out=$(once "$DIR/log/verify.log" "$d" "$BIN/ue-pitr $c verify --full --process-max $PMAX >$d/verify.out") ||
        { cat "$d/verify.out" >&2; die "$s: ue-pitr verify failed"; }
    record repository verify "$s" "$r" "$out" "$(sed -n 's/^objects: \([0-9]*\).*/\1/p' "$d/verify.out" | head -1)"
    out=$(once "$DIR/log/expire.log" "$d" "$BIN/ue-pitr $c expire --dry-run >$d/expire.out") ||
        { cat "$d/expire.out" >&2; die "$s: ue-pitr expire --dry-run failed"; }
    record repository expire-dry-run "$s" "$r" "$out"
}

repo_part() {
    repo_gen small "$SMALL_SEGMENTS" "$SMALL_BACKUPS"
    repo_gen big "$SEGMENTS" "$BACKUPS"
    echo "$CORPUS_STAMP" >"$DIR/ready"
    local r s order
    for ((r = 1; r <= RUNS; r++)); do
        log "repository: run $r/$RUNS"
        if ((r % 2)); then order="small big"; else order="big small"; fi
        for s in $order; do sync; repo_measure "$s" "$r"; done
    done
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RELFILES=0 RELBYTES=0
if has relations; then rel_part; fi
if has repository; then repo_part; fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# -------------------------------------------------------- report ----------
REPORT=$OUT/scale-$STAMP.md
{
    echo "# ue-wal at scale — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
    echo "- PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(pgbackrest version 2>/dev/null || echo 'no pgBackRest'), ue-wal $UE_COMMIT (Release build)"
    echo "- $RUNS interleaved run(s), process-max $PMAX, zstd level $LEVEL; load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other work on the machine skews every figure)"
    if has relations; then echo "- relations: $TABLES tables with a primary key, $RELFILES files under base/ and global/ ($((RELBYTES >> 20)) MiB data directory); $TOUCH tables updated before each incremental"; fi
    if has repository; then
        read -r fb bb <"$DIR/repo-big/size"
        read -r fs bs <"$DIR/repo-small/size"
        echo "- repositories (1 MiB segments, a full backup every 8): big $SEGMENTS segments + $BACKUPS backups ($fb files, $((bb >> 20)) MiB), small $SMALL_SEGMENTS segments + $SMALL_BACKUPS backups ($fs files, $((bs >> 10)) KiB); fetch: $FETCH_CALLS calls of the newest segment per run"
    fi
    if [[ $QUICK == 1 ]]; then echo "- **quick mode**: a smoke test of the harness; the targets are judged on the full run"; fi
    echo
    python3 - "$RESULTS" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(part, fig, tool, col):
    v = [float(r[col]) for r in rows if r[0] == part and r[1] == fig and r[2] == tool and r[col]]
    return st.median(v) if v else None
def mx(part, fig, tool, col):
    v = [float(r[col]) for r in rows if r[0] == part and r[1] == fig and r[2] == tool and r[col]]
    return max(v) if v else None
if any(r[0] == "relations" for r in rows):
    print("## 20,000 relation files: ue-wal vs pgBackRest (medians)\n")
    print("| figure | ue-wal s | pgBackRest s | speedup | target ≥ 2x | ue-wal peak RSS MiB | pgBackRest peak RSS MiB | stored MiB ue-wal / pgBackRest |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for fig in ("backup-full", "backup-incr", "restore"):
        u, p = med("relations", fig, "ue", 4), med("relations", fig, "pb", 4)
        if u is None or p is None:
            continue
        sp = p / u
        ru, rp = mx("relations", fig, "ue", 5), mx("relations", fig, "pb", 5)
        su, sb = med("relations", fig, "ue", 7), med("relations", fig, "pb", 7)
        stored = "" if fig == "restore" else f"{su/2**20:.1f} / {sb/2**20:.1f}"
        print(f"| {fig} | {u:.2f} | {p:.2f} | {sp:.2f}x | {'met' if sp >= 2 else '**no**'} | {ru/1024:.0f} | {rp/1024:.0f} | {stored} |")
    print()
if any(r[0] == "repository" for r in rows):
    print("## Big repository against a small one (medians; peak RSS: max over runs)\n")
    print("| command | small s | big s | big / small time | CPU s small / big | small peak RSS MiB | big peak RSS MiB | big / small RSS | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for fig in ("info", "fetch", "verify", "expire-dry-run"):
        s, b = med("repository", fig, "small", 4), med("repository", fig, "big", 4)
        if s is None or b is None:
            continue
        rs, rb = mx("repository", fig, "small", 5), mx("repository", fig, "big", 5)
        us, ub = med("repository", fig, "small", 9), med("repository", fig, "big", 9)
        label = fig
        if fig == "fetch":
            cs, cb = med("repository", fig, "small", 6), med("repository", fig, "big", 6)
            s, b = s / cs * 1000, b / cb * 1000
            us, ub = us / cs * 1000, ub / cb * 1000
            label = "ue-wal-fetch, ms per call"
        tr, rr = b / s, rb / rs
        if fig == "info":
            tgt = f"time < 2 s: {'met' if b < 2 else '**no**'}; RSS ≤ 2x: {'met' if rr <= 2 else '**no**'}"
        elif fig == "fetch":
            tgt = f"time within 10 %: {'met' if tr <= 1.10 else '**no**'}; RSS ≤ 2x: {'met' if rr <= 2 else '**no**'}"
        elif fig == "verify":
            tgt = f"RSS ≤ 2x: {'met' if rr <= 2 else '**no**'} (time grows with the objects read)"
        else:
            tgt = f"RSS ≤ 2x: {'met' if rr <= 2 else '**no**'} (time grows with the objects listed)"
        print(f"| {label} | {s:.3f} | {b:.3f} | {tr:.2f} | {us:.3f} / {ub:.3f} | {rs/1024:.1f} | {rb/1024:.1f} | {rr:.2f} | {tgt} |")
    os_, ob = med("repository", "verify", "small", 7), med("repository", "verify", "big", 7)
    vs, vb = med("repository", "verify", "small", 4), med("repository", "verify", "big", 4)
    if os_ and ob:
        print(f"\nverify --full, per object read: small {vs/os_*1000:.3f} ms ({os_:.0f} objects), big {vb/ob*1000:.3f} ms ({ob:.0f} objects)")
EOF
} >"$REPORT"
cat "$REPORT"
log "report saved to $REPORT"
exit 0
}
