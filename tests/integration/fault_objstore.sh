#!/usr/bin/env bash
# fault_objstore: crash safety against the object stores (issue 11's fault
# suite for S3 on s3rver and Azure on Azurite).
#
#  1. Cluster "src" writes full segments (pgbench -i) that stay in pg_wal;
#     s3rver on UW_PORT_BASE+10, Azurite on +11; a stanza in each.
#  2. Synchronous ue-wal-push calls (the archiver's way: .ready becomes
#     .done on exit 0 only) to S3, then to Azure, SIGKILLed at a random point
#     of the push (0 to 1.5 times an unkilled push's duration; uncompressed
#     with small parts/blocks, so kills land in multipart uploads and block
#     lists as well as in the PutObject/Put Blob of a whole object) until
#     UW_OS_KILLS (10; 6 sanitized) kills landed in each; then the loop runs without kills
#     until no .ready is left. Checks: every segment is .done and listed
#     exactly once by the reference client (boto3, azure_tool.py), nothing
#     but well-named objects is listed, and each fetches back byte-identical.
#     Printed: what the kills left invisible in the service (unfinished S3
#     multipart uploads, as s3rver keeps them on disk: young, so the sweep
#     keeps them until they are 6 hours old; fault_backup_objstore checks
#     that sweep; Azure blobs with uncommitted blocks only, which the
#     service discards by itself).
#  (ue-basebackup killed mid-copy against S3 and Azure: fault_backup_objstore;
#     backup_kill covers the posix repository.)
#  3. Concurrent pushes of one segment with different content (the segment
#     and a copy with one record byte changed) against S3, UW_OS_PAIRS (6)
#     pairs started together: never both acknowledged (exit 0); a loser
#     exits 7 (archive mismatch); the bucket then holds at most one object
#     for the name, and it is the winner's content. Printed: pairs with one
#     winner, pairs where both withdrew (the archiver retries those).
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
S3_PORT=$((P + 10))
AZ_PORT=$((P + 11))
STANZA=fo$UW_PORT_BASE
BUCKET=uw-fault
CONTAINER=uw-fault
# 10 kills per store keep CI within its time (a sanitized build: 6); raise
# UW_OS_KILLS for a longer run.
if [[ "$UW_SANITIZED" == 1 ]]; then KILLS=${UW_OS_KILLS:-6}; else KILLS=${UW_OS_KILLS:-10}; fi
PAIRS=${UW_OS_PAIRS:-4}
seed=${UW_SEED:-$$}
RANDOM=$seed
note "random seed $seed (UW_SEED=$seed reproduces the kill points)"
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT AZ_KEY
AZTOOL=(python3 "$UW_SRC_DIR/tests/azure_tool.py")

# ---------------------------------------------------------------- 1. setup --
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
objstore_start "$T/objstore" azure UW_AZURE_PORT="$AZ_PORT"
at_exit kill_own_processes
s3_tool_init "http://127.0.0.1:$S3_PORT" "$BUCKET"
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
S3CONF=$T/s3.conf
AZCONF=$T/az.conf
write_config -f "$S3CONF" repo1-type=s3 repo1-path=/uw repo1-s3-endpoint="http://127.0.0.1:$S3_PORT" \
    repo1-s3-uri-style=path repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER \
    repo1-s3-key-secret=S3RVER repo1-s3-part-size=5MiB repo1-storage-timeout=20 compress-type=none
write_config -f "$AZCONF" repo1-type=azure repo1-path=/uw "repo1-azure-account=$AZ_ACCOUNT" \
    "repo1-azure-container=$CONTAINER" repo1-azure-endpoint=http://127.0.0.1 "repo1-storage-port=$AZ_PORT" \
    repo1-azure-uri-style=path repo1-azure-block-size=1MiB "repo1-azure-key=$AZ_KEY" repo1-storage-timeout=20 \
    compress-type=none
