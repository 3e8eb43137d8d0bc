#!/usr/bin/env bash
# bench/run.sh: ue-wal against pgBackRest on this machine, in one run.
# What it measures and how to read the result: bench/README.md.
#
#   bench/run.sh                   # full: scale 50, 64 segments, 3 interleaved runs
#   BENCH_QUICK=1 bench/run.sh     # quick: scale 5, 16 segments, 1 run
#   BENCH_FIGURES="push fetch backup restore defaults" bench/run.sh
#                                  # also each tool at its own defaults, ue-wal at zstd 1 and 6
#   BENCH_FIGURES="encrypted" BENCH_CORPORA=realistic bench/run.sh
#                                  # push and prefetch fetch, unencrypted against encrypted
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
FIGURES=${BENCH_FIGURES:-"push fetch backup restore"}   # optional: defaults encrypted restore-{cold,pagecache,dentries,settled,nosync}
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

source "$HERE/lib.sh"
bench_checks SCALE SEGMENTS RUNS PMAX QUEUE_MAX PORT
bench_traps
bench_prepare_dir
bench_build

HAVE_RESTORE=0
PITR_HELP=$("$BIN/ue-pitr" --help 2>&1 || true)   # not piped into grep -q: SIGPIPE + pipefail
if grep -Eq '^[[:space:]]+restore([[:space:]]|$)' <<<"$PITR_HELP"; then HAVE_RESTORE=1; fi
[[ $HAVE_RESTORE == 1 ]] || log "ue-pitr has no 'restore' command yet: the restore figure is skipped"
# The defaults figures run ue-wal as it ships; the report names what that is.
PUSH_HELP=$("$BIN/ue-wal-push" --help 2>&1 || true)
UE_DEFAULT="$(sed -n 's/^ *--compress-type .*\[default: \([^]]*\)\].*/\1/p' <<<"$PUSH_HELP") level $(sed -n 's/^ *--compress-level .*\[default: \([^]]*\)\].*/\1/p' <<<"$PUSH_HELP")"

# ------------------------------------------------------ encryption --------
# The encrypted figures (BENCH_FIGURES word "encrypted") compare, per tool and
# in the same run, a variant of the push and fetch configuration:
#   clear        no encryption (the reference);
#   enc          ue-wal: aes-256-gcm with the derived-key cache as it ships
#                (cipher-key-cache=y, spool-path present as the Debian
#                package creates it); pgBackRest: repo1-cipher-type=aes-256-cbc;
#   enc-nocache  ue-wal only: aes-256-gcm with cipher-key-cache=n (scrypt in
#                every process).
# Every variant sets spool-path (the cache lives there, and the prefetch spool
# then does too), so that the variants differ by the cipher only. The
# passphrase is made per benchmark run and only ever written into the 0600
# configuration files.
ENC_PASS=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
ENC_FETCH=${BENCH_ENC_FETCH:-"async sync"}   # the encrypted fetch figures: with prefetch, without
enc_extra() { # enc_extra ue|pb VARIANT SPOOL: the [global] lines of a variant
    case $1:$2 in
        ue:clear) printf 'spool-path=%s\n' "$3" ;;
        ue:enc) printf 'spool-path=%s\ncipher-type=aes-256-gcm\ncipher-pass=%s\n' "$3" "$ENC_PASS" ;;
        ue:enc-nocache) printf 'spool-path=%s\ncipher-type=aes-256-gcm\ncipher-pass=%s\ncipher-key-cache=n\n' "$3" "$ENC_PASS" ;;
        pb:clear) ;;
        pb:enc) printf 'repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\n' "$ENC_PASS" ;;
        *) die "no variant $2 for $1" ;;
    esac
}
# Template repository of a variant: the encrypted ones share one stanza.
tpl_of() { # tpl_of ue|pb [VARIANT]
    case ${2:-} in enc*) echo "$1-enc" ;; *) echo "$1" ;; esac
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

