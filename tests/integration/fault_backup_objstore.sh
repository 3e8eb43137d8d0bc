#!/usr/bin/env bash
# fault_backup_objstore: crash leftovers on the object stores (issue 11,
# items 1 and 2, and the fault-suite bullet "ue-basebackup killed mid-copy
# three times in a row", on s3rver and on Azurite, both over https).
#
#  0. The test server: tests/s3rver_uploads.js adds ListMultipartUploads and
#     AbortMultipartUpload to s3rver; boto3, the reference client, lists three
#     uploads through its paginator one per page (key-marker and
#     upload-id-marker), aborts one, gets NoSuchUpload aborting it again, and
#     an unsigned listing is refused (403).
#  1. Three times in a row: ue-basebackup (uncompressed, 5 MiB parts, one
#     worker) is SIGKILLed (kill_backup_mid_copy) as soon as s3rver holds a
#     part of a multipart upload of the new backup (polled on its disk: a
#     copy in flight). Then
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
#  3. The same cluster archiving into a stanza on Azurite, 1 MiB blocks:
#     three times in a row ue-basebackup is SIGKILLed as soon as a blob of
#     the new backup holds staged, uncommitted blocks only (a List Blobs
#     with include=uncommittedblobs, curl with a SAS token: a copy in
#     flight). Then `ue-pitr info` never lists the killed backup as valid,
#     the next ue-basebackup succeeds and removes it, and no blob of it
#     remains (azure_tool.py, the reference client with its own signing).
#     Its uncommitted blocks stay, invisible: the Blob API cannot delete
#     them without committing a blob (README), the service drops them.
# Printed: objects and uploads (S3), blobs and uncommitted blocks (Azure) of
# each killed backup before and after the next backup, uploads aborted by
# the sweep.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
S3_PORT=$((P + 10))
AZ_PORT=$((P + 11))
STANZA=fb$UW_PORT_BASE
BUCKET=uw-fbk
PREFIX=fbk
PUSH_PREFIX=fbkpush
ENDPOINT=https://127.0.0.1:$S3_PORT
UPLOADS=$T/objstore/s3/$BUCKET/._S3rver_uploads
CONTAINER=uw-fbk
AZPREFIX=fbkaz
# Azurite's well-known development account; azure_tool.py (the reference
# client) reads these from its environment.
export AZ_ENDPOINT=https://127.0.0.1:$AZ_PORT AZ_ACCOUNT=devstoreaccount1
export AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# SSL_CERT_FILE for python only: the binaries take repo1-storage-ca-file.
AZTOOL=(env SSL_CERT_FILE="$T/tls.crt" python3 "$UW_SRC_DIR/tests/azure_tool.py")

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
# Pages of 2 uploads: the sweep's listing has to follow the markers.
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET" \
    UW_S3_TLS_CERT="$T/tls.crt" UW_S3_TLS_KEY="$T/tls.key" UW_S3_UPLOADS_PAGE=2 UW_S3_HOLD_FILE="$T/s3-hold"
objstore_start "$T/objstore" azure UW_AZURE_PORT="$AZ_PORT" UW_AZURE_TLS_CERT="$T/tls.crt" \
    UW_AZURE_TLS_KEY="$T/tls.key"
at_exit kill_own_processes
s3_tool_init "$ENDPOINT" "$BUCKET"
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"

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
AZCONF=$T/az.conf
write_config -f "$AZCONF" repo1-type=azure repo1-path=/$AZPREFIX "repo1-azure-account=$AZ_ACCOUNT" \
    "repo1-azure-container=$CONTAINER" repo1-azure-endpoint=https://127.0.0.1 "repo1-storage-port=$AZ_PORT" \
    repo1-azure-uri-style=path repo1-azure-block-size=1MiB "repo1-azure-key=$AZ_KEY" \
    repo1-storage-ca-file="$T/tls.crt" repo1-storage-timeout=20 compress-type=none
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 3 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "cluster ready: $(q "$P" "select pg_size_pretty(pg_database_size('postgres'))")"

# info_not_listed KIND ROUND ID: `ue-pitr info` ($CONF) does not list backup
# ID as valid.
info_not_listed() {
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    if grep -qE "^ +$3 +(full|incr)" "$LAST_OUT"; then
        cat "$LAST_OUT" >&2
        die "$1 round $2: killed backup $3 listed as valid"
    fi
}
# next_backup KIND ROUND ID: the next ue-basebackup ($CONF) succeeds, says it
# removed the killed backup ID, and is listed by `ue-pitr info`.
next_backup() {
    local t0
    t0=$(now)
    take_backup --process-max 1
    note "$1 round $2: next backup $BACKUP_ID succeeded in $(elapsed "$t0") s"
    grep -q "removing interrupted backup $3" "$BACKUP_LOG" ||
        { cat "$BACKUP_LOG" >&2; die "$1 round $2: the killed backup $3 was not found and removed"; }
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    grep -qE "^ +$BACKUP_ID +full" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "$1 round $2: $BACKUP_ID not listed"; }
}

