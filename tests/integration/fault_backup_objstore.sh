#!/usr/bin/env bash
# fault_backup_objstore: crash leftovers on S3 (issue 11, items 1 and 2, and
# the fault-suite bullet "ue-basebackup killed mid-copy three times in a
# row", on s3rver over https).
#
#  0. The test server: tests/s3rver_uploads.js adds ListMultipartUploads and
#     AbortMultipartUpload to s3rver; boto3, the reference client, lists three
#     uploads through its paginator one per page (key-marker and
#     upload-id-marker), aborts one, gets NoSuchUpload aborting it again, and
#     an unsigned listing is refused (403).
#  1. Three times in a row: ue-basebackup (uncompressed, 5 MiB parts, one
#     worker) is SIGKILLed as soon as s3rver holds a part of a multipart
#     upload of the new backup (polled on its disk: a copy in flight). Then
#     `ue-pitr info` never lists the killed backup as valid, the next
#     ue-basebackup succeeds and removes it, and nothing of it remains:
#     0 objects under its prefix (boto3) and 0 unfinished uploads (boto3
#     through the wrapper, and on s3rver's disk).
#  2. Pushes of a segment (5 MiB parts) into a stanza of their own, SIGKILLed
#     once a part is stored: their uploads stay. A boto3 upload stands for a
#     live writer. `ue-pitr expire` (a sweep point) aborts none of them while
#     they are young; once the killed ones are aged past the 6-hour limit
#     (their initiation time moved back on s3rver's disk), it aborts exactly
#     those, and the live writer's stays. s3rver answers 2 uploads per
#     page here, so the sweep's listing follows key-marker/upload-id-marker.
# Printed: objects and uploads of each killed backup before and after the
# next backup, uploads aborted by the sweep.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
S3_PORT=$((P + 10))
STANZA=fb$UW_PORT_BASE
BUCKET=uw-fbk
PREFIX=fbk
PUSH_PREFIX=fbkpush
ENDPOINT=https://127.0.0.1:$S3_PORT
UPLOADS=$T/objstore/s3/$BUCKET/._S3rver_uploads

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
# Pages of 2 uploads: the sweep's listing has to follow the markers.
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET" \
    UW_S3_TLS_CERT="$T/tls.crt" UW_S3_TLS_KEY="$T/tls.key" UW_S3_UPLOADS_PAGE=2
at_exit kill_own_processes
s3_tool_init "$ENDPOINT" "$BUCKET"