# The encrypted figures' stanzas: one per tool, from the live cluster, made
# by every benchmark run (the passphrase is this run's: a reused directory's
# encrypted stanzas and archives were made with another one).
make_enc_stanzas() {
    local c=$1 d=$DIR/$1
    log "$c: encrypted stanzas (ue-wal aes-256-gcm, pgBackRest aes-256-cbc)"
    rm -rf "$d/tpl/ue-enc" "$d/tpl/pb-enc" "$d/tpl/scratch-enc" "$d/archived/ue-enc" "$d/archived/pb-enc"
    mkdir -p "$d/tpl/ue-enc" "$d/tpl/pb-enc" "$d/tpl/scratch-enc"
    ue_conf "$d/tpl/ue-enc.conf" "$d/tpl/ue-enc" "$d/pgdata" "$c" "" "$(enc_extra ue enc "$d/tpl/scratch-enc")"
    pb_conf "$d/tpl/pb-enc.conf" "$d/tpl/pb-enc" "$d/pgdata" "$c" "$d/tpl/scratch-enc" "" "$(enc_extra pb enc)"
    chown -R "$PGUSER_OS:" "$d/tpl"
    as_pg "$BIN/ue-pitr" --config "$d/tpl/ue-enc.conf" --stanza "$STANZA" stanza-create >>"$DIR/log/$c.stanza.log" 2>&1 ||
        { tail -5 "$DIR/log/$c.stanza.log" >&2; die "$c: ue-pitr stanza-create (encrypted) failed"; }
    as_pg "$PGBR" --config="$d/tpl/pb-enc.conf" --stanza="$STANZA" stanza-create >>"$DIR/log/$c.stanza.log" 2>&1 ||
        { tail -5 "$DIR/log/$c.stanza.log" >&2; die "$c: pgbackrest stanza-create (encrypted) failed"; }
    # The configuration files hold this run's passphrase: not kept.
    rm -rf "$d/tpl/scratch-enc" "$d/tpl/ue-enc.conf" "$d/tpl/pb-enc.conf"
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
    local s rss bg pss cpu
    s=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$5")
    rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    bg=$(sed -n 's/.*bg_maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    pss=$(sed -n 's/.*tree_pss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$5")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$s" "$rss" "$bg" "${6:-}" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$pss" >>"$RESULTS"
    # CPU time (user + system of every process of the call sequence) in the
    # log: on a loaded machine it moves far less than the wall-clock time.
    log "$1 $2 $3 run $4: ${s}s, cpu ${cpu}s (rss ${rss} KiB, background ${bg} KiB, tree pss ${pss} KiB)${6:+, $6}"
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

# VARIANT: the encrypted figures' clear|enc|enc-nocache (see enc_extra);
# the figure name then ends in -VARIANT.
run_push() { # run_push CORPUS ue|pb sync|async RUN [LEVEL] [VARIANT]
    local c=$1 tool=$2 mode=$3 r=$4 lvl=${5:-} enc=${6:-} d=$DIR/$1 run=$DIR/$1/run cmd out extra=""
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/ue-spool"
    fake_pgdata "$c" 1
    cp -a "$d/tpl/$(tpl_of "$tool" "$enc")" "$run/repo"
    [[ -n $enc ]] && extra=$(enc_extra "$tool" "$enc" "$run/ue-spool")
    if [[ $tool == ue ]]; then
        ue_conf "$run/conf" "$run/repo" "$d/pgdata" "$c" "$lvl" "$extra"
        cmd="$BIN/ue-wal-push --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --process-max $PMAX --spool-path $run/ue-spool"
        cmd+=" %p"
    else
        pb_conf "$run/conf" "$run/repo" "$run/pgdata" "$c" "$run/scratch" "$lvl" "$extra"
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
    [[ $got == "$SEGMENTS" ]] || die "$c: push $tool $mode$(variant "$lvl")${enc:+-$enc}: $got objects in the repository, expected $SEGMENTS"
    record "$c" "push-$mode$(variant "$lvl")${enc:+-$enc}" "$tool" "$r" "$out" "$bytes"
    # The first complete archive of each tool is what the fetch figures read
    # (at the compared level: the other levels are not fetched); the
    # encrypted variants read the first encrypted archive.
    local keep
    keep=$d/archived/$(tpl_of "$tool" "$enc")
    if [[ -z $lvl && $enc != enc-nocache && ! -d $keep ]]; then
        mkdir -p "$d/archived"
        mv "$run/repo" "$keep"
    fi
    rm -rf "$run"
}

run_fetch() { # run_fetch CORPUS ue|pb sync|async RUN [VARIANT]
    local c=$1 tool=$2 mode=$3 r=$4 enc=${5:-} d=$DIR/$1 run=$DIR/$1/run cmd out extra="" repo
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/fetched" "$run/ue-spool"
    fake_pgdata "$c" 0
    repo=$d/archived/$(tpl_of "$tool" "$enc")
    [[ -d $repo ]] || die "fetch needs the push figure (an archive to read: $repo)"
    [[ -n $enc ]] && extra=$(enc_extra "$tool" "$enc" "$run/ue-spool")
    if [[ $tool == ue ]]; then
        ue_conf "$run/conf" "$repo" "$d/pgdata" "$c" "" "$extra"
        cmd="$BIN/ue-wal-fetch --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-get-queue-max $QUEUE_MAX --process-max $PMAX"
        cmd+=" %f %p"
    else
        pb_conf "$run/conf" "$repo" "$run/pgdata" "$c" "$run/scratch" "" "$extra"
        cmd="$PGBR --config=$run/conf --stanza=$STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --archive-get-queue-max=$QUEUE_MAX --process-max=$PMAX"
        cmd+=" archive-get %f %p"
    fi
    chown -R "$PGUSER_OS:" "$run"
    sync
    out=$(as_pg DRIVE_GRACE=3 DRIVE_TREE_PSS="$([[ $mode == async ]] && echo 1 || echo 0)" DRIVE_COLLECT="$run/fetched" "$BIN/drive" fetch "$run/pgdata" "$d/list" "$cmd" 2>>"$DIR/log/$c.fetch.log") ||
        { tail -5 "$DIR/log/$c.fetch.log" >&2; die "$c: fetch $tool $mode failed"; }
    while read -r n; do
        cmp -s "$d/corpus/$n" "$run/fetched/$n" || die "$c: fetch $tool $mode${enc:+-$enc} delivered a wrong $n"
    done <"$d/list"
    record "$c" "fetch-$mode${enc:+-$enc}" "$tool" "$r" "$out"
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

# Dirty and Writeback of /proc/meminfo, KiB: "DIRTY WRITEBACK".
dirty_wb() { awk '/^Dirty:/{d=$2} /^Writeback:/{w=$2} END{print d, w}' /proc/meminfo; }
# The block device under $DIR, for its counters (Documentation/block/stat.rst):
# "WRITE_TICKS_MS DISCARDS DISCARD_TICKS_MS FLUSHES"; zeros where the kernel
# has no discard or flush fields. A restore that waits on discards issued
# for blocks freed before it shows here, whatever tool it is.
DEV_STAT=/sys/class/block/$(basename "$(findmnt -n -o SOURCE --target "$DIR" 2>/dev/null || echo none)")/stat
dev_counters() {
    if [[ -r $DEV_STAT ]]; then awk '{ print $8, ($12 == "" ? 0 : $12), ($15 == "" ? 0 : $15), ($16 == "" ? 0 : $16) }' "$DEV_STAT"
    else echo 0 0 0 0; fi
}

# MODE: "" (warm: `sync` first, so the restore does not pay for what earlier
# figures left dirty), cold (sync; drop_caches: the backup is read from disk
# and every page written needs free memory first; figure restore-cold),
# pagecache (sync; drop_caches=1: the page cache only; figure
# restore-pagecache), dentries (sync; drop_caches=2: dentries and inodes
# only; figure restore-dentries), settled (sync, then wait until the
# device has issued no discard for 5 s: the discards of blocks freed
# earlier are done; figure restore-settled) or nosync (no sync first:
# whatever is dirty on the file system, other processes' writes included,
# is still there when the restore's final syncfs runs; figure
# restore-nosync). Dirty/Writeback before and after each restore go to
# $DIR/meminfo.tsv (what the restore left to the kernel to write), with the
# 1-minute load average and the device's write, discard and flush counters
# over the restore.
run_restore() { # run_restore CORPUS ue|pb RUN [cold|pagecache|dentries|settled|nosync]
    local c=$1 tool=$2 r=$3 mode=${4:-} d=$DIR/$1 run=$DIR/$1/run out fig=restore before after
    rm -rf "$run"
    mkdir -p "$run/target"
    chmod 700 "$run/target"
    chown -R "$PGUSER_OS:" "$run"
    [[ $mode == nosync ]] || sync
    if [[ -n $mode ]]; then fig=restore-$mode; fi
    case $mode in
    cold) echo 3 >/proc/sys/vm/drop_caches ;;
    pagecache) echo 1 >/proc/sys/vm/drop_caches ;;
    dentries) echo 2 >/proc/sys/vm/drop_caches ;;
    settled)
        # At most 2 minutes: other processes deleting files keep a busy
        # machine from ever settling (the log says so).
        local d0 d1 quiet=0 waited=0
        d0=$(dev_counters | cut -d' ' -f2)
        while ((quiet < 5 && waited < 120)); do
            sleep 1
            waited=$((waited + 1))
            d1=$(dev_counters | cut -d' ' -f2)
            if [[ $d1 == "$d0" ]]; then quiet=$((quiet + 1)); else quiet=0 d0=$d1; fi
        done
        ((quiet >= 5)) || log "$c restore-settled $tool run $r: discards still issued after 120 s: not settled" ;;
    esac
    before=$(dirty_wb)
    local dev0 dev1
    dev0=$(dev_counters)
    if [[ $tool == ue ]]; then
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$BIN/ue-pitr --config $d/bk/ue.conf --stanza $STANZA restore --pgdata $run/target --process-max $PMAX" 2>>"$DIR/log/$c.restore.log") ||
            { tail -5 "$DIR/log/$c.restore.log" >&2; die "$c: ue-pitr restore failed"; }
    else
        out=$(as_pg DRIVE_TREE_PSS=1 "$BIN/drive" once "$d" "$PGBR --config=$d/bk/pb.conf --stanza=$STANZA restore --pg1-path=$run/target --process-max=$PMAX" 2>>"$DIR/log/$c.restore.log") ||
            { tail -5 "$DIR/log/$c.restore.log" >&2; die "$c: pgbackrest restore failed"; }
    fi
    after=$(dirty_wb)
    dev1=$(dev_counters)
    [[ -f $run/target/PG_VERSION && -f $run/target/global/pg_control ]] || die "$c: $tool restore left no data directory"
    record "$c" "$fig" "$tool" "$r" "$out" "$(du -sb "$run/target" | cut -f1)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$fig" "$tool" "$r" "${before// /$'\t'}" "${after// /$'\t'}" \
        "$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")" "$(cut -d' ' -f1 /proc/loadavg)" \
        "$(awk -v a="$dev0" -v b="$dev1" 'BEGIN { split(a, x, " "); split(b, y, " ");
            printf "%d\t%d\t%d\t%d", y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4] }')" >>"$DIR/meminfo.tsv"
    log "$c $fig $tool run $r: Dirty/Writeback KiB before $before, after $after"
    # Not deleted now: on ext4 without a journal, creating files within a
    # minute of deleting a thousand others scans past the freed inodes
    # (recently_deleted), which made the next restore, of either tool, up to
    # twice as slow at random. The restored trees go at the end of the runs.
    mkdir -p "$DIR/trash"
    mv "$run" "$DIR/trash/$c-$fig-$tool-$r"
}

