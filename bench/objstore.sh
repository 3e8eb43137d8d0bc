#!/usr/bin/env bash
# bench/objstore.sh: ue-wal against pgBackRest on object stores, S3 (s3rver)
# and Azure (Azurite) emulators on loopback over verified TLS, both tools on
# the same servers, the same WAL and in the same run, interleaved.
# What it measures and how to read the result: bench/README.md.
#
#   bench/objstore.sh                  # full: scale 50, 64 segments, 3 runs
#   BENCH_QUICK=1 bench/objstore.sh    # quick: scale 5, 16 segments, 1 run
#   BENCH_STORES=s3 BENCH_FIGURES="push fetch" bench/objstore.sh
#
# Run as root (servers and tools run as the postgres user through runuser;
# the emulators run as root). Not part of CI.
set -euo pipefail
# One compound command: editing this file during a run changes nothing.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)

# ------------------------------------------------------------- parameters --
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then d_scale=5 d_seg=16 d_runs=1; else d_scale=50 d_seg=64 d_runs=3; fi
SCALE=${BENCH_SCALE:-$d_scale}              # pgbench scale of the cluster
SEGMENTS=${BENCH_SEGMENTS:-$d_seg}          # WAL segments in the corpus
RUNS=${BENCH_RUNS:-$d_runs}                 # interleaved runs; medians are reported
PMAX=${BENCH_PROCESS_MAX:-2}                # process-max of async push and prefetch
BACKUP_PMAX=${BENCH_BACKUP_PMAX:-"2 4"}     # process-max of backup and restore (each)
QUEUE_MAX=${BENCH_QUEUE_MAX:-268435456}     # archive-get-queue-max (both tools), bytes
LEVEL=3                                     # zstd level, both tools
CORPORA=${BENCH_CORPORA:-realistic}         # one corpus (plain or realistic)
# pgBackRest 2.45 lists a bucket as "GET /bucket/?list-type=2..." in path
# style; s3rver 5.0.0 itself checks that signature against "/bucket" and
# refuses it (403), tests/s3rver_uploads.js (which tests/objstore.sh runs)
# signs the path as sent, as AWS does.
STORES=${BENCH_STORES:-"s3 azure"}
FIGURES=${BENCH_FIGURES:-"push fetch backup restore"}
DIR=${BENCH_DIR:-/var/tmp/ue-wal-objbench}
BUILD=${BENCH_BUILD:-/tmp/bench-build}
PGBIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-58010}                   # plain cluster; realistic = PORT+1
S3_PORT=${BENCH_S3_PORT:-58000}
AZ_PORT=${BENCH_AZURE_PORT:-58001}
KEEP=${BENCH_KEEP:-0}
REQ_LOG=${BENCH_REQ_LOG:-0}                 # 1: log and classify every request (bench/req_log.js)
REUSE=${BENCH_REUSE:-0}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
PGUSER_OS=postgres
OUT=$HERE/out
STAMP=$(date -u +%Y%m%d-%H%M%S)
STANZA=bench
BUCKET=bench      # S3 bucket and Azure container
AZ_ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, in Microsoft's documentation).
AZ_KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==