# disk_uploads PREFIX: unfinished uploads of keys under PREFIX on s3rver's disk.
disk_uploads() {
    local n=0 d
    for d in "$UPLOADS"/*/; do
        [[ -f "$d/key" ]] && [[ $(cat "$d/key") == "$1"* ]] && n=$((n + 1))
    done
    echo "$n"
}
# tool_count CMD PREFIX: lines the boto3 client prints for CMD (list, uploads).
tool_count() { "${S3TOOL[@]}" "$1" "$2" | grep -c . || true; }

# ------------------------------------------ 0. the server against boto3 --
for k in probe/a probe/b probe/b; do "${S3TOOL[@]}" mpu-start "$k" >>"$T/out/probe.ids" || die "boto3 create_multipart_upload failed"; done
"${S3TOOL[@]}" uploads probe/ 1 >"$T/out/probe.list" || die "boto3 list_multipart_uploads failed"
assert_eq 3 "$(grep -c . "$T/out/probe.list")" "uploads boto3 lists one per page"
[[ $(awk '{ print $1 }' "$T/out/probe.list" | tr '\n' ' ') == "probe/a probe/b probe/b " ]] ||
    { cat "$T/out/probe.list" >&2; die "uploads not listed in key order"; }
assert_eq "$(sort "$T/out/probe.ids" | tr '\n' ' ')" "$(awk '{ print $2 }' "$T/out/probe.list" | sort | tr '\n' ' ')" "upload ids listed"
read -r k id _ < <(tail -n 1 "$T/out/probe.list")
"${S3TOOL[@]}" abort "$k" "$id" || die "boto3 abort_multipart_upload failed"
if "${S3TOOL[@]}" abort "$k" "$id" 2>"$T/out/probe.abort2"; then die "aborting an aborted upload succeeded"; fi
grep -q NoSuchUpload "$T/out/probe.abort2" || { cat "$T/out/probe.abort2" >&2; die "aborting twice: no NoSuchUpload"; }
assert_eq 2 "$(tool_count uploads probe/)" "uploads left after one abort"
code=$(curl -sk -o "$T/out/probe.anon" -w '%{http_code}' "$ENDPOINT/$BUCKET?uploads") || true
assert_eq 403 "$code" "HTTP status of an unsigned ListMultipartUploads"
while read -r k id _; do "${S3TOOL[@]}" abort "$k" "$id"; done <"$T/out/probe.list" 2>/dev/null || true
assert_eq 0 "$(tool_count uploads probe/)" "probe uploads left"
assert_eq 0 "$(disk_uploads probe/)" "probe uploads on s3rver's disk"
ok "s3rver_uploads.js: boto3 lists (3 pages of 1), aborts, gets NoSuchUpload; unsigned listing 403"

# ------------------------------------------------ 1. killed backups --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config repo1-type=s3 repo1-path=/$PREFIX repo1-s3-endpoint="$ENDPOINT" repo1-s3-uri-style=path \
    repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
    repo1-storage-ca-file="$T/tls.crt" repo1-storage-timeout=20 repo1-s3-part-size=5MiB compress-type=none
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 3 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "cluster ready: $(q "$P" "select pg_size_pretty(pg_database_size('postgres'))")"

bprefix=$PREFIX/$STANZA/backup
for round in 1 2 3; do
    pg_bg "backup$round" "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" --process-max 1
    deadline=$((SECONDS + 300))
    killed=""
    while :; do
        # a part of a backup file's multipart upload stored: a copy in flight
        for d in "$UPLOADS"/*/; do
            [[ -f "$d/key" && -f "$d/1" ]] || continue
            key=$(cat "$d/key" 2>/dev/null) || continue
            [[ $key == "$bprefix/"* ]] || continue
            killed=${key#"$bprefix/"}
            killed=${killed%%/*}
            break
        done
        [[ -n "$killed" ]] && break
        kill -0 "$BG_PID" 2>/dev/null || { cat "$T/out/backup$round.err" >&2; die "round $round: ue-basebackup ended before a copy was caught in flight"; }
        ((SECONDS < deadline)) || die "round $round: no upload of a new backup within 300 s"
        sleep 0.02
    done
    kill -KILL "$BG_PID"
    wait "$BG_JOB" 2>/dev/null || true
    objs=$(tool_count list "$bprefix/$killed/")
    ups=$(tool_count uploads "$bprefix/$killed/")
    note "round $round: killed backup $killed mid-copy: $objs objects, $ups unfinished uploads left"
    ((ups > 0)) || die "round $round: setup: the killed backup left no unfinished upload"
    # written before any file: what makes the killed backup's prefix listed
    assert_eq 1 "$(tool_count list "$bprefix/$killed/started")" "round $round: 'started' markers of the killed backup"

    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    if grep -qE "^ +$killed +(full|incr)" "$LAST_OUT"; then
        cat "$LAST_OUT" >&2
        die "round $round: killed backup $killed listed as valid"
    fi
    t0=$(now)
    take_backup --process-max 1
    note "round $round: next backup $BACKUP_ID succeeded in $(elapsed "$t0") s"
    objs_after=$(tool_count list "$bprefix/$killed/")
    ups_after=$(tool_count uploads "$bprefix/$killed/")
    disk_after=$(disk_uploads "$bprefix/$killed/")
    note "round $round: after it: $objs_after objects, $ups_after uploads (boto3), $disk_after uploads on s3rver's disk"
    grep -q "removing interrupted backup $killed" "$BACKUP_LOG" || { cat "$BACKUP_LOG" >&2; die "round $round: the killed backup $killed was not found and removed ($objs_after objects left)"; }
    assert_eq 0 "$objs_after" "round $round: objects of the killed backup left"
    assert_eq 0 "$ups_after" "round $round: unfinished uploads of the killed backup left (boto3)"
    assert_eq 0 "$disk_after" "round $round: unfinished uploads of the killed backup on s3rver's disk"
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    grep -qE "^ +$BACKUP_ID +full" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "round $round: $BACKUP_ID not listed"; }
done
assert_eq 0 "$(tool_count uploads "$PREFIX/")" "unfinished uploads left in the stanza"
ok "3 backups killed mid-copy on S3: none listed as valid, each next backup succeeded and removed it whole (0 objects, 0 unfinished uploads left)"

# ----------------------------------- 2. killed pushes: the uploads' sweep --
PCONF=$T/push.conf
sed "s|^repo1-path=.*|repo1-path=/$PUSH_PREFIX|" "$CONF" >"$PCONF"
pg_file "$PCONF" 600
assert_exit_pg 0 "$PITR" --config "$PCONF" --stanza "$STANZA" stanza-create
pdir=$PUSH_PREFIX/$STANZA
mapfile -t segs < <(find "$T/src/pg_wal" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort)
pg_dir "$T/wal" 700
# A push caught with one part stored may still finish before the kill lands
# (a busy machine can delay the poller while the push stores its last parts):
# such a push left nothing behind, so take the next segment until 3 pushes
# were killed with their upload unfinished.
cut=0 finished=0
for s in "${segs[@]}"; do
    ((cut < 3)) || break
    cp "$T/src/pg_wal/$s" "$T/wal/$s"
    [[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$T/wal/$s"
    pg_bg "push-$s" "$PUSH" --config "$PCONF" --stanza "$STANZA" "$T/wal/$s"
    deadline=$((SECONDS + 120))
    while :; do
        hit=""
        for d in "$UPLOADS"/*/; do
            [[ -f "$d/key" && -f "$d/1" && $(cat "$d/key" 2>/dev/null) == "$pdir/archive/"*"/$s-"* ]] && hit=$d
        done
        [[ -n "$hit" ]] && break
        kill -0 "$BG_PID" 2>/dev/null || { cat "$T/out/push-$s.err" >&2; die "push of $s ended before a part was stored"; }
        ((SECONDS < deadline)) || die "push of $s: no part stored within 120 s"
        sleep 0.02
    done
    kill -KILL "$BG_PID"
    wait "$BG_JOB" 2>/dev/null || true
    if [[ -f "$hit/key" ]]; then cut=$((cut + 1)); else finished=$((finished + 1)); fi
done
((cut == 3)) || die "setup: only $cut of ${#segs[@]} pushes were killed before their upload completed"
note "3 pushes killed with their upload unfinished ($finished more finished before the kill landed)"
live=$("${S3TOOL[@]}" mpu-start "$pdir/archive/live-writer") || die "boto3 could not start the live upload"
before=$(tool_count uploads "$pdir/")
assert_eq 4 "$before" "unfinished uploads after 3 killed pushes and one live upload"
assert_exit_pg 0 "$PITR" --config "$PCONF" --stanza "$STANZA" expire
assert_eq 4 "$(tool_count uploads "$pdir/")" "uploads after a sweep while all are young"
# Initiated more than 6 hours ago: the killed pushes' uploads only.
for d in "$UPLOADS"/*/; do
    [[ -f "$d/key" && $(cat "$d/key") == "$pdir/archive/"*"/"*-* && $(basename "$d") != "$live" ]] && touch -d '7 hours ago' "$d/key"
done
assert_exit_pg 0 "$PITR" --config "$PCONF" --stanza "$STANZA" expire
aborted=$(sed -n 's/.*aborted \([0-9]*\) unfinished multipart uploads initiated more than 6 hours ago.*/\1/p' "$LAST_OUT")
after=$(tool_count uploads "$pdir/")
note "sweep: $before unfinished uploads before, $aborted aborted by ue-pitr expire, $after left (boto3), $(disk_uploads "$pdir/") on s3rver's disk"
assert_eq 3 "$aborted" "uploads the sweep reports aborted"
assert_eq 1 "$after" "uploads left after the sweep (the live writer's)"
[[ $("${S3TOOL[@]}" uploads "$pdir/" | awk '{ print $2 }') == "$live" ]] || die "the sweep aborted the live writer's upload"
"${S3TOOL[@]}" abort "$pdir/archive/live-writer" "$live" || die "boto3 could not abort the live upload"
assert_eq 0 "$(disk_uploads "$PUSH_PREFIX/")" "unfinished uploads on s3rver's disk at the end"
ok "3 killed pushes: 3 stale uploads aborted by the sweep (0 while young), the live writer's upload kept; 0 unfinished uploads remain"