# big_file REL: the size of the cluster's file REL (pg_data-relative, as a
# backup names it uncompressed), 0 if there is none.
big_file() { stat -c %s "$T/src/$1" 2>/dev/null || echo 0; }
bprefix=$PREFIX/$STANZA/backup
# s3_copy_in_flight: the backup whose file's multipart upload has a part
# stored on s3rver's disk: a copy in flight.
s3_copy_in_flight() {
    local d key
    for d in "$UPLOADS"/*/; do
        [[ -f "$d/key" && -f "$d/1" ]] || continue
        key=$(cat "$d/key" 2>/dev/null) || continue
        [[ $key == "$bprefix/"*/pg_data/* ]] || continue
        # a file of 4 parts or more: the kill lands before its upload ends
        (($(big_file "${key#*/pg_data/}") >= 20 << 20)) || continue
        key=${key#"$bprefix/"}
        echo "${key%%/*}"
        return 0
    done
}
for round in 1 2 3; do
    kill_backup_mid_copy "backup$round" s3_copy_in_flight --process-max 1
    killed=$KILLED_BACKUP
    objs=$(tool_count list "$bprefix/$killed/")
    ups=$(tool_count uploads "$bprefix/$killed/")
    note "S3 round $round: killed backup $killed mid-copy after $KILL_SECS s: $objs objects, $ups unfinished uploads left"
    ((ups > 0)) || die "S3 round $round: setup: the killed backup left no unfinished upload"
    # written before any file: what makes the killed backup's prefix listed
    assert_eq 1 "$(tool_count list "$bprefix/$killed/started")" "S3 round $round: 'started' markers of the killed backup"

    info_not_listed S3 "$round" "$killed"
    next_backup S3 "$round" "$killed"
    objs_after=$(tool_count list "$bprefix/$killed/")
    ups_after=$(tool_count uploads "$bprefix/$killed/")
    disk_after=$(disk_uploads "$bprefix/$killed/")
    note "S3 round $round: after it: $objs_after objects, $ups_after uploads (boto3), $disk_after uploads on s3rver's disk"
    assert_eq 0 "$objs_after" "S3 round $round: objects of the killed backup left"
    assert_eq 0 "$ups_after" "S3 round $round: unfinished uploads of the killed backup left (boto3)"
    assert_eq 0 "$disk_after" "S3 round $round: unfinished uploads of the killed backup on s3rver's disk"
done
assert_eq 0 "$(tool_count uploads "$PREFIX/")" "unfinished uploads left in the stanza"
ok "3 backups killed mid-copy on S3: none listed as valid, each next backup succeeded and removed it whole (0 objects, 0 unfinished uploads left)"