source "$HERE/lib.sh"
[[ $CORPORA == plain || $CORPORA == realistic ]] || { echo "bench: BENCH_CORPORA must be plain or realistic (one corpus)" >&2; exit 2; }
for s in $STORES; do [[ $s == s3 || $s == azure ]] || { echo "bench: BENCH_STORES: s3 and/or azure" >&2; exit 2; }; done
for p in $BACKUP_PMAX; do [[ $p =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_BACKUP_PMAX: positive integers" >&2; exit 2; }; done
bench_checks SCALE SEGMENTS RUNS PMAX QUEUE_MAX PORT S3_PORT AZ_PORT
C=$CORPORA
OBJ=$DIR/objstore   # tests/objstore.sh's directory: server data, pid files, logs
# shellcheck disable=SC2317 # run by lib.sh's EXIT trap
bench_on_exit() { [[ -d $OBJ ]] && bash "$SRC/tests/objstore.sh" stop "$OBJ" >/dev/null 2>&1; }
bench_traps
# Servers of an interrupted run first: bench_prepare_dir removes their data.
[[ -f $DIR/$MARK && -d $OBJ ]] && bash "$SRC/tests/objstore.sh" stop "$OBJ" >/dev/null 2>&1
bench_prepare_dir
bench_build
HAVE_RESTORE=0
PITR_HELP=$("$BIN/ue-pitr" --help 2>&1 || true)
if grep -Eq '^[[:space:]]+restore([[:space:]]|$)' <<<"$PITR_HELP"; then HAVE_RESTORE=1; fi
[[ $HAVE_RESTORE == 1 ]] || log "ue-pitr has no 'restore' command: the restore figures are skipped"
has() { [[ " $FIGURES " == *" $1 "* ]]; }

# ------------------------------------------------------- TLS and servers --
# A CA of our own and a server certificate it signs, for "localhost" (the
# name both tools connect to: pgBackRest 2.45 checks DNS names only) and
# 127.0.0.1. Both tools verify it against the CA (repo1-storage-ca-file);
# verification is never turned off.
TLS=$DIR/tls
CA=$TLS/ca.crt
make_tls() {
    mkdir -p "$TLS"
    (
        cd "$TLS"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ue-wal bench CA" \
            -keyout ca.key -out ca.crt
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out server.crt
    ) >"$DIR/log/openssl.log" 2>&1 || { cat "$DIR/log/openssl.log" >&2; die "openssl could not make the certificates"; }
    chmod 755 "$TLS"
    chmod 644 "$CA"
}

# The emulators, each with the handshake counter (bench/tls_count.js) loaded,
# and with BENCH_REQ_LOG=1 the request logger (bench/req_log.js).
start_servers() {
    local s pre="--require $HERE/tls_count.js"
    [[ $REQ_LOG == 1 ]] && pre+=" --require $HERE/req_log.js"
    mkdir -p "$OBJ"
    for s in $STORES; do
        if [[ $s == s3 ]]; then
            NODE_OPTIONS=$pre UW_BENCH_TLS_COUNT=$OBJ/s3.tls UW_BENCH_REQ_LOG=$OBJ/s3.req \
                UW_S3_PORT=$S3_PORT UW_S3_BUCKET=$BUCKET UW_S3_TLS_CERT=$TLS/server.crt UW_S3_TLS_KEY=$TLS/server.key \
                bash "$SRC/tests/objstore.sh" start "$OBJ" s3 2>>"$DIR/log/objstore.log" ||
                { cat "$DIR/log/objstore.log" >&2; die "could not start s3rver"; }
        else
            NODE_OPTIONS=$pre UW_BENCH_TLS_COUNT=$OBJ/azure.tls UW_BENCH_REQ_LOG=$OBJ/azure.req \
                UW_AZURE_PORT=$AZ_PORT UW_AZURE_TLS_CERT=$TLS/server.crt UW_AZURE_TLS_KEY=$TLS/server.key \
                bash "$SRC/tests/objstore.sh" start "$OBJ" azure 2>>"$DIR/log/objstore.log" ||
                { cat "$DIR/log/objstore.log" >&2; die "could not start Azurite"; }
            SSL_CERT_FILE=$CA AZ_ENDPOINT=https://localhost:$AZ_PORT python3 "$SRC/tests/azure_tool.py" \
                create-container "$BUCKET" >>"$DIR/log/objstore.log" 2>&1 ||
                { cat "$DIR/log/objstore.log" >&2; die "could not create the Azure container"; }
        fi
    done
}
# The node that runs the emulators (tests/objstore.sh may pin its own).
node_version() { "$(readlink "/proc/$(server_pid "${STORES%% *}")/exe")" --version 2>/dev/null || echo "?"; }
server_pid() { if [[ $1 == s3 ]]; then cat "$OBJ/s3rver.pid"; else cat "$OBJ/azurite.pid"; fi; }
# "tcp full resumed requests": the handshake counts and the request log's
# line count (0 without BENCH_REQ_LOG).
tls_counts() {
    local c
    c=$(cat "$OBJ/$1.tls" 2>/dev/null || echo "0 0 0")
    echo "$c $(wc -l 2>/dev/null <"$OBJ/$1.req" || echo 0)"
}

# "size name" of every object under PREFIX, listed by a client that is
# neither tool (boto3; tests/azure_tool.py), verifying TLS with the CA.
list_objects() { # list_objects STORE PREFIX
    if [[ $1 == s3 ]]; then
        python3 - "$S3_PORT" "$BUCKET" "$2" "$CA" <<'EOF'
import sys, boto3
from botocore.config import Config
port, bucket, prefix, ca = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=f"https://localhost:{port}", aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1", verify=ca,
                  config=Config(s3={"addressing_style": "path"}))
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        print(o["Size"], o["Key"])
EOF
    else
        SSL_CERT_FILE=$CA AZ_ENDPOINT=https://localhost:$AZ_PORT python3 "$SRC/tests/azure_tool.py" list "$BUCKET" "$2"
    fi
}
# "COUNT BYTES" of the WAL segment objects under PREFIX (either tool's layout).
# (Everything is listed and filtered here: whether a tool's object names
# start with "/" is its own business. No {24} in the regex: mawk lacks it.)
count_wal() { # count_wal STORE PREFIX
    list_objects "$1" "" | awk -v pfx="$2" 'index($2, pfx) { n = split($2, p, "/") }
        index($2, pfx) && length(p[n]) >= 24 && substr(p[n], 1, 24) ~ /^[0-9A-F]+$/ { c++; b += $1 } END { printf "%d %d\n", c, b }'
}

# ------------------------------------------------------------- configs ----
# The repository lines of each tool for each store (secrets in the file,
# which only postgres reads; never on a command line).
store_lines() { # store_lines ue|pb s3|azure
    case $1-$2 in
    ue-s3) printf '%s\n' repo1-type=s3 "repo1-s3-endpoint=https://localhost:$S3_PORT" "repo1-s3-bucket=$BUCKET" \
        repo1-s3-region=us-east-1 repo1-s3-uri-style=path repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
        "repo1-storage-ca-file=$CA" ;;
    pb-s3) printf '%s\n' repo1-type=s3 repo1-s3-endpoint=localhost "repo1-storage-port=$S3_PORT" \
        "repo1-s3-bucket=$BUCKET" repo1-s3-region=us-east-1 repo1-s3-uri-style=path repo1-s3-key=S3RVER \
        repo1-s3-key-secret=S3RVER "repo1-storage-ca-file=$CA" ;;
    ue-azure) printf '%s\n' repo1-type=azure "repo1-azure-account=$AZ_ACCOUNT" "repo1-azure-key=$AZ_KEY" \
        "repo1-azure-container=$BUCKET" repo1-azure-endpoint=https://localhost "repo1-storage-port=$AZ_PORT" \
        repo1-azure-uri-style=path "repo1-storage-ca-file=$CA" ;;
    pb-azure) printf '%s\n' repo1-type=azure "repo1-azure-account=$AZ_ACCOUNT" "repo1-azure-key=$AZ_KEY" \
        "repo1-azure-container=$BUCKET" repo1-storage-host=localhost "repo1-storage-port=$AZ_PORT" \
        repo1-azure-uri-style=path "repo1-storage-ca-file=$CA" ;;
    esac
}
# tool_conf TOOL STORE FILE PREFIX PGDATA SCRATCH: the tool's configuration
# for the repository PREFIX of STORE.
tool_conf() {
    if [[ $1 == ue ]]; then ue_conf "$3" "$4" "$5" "$C" "" "$(store_lines ue "$2")"
    else
        pb_conf "$3" "$4" "$5" "$C" "$6" "" "$(store_lines pb "$2")"
        chown -R "$PGUSER_OS:" "$6"   # lock, log and spool directories
    fi
    chown "$PGUSER_OS:" "$3"
    chmod 600 "$3"
}
stanza_create() { # stanza_create TOOL CONF
    if [[ $1 == ue ]]; then
        as_pg "$BIN/ue-pitr" --config "$2" --stanza "$STANZA" stanza-create >>"$DIR/log/stanza.log" 2>&1
    else
        as_pg "$PGBR" --config="$2" --stanza="$STANZA" stanza-create >>"$DIR/log/stanza.log" 2>&1
    fi || { tail -5 "$DIR/log/stanza.log" >&2; die "$1: stanza-create failed ($2)"; }
}