CONF=$S3CONF
first=$(current_seg "$P")
pgbench_run "$P" -i -s 6 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
last=$(switch_wal "$P")
mapfile -t segs < <(seg_range "$first" "$last" | head -n 4)
((${#segs[@]} >= 4)) || die "setup: only ${#segs[@]} completed segments ($first .. $last)"
note "segments ${segs[0]} .. ${segs[-1]} to push"

# s3_keys PREFIX / az_keys PREFIX: "size key" of what the reference clients list.
s3_keys() { "${S3TOOL[@]}" list "$1" | awk '{ print $1, $2 }'; }
az_keys() { "${AZTOOL[@]}" list "$CONTAINER" "$1"; }
# az_uncommitted PREFIX: blobs that hold uncommitted blocks only.
az_uncommitted() {
    python3 - "$UW_SRC_DIR/tests" "$CONTAINER" "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
sys.path.insert(0, sys.argv[1])
import azure_tool as az
st, _, body = az.request("GET", "/" + sys.argv[2], {"restype": "container", "comp": "list",
                         "prefix": sys.argv[3], "include": "uncommittedblobs"})
az.check(st, body)
n = 0
for b in ET.fromstring(body).iter("Blob"):
    if b.findtext("Properties/Content-Length") == "0" and not b.findtext("Properties/Content-MD5"):
        n += 1
print(n)
EOF
}

# ------------------------------------------------ 2. kills of synchronous pushes --
# kill_round KIND CONF LISTER PREFIX: one round of step 2 for one store, in a
# stanza of its own under PREFIX (so that every round pushes new segments).
dur_ms=0
kill_round() {
    local kind=$1 conf=$2 lister=$3 prefix=$4 wal=$T/wal-$1-$ROUND
    assert_exit_pg 0 "$PITR" --config "$conf" --stanza "$STANZA" stanza-create
    wal_dir_ready "$wal" "$T/src/pg_wal" "${segs[@]}"
    local -a push=("$PUSH" --config "$conf" --stanza "$STANZA")
    while :; do
        local next
        next=$(find "$wal/archive_status" -maxdepth 1 -name '*.ready' -printf '%f\n' | sort | head -1)
        [[ -n "$next" ]] || break
        next=${next%.ready}
        ATTEMPTS=$((ATTEMPTS + 1))
        local t0 rc=0 killed=0 ms=-1
        t0=$(now)
        pg_bg "$kind-push$ATTEMPTS" "${push[@]}" "$wal/$next"
        # The first push runs unkilled; the last unkilled one's duration
        # scales the kill points.
        if ((dur_ms > 0 && KILLED < KILLS)); then
            ms=$((RANDOM % (dur_ms + 1)))
            sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
            kill -KILL "$BG_PID" 2>/dev/null && killed=1
        fi
        wait "$BG_JOB" || rc=$?
        echo "$kind round $ROUND attempt $ATTEMPTS $next kill at $ms ms of $dur_ms rc $rc" >>"$T/out/kills.log"
        if ((rc == 0)); then
            mv "$wal/archive_status/$next.ready" "$wal/archive_status/$next.done"
            ACKED=$((ACKED + 1))
            ((ms >= 0)) && EARLY=$((EARLY + 1))
            dur_ms=$(awk -v s="$(elapsed "$t0")" 'BEGIN { printf "%d", s * 1000 }')
        elif ((rc == 128 + 9 && killed)); then
            KILLED=$((KILLED + 1))
        else
            cat "$T/out/$kind-push$ATTEMPTS.err" >&2
            die "$kind: push of $next exited $rc without being killed"
        fi
    done
    # Every segment acknowledged, listed once, well named, and byte-identical.
    local list=$T/out/$kind-$ROUND.list
    "$lister" "${prefix#/}/$STANZA/archive/" >"$list"
    local s n odd
    for s in "${segs[@]}"; do
        [[ -e "$wal/archive_status/$s.done" ]] || die "$kind: $s never acknowledged"
        n=$(grep -c "/$s-" "$list" || true)
        [[ "$n" == 1 ]] || die "$kind: $s acknowledged, $n objects listed: $(grep "/$s-" "$list" | tr '\n' ' ')"
    done
    odd=$(awk '{ print $2 }' "$list" | grep -v -E "/archive/[0-9A-F]{16}/[0-9A-F]{24}-[0-9a-f]{64}(\.zst)?(\.enc)?$" || true)
    [[ -z "$odd" ]] || die "$kind: listed objects that are no WAL object: $(head -3 <<<"$odd" | tr '\n' ' ')"
    pg_dir "$T/back-$kind" 700
    for s in "${segs[@]}"; do
        assert_exit_pg 0 "$FETCH" --config "$conf" --stanza "$STANZA" "$s" "$T/back-$kind/$s"
        cmp -s "$T/back-$kind/$s" "$T/src/pg_wal/$s" || die "$kind: $s fetches back different from pg_wal's"
        rm -f "$T/back-$kind/$s"
    done
}
# kill_pushes KIND CONF LISTER: rounds until KILLS kills landed.
kill_pushes() {
    local kind=$1 conf=$2 lister=$3
    ATTEMPTS=0 KILLED=0 ACKED=0 EARLY=0 ROUND=0
    while ((KILLED < KILLS)); do
        ROUND=$((ROUND + 1))
        ((ROUND <= 3 * KILLS)) || die "$kind: $ROUND rounds and only $KILLED kills landed"
        sed "s|^repo1-path=.*|repo1-path=/$kind$ROUND|" "$conf" >"$T/$kind-$ROUND.conf"
        pg_file "$T/$kind-$ROUND.conf" 600
        kill_round "$kind" "$T/$kind-$ROUND.conf" "$lister" "/$kind$ROUND"
    done
    KP_SUMMARY="$ATTEMPTS pushes in $ROUND rounds, $KILLED SIGKILLs ($EARLY pushes ended before their kill point), $ACKED acknowledged: 0 lost, 0 acknowledged without its object, every segment listed once and fetched identical"
}

kill_pushes s3 "$S3CONF" s3_keys
uploads=$(find "$T/objstore/s3/$BUCKET"/*uploads* -mindepth 1 -maxdepth 1 -type d 2>/dev/null | grep -c . || true)
ok "S3: $KP_SUMMARY; $uploads unfinished multipart uploads left invisible in s3rver (younger than the sweep's 6-hour limit)"
kill_pushes azure "$AZCONF" az_keys
uncommitted=$(az_uncommitted azure)
ok "Azure: $KP_SUMMARY; $uncommitted blobs with uncommitted blocks only (never listed, discarded by the service)"

# ------------------------------------- 4. concurrent pushes, different content --
alt=$T/alt
pg_dir "$alt" 700
one_winner=0 both_out=0
# A stanza of its own (prefix /pairs); one pair per segment.
PAIRCONF=$T/pairs.conf
sed "s|^repo1-path=.*|repo1-path=/pairs|" "$S3CONF" >"$PAIRCONF"
pg_file "$PAIRCONF" 600
assert_exit_pg 0 "$PITR" --config "$PAIRCONF" --stanza "$STANZA" stanza-create
((${#segs[@]} >= PAIRS)) || die "only ${#segs[@]} segments for $PAIRS pairs"
pair_segs=("${segs[@]:0:PAIRS}")
for s in "${pair_segs[@]}"; do
    pg_dir "$alt/a" 700
    pg_dir "$alt/b" 700
    cp "$T/src/pg_wal/$s" "$alt/a/$s"
    cp "$T/src/pg_wal/$s" "$alt/b/$s"
    flip_byte "$alt/b/$s" $((8 * 1024 * 1024 + 4096 + 100))
    [[ $(id -u) -ne 0 ]] || chown -R "$PGUSER_OS:" "$alt"
    pg_bg "pair-a-$s" "$PUSH" --config "$PAIRCONF" --stanza "$STANZA" "$alt/a/$s"
    ja=$BG_JOB
    pg_bg "pair-b-$s" "$PUSH" --config "$PAIRCONF" --stanza "$STANZA" "$alt/b/$s"
    jb=$BG_JOB
    ra=0 rb=0
    wait "$ja" || ra=$?
    wait "$jb" || rb=$?
    for r in $ra $rb; do
        [[ $r == 0 || $r == 7 ]] || die "pair on $s: exit codes $ra and $rb (only 0 and 7 expected): $(cat "$T/out/pair-a-$s.err" "$T/out/pair-b-$s.err")"
    done
    ((ra == 7 || rb == 7)) || die "pair on $s: both contents acknowledged (exit 0 and 0)"
    n=$(s3_keys "pairs/$STANZA/archive/${s:0:16}/$s-" | grep -c . || true)
    if ((ra == 0 || rb == 0)); then
        ((n == 1)) || die "pair on $s: one winner but $n objects listed"
        win=a
        ((rb == 0)) && win=b
        assert_exit_pg 0 "$FETCH" --config "$PAIRCONF" --stanza "$STANZA" "$s" "$alt/$s.fetched"
        cmp -s "$alt/$s.fetched" "$alt/$win/$s" || die "pair on $s: the stored content is not the winner's"
        grep -q "different checksum" "$T/out/pair-$([[ $win == a ]] && echo b || echo a)-$s.err" ||
            die "pair on $s: the loser's message does not name the different checksum"
        one_winner=$((one_winner + 1))
    else
        ((n == 0)) || die "pair on $s: both withdrew but $n objects listed"
        both_out=$((both_out + 1))
    fi
    rm -rf "${alt:?}"/*
done
ok "S3: $PAIRS pairs of concurrent pushes of one segment with different content: $one_winner with one winner (the loser exit 7, the winner's content stored), $both_out where both withdrew (exit 7 both, nothing stored, the archiver retries), 0 with two acknowledged"