has() { [[ " $FIGURES " == *" $1 "* ]]; }

for m in cold pagecache dentries; do
    if has "restore-$m"; then
        [[ -w /proc/sys/vm/drop_caches ]] || die "restore-$m needs a writable /proc/sys/vm/drop_caches"
    fi
done
if has encrypted; then
    for c in $CORPORA; do make_enc_stanzas "$c"; done
fi
: >"$DIR/meminfo.tsv"
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
        for m in cold pagecache dentries settled nosync; do
            if has "restore-$m" && [[ $HAVE_RESTORE == 1 ]]; then
                has backup || die "restore-$m needs the backup figure"
                for t in $order; do run_restore "$c" "$t" "$r" "$m"; done
            fi
        done
        if has encrypted; then
            # Unencrypted and encrypted side by side, the variant that goes
            # first alternating like the tools.
            if ((r % 2)); then vorder="clear enc"; else vorder="enc clear"; fi
            for t in $order; do for v in $vorder; do run_push "$c" "$t" sync "$r" "" "$v"; done; done
            run_push "$c" ue sync "$r" "" enc-nocache
            for mode in $ENC_FETCH; do
                for t in $order; do for v in $vorder; do run_fetch "$c" "$t" "$mode" "$r" "$v"; done; done
                run_fetch "$c" ue "$mode" "$r" enc-nocache
            done
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
    if has encrypted; then echo "- encrypted figures: ue-wal aes-256-gcm (cipher-key-cache y and n), pgBackRest aes-256-cbc, against each tool unencrypted in the same run"; fi
    if has restore-cold; then echo "- restore-cold: the same restore after \`sync; echo 3 > /proc/sys/vm/drop_caches\`"; fi
    if has restore-pagecache; then echo "- restore-pagecache: the same restore after \`sync; echo 1 > /proc/sys/vm/drop_caches\` (page cache only)"; fi
    if has restore-dentries; then echo "- restore-dentries: the same restore after \`sync; echo 2 > /proc/sys/vm/drop_caches\` (dentries and inodes only)"; fi
    if has restore-settled; then echo "- restore-settled: the same restore after \`sync\` and 5 s without a discard issued on the device"; fi
    if has restore-nosync; then echo "- restore-nosync: the same restore without \`sync\` first (whatever is dirty stays for its final syncfs)"; fi
    if has defaults; then echo "- defaults figures: each tool without compression settings (ue-wal: $UE_DEFAULT; pgBackRest: gz level 6); ue-wal push sync also at zstd levels ${UE_LEVELS// /, }"; fi
    if [[ $HAVE_RESTORE != 1 ]]; then echo "- **restore skipped: \`ue-pitr\` has no \`restore\` command in this build**"; fi
    if [[ $QUICK == 1 ]]; then echo "- **quick mode**: a smoke test of the harness; the targets are judged on the full run"; fi
    echo
    python3 "$HERE/report.py" "$RESULTS" "$SEGMENTS" "$(nproc)" "$DIR/meminfo.tsv"
} >"$REPORT"
cat "$REPORT"
log "report saved to $REPORT"
exit 0
}