# ----------------------------------------------------------- measuring ----
RESULTS=$DIR/results.tsv
: >"$RESULTS"
: >"$DIR/requests.tsv"
# One row per measurement: store, figure, tool, run, seconds, tool CPU s,
# emulator CPU s (timed part), TCP connections, full and resumed handshakes
# (whole operation), extra (bytes stored), load average after, peak RSS KiB.
record() { # record STORE FIGURE TOOL RUN "drive output" "TLS before" "TLS after" [EXTRA]
    local s cpu emu rss t0 f0 r0 q0 t1 f1 r1 q1
    s=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$5")
    cpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$5")
    emu=$(sed -n 's/.*watch_cpu_s=\([-0-9.]*\).*/\1/p' <<<"$5")
    rss=$(sed -n 's/.* maxrss_kb=\([0-9]*\).*/\1/p' <<<"$5")
    read -r t0 f0 r0 q0 <<<"$6"
    read -r t1 f1 r1 q1 <<<"$7"
    # The requests of this figure, labelled (whole operation, as the TLS counts).
    if [[ $REQ_LOG == 1 ]]; then
        sed -n "$((q0 + 1)),${q1}p" "$OBJ/$1.req" | sed "s|^|$1\t$2\t$3\t$4\t|" >>"$DIR/requests.tsv"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$s" "$cpu" "$emu" \
        $((t1 - t0)) $((f1 - f0)) $((r1 - r0)) "${8:-}" "$(cut -d' ' -f1 /proc/loadavg)" "$rss" >>"$RESULTS"
    log "$1 $2 $3 run $4: ${s}s, tool CPU ${cpu}s, emulator CPU ${emu}s, TCP $((t1 - t0)), TLS full $((f1 - f0)) resumed $((r1 - r0))${8:+, $8 bytes}"
}
# drive_it STORE LOGNAME [VAR=VALUE...] MODE ARGS...: bench/drive as
# postgres (a clean environment: its settings are arguments), watching the
# store's emulator.
drive_it() {
    local store=$1 lg=$2 vars=()
    shift 2
    while [[ $1 == *=* ]]; do vars+=("$1"); shift; done
    as_pg DRIVE_WATCH_PIDS="$(server_pid "$store")" "${vars[@]}" "$BIN/drive" "$@" 2>>"$DIR/log/$lg.log"
}