# ----------------------------------- 2. killed pushes: the uploads' sweep --
PCONF=$T/push.conf
sed "s|^repo1-path=.*|repo1-path=/$PUSH_PREFIX|" "$CONF" >"$PCONF"
pg_file "$PCONF" 600
assert_exit_pg 0 "$PITR" --config "$PCONF" --stanza "$STANZA" stanza-create
pdir=$PUSH_PREFIX/$STANZA
# Completed segments only (older than the current one: pg_wal also holds
# recycled files named ahead); more than 3, since on a loaded machine a push
# may complete its upload between the part seen and the kill.
cur=$(current_seg "$P")
mapfile -t segs < <(wal_segments "$T/src/pg_wal" | awk -v c="$cur" '$0 < c' | head -n 8)
((${#segs[@]} >= 3)) || die "setup: fewer than 3 completed segments in pg_wal"
pg_dir "$T/wal" 700
kpushes=0
# s3rver holds every part after the first of these pushes (UW_S3_HOLD_FILE in
# tests/s3rver_uploads.js): each push is caught with one part stored and
# killed there on any machine. The fallback below stays for a push that
# would still complete.
printf '%s\n' "$pdir/archive/" >"$T/s3-hold"
for s in "${segs[@]}"; do
    ((kpushes < 3)) || break
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
    kill -KILL "$BG_PID" 2>/dev/null || true
    wait "$BG_JOB" 2>/dev/null || true
    if [[ -d "$hit" ]]; then
        kpushes=$((kpushes + 1))
    else
        note "push of $s completed its upload before the kill landed: another segment"
    fi
done
((kpushes == 3)) || die "setup: only $kpushes of ${#segs[@]} pushes killed with their upload unfinished"
rm -f "$T/s3-hold"
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

# ---------------------------------------------- 3. killed backups on Azure --
# The same cluster now archives into a stanza on Azurite (https, 1 MiB
# blocks: every file above 1 MiB is Put Block per block, then Put Block
# List).
CONF=$AZCONF
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
set_archive_command src "$PUSH --config $AZCONF --stanza $STANZA %p"
azbprefix=$AZPREFIX/$STANZA/backup
AZ_SAS=$("${AZTOOL[@]}" sas "$CONTAINER" rl 2) || die "azure_tool.py could not make a SAS token"
# az_list QUERY: List Blobs of the container (curl with a read/list SAS token,
# handed on stdin: never on argv).
az_list() {
    curl -sfS --cacert "$T/tls.crt" -K - <<<"url = \"$AZ_ENDPOINT/$AZ_ACCOUNT/$CONTAINER?restype=container&comp=list&$1&$AZ_SAS\""
}
# az_backup_ids: the backup folders a plain listing shows (committed blobs).
az_backup_ids() {
    local xml
    xml=$(az_list "delimiter=%2F&prefix=$azbprefix%2F") || return 1
    { grep -o '<BlobPrefix><Name>[^<]*' <<<"$xml" || true; } | sed 's|.*/\([^/]*\)/$|\1|'
}
# az_copy_in_flight: a new backup (not in $az_before) holding a blob with
# staged, uncommitted blocks only (listed with include=uncommittedblobs,
# Content-Length 0 and no Content-MD5: every committed blob of ue-wal's has
# one) of a file of 8 blocks or more: a copy in flight that the kill lands in.
az_copy_in_flight() {
    local id name
    for id in $(az_backup_ids); do
        [[ " $az_before " == *" $id "* ]] && continue
        for name in $(az_list "include=uncommittedblobs&prefix=$azbprefix%2F$id%2F" | tr -d '\n' |
            sed 's|<Blob>|\n<Blob>|g' | grep '<Content-Length>0</Content-Length>' |
            grep -v '<Content-MD5>[^<]' | sed -n 's|.*<Name>[^<]*/pg_data/\([^<]*\)</Name>.*|\1|p'); do
            if (($(big_file "$name") >= 8 << 20)); then
                echo "$id"
                return 0
            fi
        done
    done
}
# az_uncommitted PREFIX: "blobs blocks": blobs under PREFIX with uncommitted
# blocks only, and their uncommitted blocks (azure_tool.py, Get Block List).
az_uncommitted() {
    "${AZTOOL[@]}" uncommitted "$CONTAINER" "$1" >"$T/out/az-uncommitted" || die "azure_tool.py uncommitted $1 failed"
    awk '{ n++; b += $1 } END { print n + 0, b + 0 }' "$T/out/az-uncommitted"
}
az_count() { "${AZTOOL[@]}" list "$CONTAINER" "$1" | grep -c . || true; }

for round in 1 2 3; do
    az_before=$(az_backup_ids) || die "Azure round $round: listing the backups failed"
    az_before=${az_before//$'\n'/ }
    kill_backup_mid_copy "az-backup$round" az_copy_in_flight --process-max 1
    killed=$KILLED_BACKUP
    objs=$(az_count "$azbprefix/$killed/")
    read -r ublobs ublocks < <(az_uncommitted "$azbprefix/$killed/")
    note "Azure round $round: killed backup $killed mid-copy after $KILL_SECS s: $objs blobs, $ublobs blobs with $ublocks uncommitted blocks only"
    ((ublobs > 0)) || die "Azure round $round: setup: the killed backup left no uncommitted blocks"
    assert_eq 1 "$(az_count "$azbprefix/$killed/started")" "Azure round $round: 'started' markers of the killed backup"

    info_not_listed Azure "$round" "$killed"
    next_backup Azure "$round" "$killed"
    objs_after=$(az_count "$azbprefix/$killed/")
    read -r ublobs_after ublocks_after < <(az_uncommitted "$azbprefix/$killed/")
    note "Azure round $round: after it: $objs_after blobs; $ublobs_after blobs with $ublocks_after uncommitted blocks only (not swept: the service discards them)"
    assert_eq 0 "$objs_after" "Azure round $round: blobs of the killed backup left"
done
read -r ublobs ublocks < <(az_uncommitted "$AZPREFIX/")
ok "3 backups killed mid-copy on Azure: none listed as valid, each next backup succeeded and removed every blob of it (0 left); $ublobs blobs with $ublocks uncommitted blocks only remain invisible (not swept, by policy)"