prefix_of() { echo "/r$4-$1-$2-$3"; } # prefix_of STORE FIGURE TOOL RUN: a fresh repository

run_push() { # run_push STORE ue|pb sync|async RUN
    local store=$1 tool=$2 mode=$3 r=$4 d=$DIR/$C run=$DIR/$C/run cmd out before prefix got bytes
    prefix=$(prefix_of "$store" "push-$mode" "$tool" "$r")
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/ue-spool"
    fake_pgdata "$C" 1
    chown -R "$PGUSER_OS:" "$run"
    tool_conf "$tool" "$store" "$run/stanza.conf" "$prefix" "$d/pgdata" "$run/scratch"
    stanza_create "$tool" "$run/stanza.conf"
    if [[ $tool == ue ]]; then
        tool_conf ue "$store" "$run/conf" "$prefix" "$d/pgdata"
        cmd="$BIN/ue-wal-push --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --process-max $PMAX --spool-path $run/ue-spool"
        cmd+=" %p"
    else
        tool_conf pb "$store" "$run/conf" "$prefix" "$run/pgdata" "$run/scratch"
        cmd="$PGBR --config=$run/conf --stanza=$STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --process-max=$PMAX"
        cmd+=" archive-push %p"
    fi
    chown -R "$PGUSER_OS:" "$run"
    sync
    before=$(tls_counts "$store")
    out=$(drive_it "$store" push DRIVE_GRACE=30 push "$run/pgdata" "$d/list" "$cmd") ||
        { tail -5 "$DIR/log/push.log" >&2; die "$store: push $tool $mode failed"; }
    read -r got bytes <<<"$(count_wal "$store" "${prefix#/}/")"
    [[ $got == "$SEGMENTS" ]] || die "$store: push $tool $mode: $got WAL objects in $prefix, expected $SEGMENTS"
    record "$store" "push-$mode" "$tool" "$r" "$out" "$before" "$(tls_counts "$store")" "$bytes"
    rm -rf "$run"
}

run_fetch() { # run_fetch STORE ue|pb sync|async RUN: reads the run's push-sync archive
    local store=$1 tool=$2 mode=$3 r=$4 d=$DIR/$C run=$DIR/$C/run cmd out before prefix
    prefix=$(prefix_of "$store" push-sync "$tool" "$r")
    rm -rf "$run"
    mkdir -p "$run/scratch" "$run/fetched"
    fake_pgdata "$C" 0
    if [[ $tool == ue ]]; then
        tool_conf ue "$store" "$run/conf" "$prefix" "$d/pgdata"
        cmd="$BIN/ue-wal-fetch --config $run/conf --stanza $STANZA"
        [[ $mode == async ]] && cmd+=" --archive-get-queue-max $QUEUE_MAX --process-max $PMAX"
        cmd+=" %f %p"
    else
        tool_conf pb "$store" "$run/conf" "$prefix" "$run/pgdata" "$run/scratch"
        cmd="$PGBR --config=$run/conf --stanza=$STANZA"
        [[ $mode == async ]] && cmd+=" --archive-async --archive-get-queue-max=$QUEUE_MAX --process-max=$PMAX"
        cmd+=" archive-get %f %p"
    fi
    chown -R "$PGUSER_OS:" "$run"
    sync
    before=$(tls_counts "$store")
    out=$(drive_it "$store" fetch DRIVE_GRACE=3 DRIVE_COLLECT="$run/fetched" fetch "$run/pgdata" "$d/list" "$cmd") ||
        { tail -5 "$DIR/log/fetch.log" >&2; die "$store: fetch $tool $mode failed"; }
    while read -r n; do
        cmp -s "$d/corpus/$n" "$run/fetched/$n" || die "$store: fetch $tool $mode delivered a wrong $n"
    done <"$d/list"
    record "$store" "fetch-$mode" "$tool" "$r" "$out" "$before" "$(tls_counts "$store")"
    rm -rf "$run"
}

# Backups: one repository per store and tool (bk-ue, bk-pb), created once.
# The cluster archives into the repository of the tool being measured (the
# archive_command is switched before each backup): a backup waits for its
# last WAL segment, and neither tool waits for the other's push.
bk_conf() { echo "$DIR/$C/bk/$1-$2.conf"; } # bk_conf STORE TOOL
make_backup_repos() {
    local store tool
    mkdir -p "$DIR/$C/bk/scratch"
    for store in $STORES; do for tool in ue pb; do
        tool_conf "$tool" "$store" "$(bk_conf "$store" "$tool")" "/bk-$tool" "$DIR/$C/pgdata" "$DIR/$C/bk/scratch-$store"
        stanza_create "$tool" "$(bk_conf "$store" "$tool")"
    done; done
    chown -R "$PGUSER_OS:" "$DIR/$C/bk"
}
archive_to() { # archive_to STORE TOOL
    local conf cmd
    conf=$(bk_conf "$1" "$2")
    if [[ $2 == ue ]]; then cmd="$BIN/ue-wal-push --config $conf --stanza $STANZA %p"
    else cmd="$PGBR --config=$conf --stanza=$STANZA archive-push %p"; fi
    psql_c "$C" "ALTER SYSTEM SET archive_command = '$cmd'" >/dev/null
    psql_c "$C" "SELECT pg_reload_conf()" >/dev/null
}

run_backup() { # run_backup STORE ue|pb PMAX RUN
    local store=$1 tool=$2 p=$3 r=$4 conf out before
    conf=$(bk_conf "$store" "$tool")
    archive_to "$store" "$tool"
    warm_cluster "$C"
    sync
    before=$(tls_counts "$store")
    if [[ $tool == ue ]]; then
        out=$(drive_it "$store" backup once "$DIR/$C" "$BIN/ue-basebackup --config $conf --stanza $STANZA --process-max $p") ||
            { tail -5 "$DIR/log/backup.log" >&2; die "$store: ue-basebackup failed"; }
    else
        out=$(drive_it "$store" backup once "$DIR/$C" "$PGBR --config=$conf --stanza=$STANZA backup --type=full --process-max=$p") ||
            { tail -5 "$DIR/log/backup.log" >&2; die "$store: pgbackrest backup failed"; }
    fi
    record "$store" "backup-p$p" "$tool" "$r" "$out" "$before" "$(tls_counts "$store")"
}

run_restore() { # run_restore STORE ue|pb PMAX RUN: the newest backup (the one just taken)
    local store=$1 tool=$2 p=$3 r=$4 conf out before run=$DIR/$C/run
    conf=$(bk_conf "$store" "$tool")
    rm -rf "$run"
    mkdir -p "$run/target"
    chmod 700 "$run/target"
    chown -R "$PGUSER_OS:" "$run"
    sync
    before=$(tls_counts "$store")
    if [[ $tool == ue ]]; then
        out=$(drive_it "$store" restore once "$DIR/$C" "$BIN/ue-pitr --config $conf --stanza $STANZA restore --pgdata $run/target --process-max $p") ||
            { tail -5 "$DIR/log/restore.log" >&2; die "$store: ue-pitr restore failed"; }
    else
        out=$(drive_it "$store" restore once "$DIR/$C" "$PGBR --config=$conf --stanza=$STANZA restore --pg1-path=$run/target --process-max=$p") ||
            { tail -5 "$DIR/log/restore.log" >&2; die "$store: pgbackrest restore failed"; }
    fi
    [[ -f $run/target/PG_VERSION && -f $run/target/global/pg_control ]] || die "$store: $tool restore left no data directory"
    record "$store" "restore-p$p" "$tool" "$r" "$out" "$before" "$(tls_counts "$store")" "$(du -sb "$run/target" | cut -f1)"
    # Kept until the end of the run (bench/run.sh's run_restore says why).
    mkdir -p "$DIR/trash"
    mv "$run" "$DIR/trash/$store-$tool-$p"
}

# ---------------------------------------------------------------- setup ---
make_tls
rm -rf "$OBJ"   # no objects of an earlier run (BENCH_REUSE keeps only the corpus)
start_servers
NODE_V=$(node_version)
if [[ $REUSING == 0 ]]; then
    gen_corpus "$C"
    rm -rf "$DIR/$C/archive-raw"
    echo "$CORPUS_STAMP" >"$DIR/ready"
else
    [[ -f $DIR/$C/list ]] || die "BENCH_REUSE=1 but $DIR/$C has no corpus"
    pg_start "$C"
fi
chown -R "$PGUSER_OS:" "$DIR/$C"
# The corpus cluster archived with cp; from now on it archives into the
# backup repositories (archive_to).
if has backup; then make_backup_repos; fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then order="ue pb"; else order="pb ue"; fi
    for store in $STORES; do
        log "run $r/$RUNS, $store"
        if has push; then
            for mode in sync async; do for t in $order; do run_push "$store" "$t" "$mode" "$r"; done; done
        fi
        if has fetch; then
            has push || die "fetch needs the push figure (it reads the run's push-sync archive)"
            for mode in sync async; do for t in $order; do run_fetch "$store" "$t" "$mode" "$r"; done; done
        fi
        for p in $BACKUP_PMAX; do
            if has backup; then for t in $order; do run_backup "$store" "$t" "$p" "$r"; done; fi
            if has restore && [[ $HAVE_RESTORE == 1 ]]; then
                has backup || die "restore needs the backup figure"
                for t in $order; do run_restore "$store" "$t" "$p" "$r"; done
            fi
        done
    done
    rm -rf "$DIR/trash"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------- report ---
REPORT=$OUT/objstore-$STAMP.md
{
    echo "# ue-wal vs pgBackRest on object stores — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
    echo "- PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $("$PGBR" version), ue-wal $UE_COMMIT (Release build)"
    echo "- servers on loopback over HTTPS (certificate of a private CA, verified by both tools): s3rver 5.0.0 (S3), Azurite 3.35.0 (Azure), node $NODE_V"
    echo "- $C corpus, scale $SCALE, $SEGMENTS segments, $RUNS interleaved run(s), zstd level $LEVEL, process-max $PMAX (async push, prefetch), ${BACKUP_PMAX// /, } (backup, restore), archive-get-queue-max $QUEUE_MAX"
    echo "- load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other work on the machine skews every figure)"
    if [[ $HAVE_RESTORE != 1 ]]; then echo "- **restore skipped: \`ue-pitr\` has no \`restore\` command in this build**"; fi
    if [[ $QUICK == 1 ]]; then echo "- **quick mode**: a smoke test of the harness; the targets are judged on the full run"; fi
    echo
    python3 "$HERE/objstore_report.py" "$RESULTS" "$SEGMENTS" "$(nproc)" "$PMAX"
    if [[ $REQ_LOG == 1 ]]; then python3 "$HERE/objstore_reqs.py" "$DIR/requests.tsv"; fi
} >"$REPORT"
if [[ $REQ_LOG == 1 ]]; then cp "$DIR/requests.tsv" "$OUT/objstore-$STAMP.requests.tsv"; fi
cat "$REPORT"
log "report saved to $REPORT"
exit 0
}
