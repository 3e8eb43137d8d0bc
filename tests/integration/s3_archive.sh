#!/usr/bin/env bash
# s3_archive: archiving and recovery through an S3 repository (repo1-type=s3)
# on a real S3 server (s3rver, Signature V4 verified; tests/objstore.sh),
# with boto3 as the reference client reading what ue-wal wrote.
#
#  1. s3rver over http on UW_PORT_BASE+10; cluster "src" archives with
#     ue-wal-push to the bucket (path style, prefix /pgarchive); stanza-create,
#     pg_basebackup -X none, pgbench, pg_switch_wal.
#  2. boto3 lists the archive prefix: every segment first..last is there once,
#     named <seg>-<sha256>.zst, and a downloaded object starts with the
#     ue-wal object magic (5E 2A 4D 18).
#  3. Recovery of the base backup with restore_command = ue-wal-fetch from S3
#     to the end of the archive; table contents equal the source's.
#  4. Errors: a missing segment exits 1; a wrong secret exits 17 at once (no
#     retries: timed); a missing bucket exits 17. Credentials from the AWS_*
#     environment variables; a secret on the command line is refused.
#     Then tests/unit/test_storage_s3 runs against the same server.
#  5. Multipart: compress-type=none and repo1-s3-part-size=5MiB, so a 16 MiB
#     segment is uploaded in 4 parts; boto3 sees a multipart ETag ("-4") and
#     the right size, ue-wal-fetch returns the segment byte for byte.
#  6. HTTPS: s3rver with a self-signed certificate for 127.0.0.1 made here;
#     with repo1-storage-ca-file push and fetch work; one process's
#     connections share its TLS session (verify --process-max 2: one full
#     handshake, the workers' connections resumed, counted by the server);
#     without the CA file verification fails (exit 17, at once), and
#     repo1-storage-verify-tls=n works again.
#  7. ue-basebackup (full, then incremental) into the bucket, more writes,
#     `ue-pitr restore --set <full>` from it, started, to the end of the
#     archive: contents equal the source's; boto3 sees the backups' manifests.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
P_BB=$((P + 2))
# The backup lock is /tmp/ue-wal-<stanza>.backup.lock: a stanza of our own.
STANZA=s3$UW_PORT_BASE
S3_PORT=$((P + 10))
S3_TLS_PORT=$((P + 11))
BUCKET=uw-test
PREFIX=pgarchive
OBJSTORE=$T/objstore
OBJSTORE_TLS=$T/objstore-tls
PY=/usr/bin/python3

# On exit: stop the clusters first (a recovering cluster would otherwise keep
# retrying its restore_command against a stopped server), then the servers,
# then lib.sh's cleanup, which takes the exit status from $?. errexit is off
# here: with it, `(exit 1)` would end the shell before _uw_cleanup runs.
_s3_cleanup() {
    local rc=$? name
    set +e
    for name in "${_UW_RUNNING[@]}"; do
        [[ -n "$name" && -f "$T/$name/postmaster.pid" ]] &&
            as_pg "$PGBIN/pg_ctl" -D "$T/$name" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    bash "$UW_SRC_DIR/tests/objstore.sh" stop "$OBJSTORE" >/dev/null 2>&1
    bash "$UW_SRC_DIR/tests/objstore.sh" stop "$OBJSTORE_TLS" >/dev/null 2>&1
    (exit "$rc")
    _uw_cleanup
}
trap _s3_cleanup EXIT

if ! [[ -x "$PY" ]] || ! "$PY" -c 'import boto3' 2>/dev/null; then
    die "$PY with boto3 is required (apt-get install python3-boto3)"
fi

# ------------------------------------------------------------ 1. archive --
t0=$(now)
UW_S3_PORT=$S3_PORT UW_S3_BUCKET=$BUCKET bash "$UW_SRC_DIR/tests/objstore.sh" start "$OBJSTORE" s3 \
    2>"$T/out/objstore.start" || { cat "$T/out/objstore.start" >&2; die "could not start s3rver"; }
note "s3rver up on 127.0.0.1:$S3_PORT after $(elapsed "$t0") s"

# s3 CONFIG-FILE ENDPOINT [key=value...]: config for the bucket.
s3_config() {
    local file=$1 endpoint=$2
    shift 2
    write_config -f "$file" repo1-type=s3 repo1-path=/$PREFIX repo1-s3-endpoint="$endpoint" \
        repo1-s3-uri-style=path repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 \
        repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER repo1-storage-timeout=20 "$@"
}

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 512MB"
pg_start src
s3_config "$CONF" "http://127.0.0.1:$S3_PORT"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
ok "stanza-create on s3"
enable_archiving src
first_seg=$(current_seg "$P")
basebackup "$P" restore
t_load=$(now)
pgbench_run "$P" -i -s 5 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
pgbench_run "$P" -T 5 -c 2 -j 2 -n >"$T/out/pgbench-run" 2>&1 || { tail "$T/out/pgbench-run"; die "pgbench failed"; }
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'before switch')" >/dev/null
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 120
row=$(q "$P" "select failed_count, coalesce(last_archived_wal,'') from pg_stat_archiver")
IFS='|' read -r failed_count last_archived <<<"$row"
[[ "$last_archived" =~ ^[0-9A-F]{24}$ && "$last_archived" > "$last_seg" ]] && last_seg=$last_archived
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
note "archived $nseg segments $first_seg..$last_seg to s3 in $(elapsed "$t_load") s of load+archiving"
assert_eq 0 "$failed_count" "archiver failed_count"

# ---------------------------------------------------- 2. boto3's view ----
cat >"$T/s3check.py" <<'EOF'
import sys, boto3
from botocore.config import Config
endpoint, bucket, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  verify=False, config=Config(s3={"addressing_style": "path"}))
if cmd == "list":              # list PREFIX: "size etag key" per object
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sys.argv[4]):
        for o in page.get("Contents", []):
            print(o["Size"], o["ETag"].strip('"'), o["Key"])
elif cmd == "get":             # get KEY FILE
    s3.download_file(bucket, sys.argv[4], sys.argv[5])
elif cmd == "head":            # head KEY: "size etag"
    h = s3.head_object(Bucket=bucket, Key=sys.argv[4])
    print(h["ContentLength"], h["ETag"].strip('"'))
EOF
S3PY=("$PY" "$T/s3check.py" "http://127.0.0.1:$S3_PORT" "$BUCKET")
"${S3PY[@]}" list "$PREFIX/$STANZA/" >"$T/out/s3.list" 2>"$T/out/s3.list.err" ||
    { cat "$T/out/s3.list.err" >&2; die "boto3 could not list the bucket"; }
grep -q " $PREFIX/$STANZA/stanza.info$" "$T/out/s3.list" || die "boto3 does not see $PREFIX/$STANZA/stanza.info"
for seg in $(seg_range "$first_seg" "$last_seg"); do
    keys=$(awk -v p="$PREFIX/$STANZA/archive/${seg:0:16}/$seg-" 'index($3, p) == 1 { print $3 }' "$T/out/s3.list")
    n=$(grep -c . <<<"$keys" || true)
    [[ "$n" == 1 ]] || die "segment $seg: boto3 lists $n objects under $PREFIX/$STANZA/archive/${seg:0:16}/"
    [[ "$(basename "$keys")" =~ ^$seg-[0-9a-f]{64}\.zst$ ]] || die "segment $seg: bad object name $keys"
done
ok "boto3 lists all $nseg segments $first_seg..$last_seg once each under $PREFIX/$STANZA/archive/"
key=$(awk -v p="$PREFIX/$STANZA/archive/${first_seg:0:16}/$first_seg-" 'index($3, p) == 1 { print $3 }' "$T/out/s3.list")
"${S3PY[@]}" get "$key" "$T/out/obj" || die "boto3 could not download $key"
magic=$(od -An -tx1 -N4 "$T/out/obj" | tr -d ' ')
assert_eq 5e2a4d18 "$magic" "object downloaded by boto3 starts with the ue-wal magic"

# ------------------------------------------------------------ 3. restore --
src_sum=$(table_checksum "$P")
setup_restore restore "$P_RESTORE"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/restore.log" || true)
note "recovery from s3: $restored segments restored, promoted after $(elapsed "$t0") s"
((restored >= nseg - 1)) || die "recovery restored only $restored segments, expected about $nseg"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
ok "cluster recovered from s3 matches the source ($(wc -l <<<"$src_sum") tables)"
pg_stop restore

# ------------------------------------------------------------- 4. errors --
pg_dir "$T/dst" 700
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" 0000000100000099000000FF "$T/dst/x"
assert_file_absent "$T/dst/x"
ok "missing segment: exit 1, no file"
BAD=$T/bad.conf
s3_config "$BAD" "http://127.0.0.1:$S3_PORT" repo1-s3-key-secret=not-the-secret
t0=$(now)
assert_exit_pg 17 "$FETCH" --config "$BAD" --stanza "$STANZA" "$first_seg" "$T/dst/x"
secs=$(elapsed "$t0")
grep -q SignatureDoesNotMatch "$LAST_ERR" || die "wrong secret: no SignatureDoesNotMatch in: $(cat "$LAST_ERR")"
grep -q -i -e retrying -e 'not-the-secret' "$LAST_ERR" && die "wrong secret: retried or secret logged: $(cat "$LAST_ERR")"
[[ $(grep -c . "$LAST_ERR") -le 2 ]] || die "wrong secret: more than one error line: $(cat "$LAST_ERR")"
# No bound on the time (a loaded machine makes any bound a guess): a retry
# logs "retrying", which the check above rejects; the time is printed.
assert_file_absent "$T/dst/x"
ok "wrong secret: exit 17 in $secs s without retries: $(head -c 220 "$LAST_ERR")"
assert_exit_pg 17 "$PUSH" --config "$BAD" --stanza "$STANZA" "$T/src/pg_wal/$first_seg"
ok "wrong secret: push exits 17 too"
# Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when the options
# are unset; secrets are refused on the command line.
ENVCRED=$T/envcred.conf
s3_config "$ENVCRED" "http://127.0.0.1:$S3_PORT"
sed -i '/^repo1-s3-key/d' "$ENVCRED"
assert_exit_pg 0 env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
    "$FETCH" --config "$ENVCRED" --stanza "$STANZA" "$first_seg" "$T/dst/env"
cmp -s "$T/dst/env" "$T/src/pg_wal/$first_seg" || die "segment fetched with AWS_* credentials differs"
assert_exit_pg 2 "$FETCH" --config "$ENVCRED" --stanza "$STANZA" "$first_seg" "$T/dst/x"
ok "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; none at all: exit 2 ($(head -c 120 "$LAST_ERR"))"
assert_exit_pg 2 "$FETCH" --config "$ENVCRED" --stanza "$STANZA" --repo1-s3-key-secret=S3RVER "$first_seg" "$T/dst/x"
ok "repo1-s3-key-secret refused on the command line"
NOBUCKET=$T/nobucket.conf
s3_config "$NOBUCKET" "http://127.0.0.1:$S3_PORT" repo1-s3-bucket=no-such-bucket
assert_exit_pg 17 "$FETCH" --config "$NOBUCKET" --stanza "$STANZA" "$first_seg" "$T/dst/x"
ok "missing bucket: exit 17 ($(head -c 160 "$LAST_ERR"))"

# The driver's own checks (tests/unit/test_storage_s3.c) against this server:
# odd keys, empty objects, listing across continuation tokens, multipart and
# its abort, bulk remove_tree.
UNIT=$T/unit.conf
s3_config "$UNIT" "http://127.0.0.1:$S3_PORT" repo1-path=/unit repo1-s3-part-size=5MiB log-level=error
if [[ -x "$UW_BIN_DIR/tests/test_storage_s3" ]]; then
    t0=$(now)
    assert_exit 0 env UW_S3_TEST_CONFIG="$UNIT" "$UW_BIN_DIR/tests/test_storage_s3"
    ok "test_storage_s3 against s3rver: $(tail -n 1 "$LAST_OUT") ($(elapsed "$t0") s)"
else
    die "tests/test_storage_s3 not built (it always is: build the project)"
fi

# --------------------------------------------------------- 5. multipart --
MP=$T/multipart.conf
s3_config "$MP" "http://127.0.0.1:$S3_PORT" repo1-path=/multipart compress-type=none \
    repo1-s3-part-size=5MiB
assert_exit_pg 0 "$PITR" --config "$MP" --stanza "$STANZA" stanza-create
mp_seg=$(seg_add "$first_seg" 1)
pg_dir "$T/walcopy" 700
cp "$T/src/pg_wal/$mp_seg" "$T/walcopy/$mp_seg" 2>/dev/null ||
    die "segment $mp_seg is no longer in pg_wal (wal_keep_size)"
chown "$PGUSER_OS:" "$T/walcopy/$mp_seg" 2>/dev/null || true
t0=$(now)
assert_exit_pg 0 "$PUSH" --config "$MP" --stanza "$STANZA" --log-level=debug "$T/walcopy/$mp_seg"
note "multipart push of a 16 MiB segment: $(elapsed "$t0") s"
parts=$(grep -c "upload part [0-9]* of '.*$mp_seg-" "$LAST_ERR" || true)
assert_eq 4 "$parts" "parts uploaded for a 16 MiB object with 5 MiB parts"
"${S3PY[@]}" list "multipart/$STANZA/archive/" >"$T/out/mp.list" || die "boto3 list failed"
read -r mp_size mp_etag mp_key < <(grep "/$mp_seg-" "$T/out/mp.list")
[[ -n "${mp_key:-}" ]] || die "boto3 does not see the multipart object for $mp_seg: $(cat "$T/out/mp.list")"
((mp_size > 16 * 1024 * 1024)) || die "multipart object is only $mp_size bytes"
"${S3PY[@]}" get "$mp_key" "$T/out/mp.obj" || die "boto3 could not download $mp_key"
[[ $(stat -c %s "$T/out/mp.obj") == "$mp_size" ]] || die "boto3 downloaded $(stat -c %s "$T/out/mp.obj") of $mp_size bytes"
# AWS: "<md5 of the parts' md5s>-4"; s3rver: the MD5 of the whole object.
[[ "$mp_etag" =~ -4$ || "$mp_etag" == "$(md5sum <"$T/out/mp.obj" | cut -d' ' -f1)" ]] ||
    die "object $mp_key has ETag $mp_etag: neither a 4-part ETag nor the object's MD5"
ok "boto3: $mp_key is $mp_size bytes (ETag $mp_etag), downloads intact"
assert_exit_pg 0 "$FETCH" --config "$MP" --stanza "$STANZA" "$mp_seg" "$T/dst/mp"
cmp -s "$T/dst/mp" "$T/walcopy/$mp_seg" || die "multipart object fetched back differs from the segment"
ok "multipart object fetches back byte-identical"

# -------------------------------------------------------------- 6. https --
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
# bench/tls_count.js counts, on the server side, the TCP connections, full
# TLS handshakes and resumed ones ("tcp full resumed" in $TLS_COUNT).
TLS_COUNT=$T/tls.count
NODE_OPTIONS="--require $UW_SRC_DIR/bench/tls_count.js" UW_BENCH_TLS_COUNT=$TLS_COUNT \
    UW_S3_PORT=$S3_TLS_PORT UW_S3_BUCKET=$BUCKET UW_S3_TLS_CERT=$T/tls.crt UW_S3_TLS_KEY=$T/tls.key \
    bash "$UW_SRC_DIR/tests/objstore.sh" start "$OBJSTORE_TLS" s3 2>"$T/out/objstore-tls.start" ||
    { cat "$T/out/objstore-tls.start" >&2; die "could not start s3rver with TLS"; }
TLS=$T/tls.conf
s3_config "$TLS" "https://127.0.0.1:$S3_TLS_PORT" repo1-storage-ca-file="$T/tls.crt"
assert_exit_pg 0 "$PITR" --config "$TLS" --stanza "$STANZA" stanza-create
assert_exit_pg 0 "$PUSH" --config "$TLS" --stanza "$STANZA" "$T/src/pg_wal/$first_seg"
assert_exit_pg 0 "$FETCH" --config "$TLS" --stanza "$STANZA" "$first_seg" "$T/dst/tls"
cmp -s "$T/dst/tls" "$T/src/pg_wal/$first_seg" || die "segment fetched over https differs"
ok "https with repo1-storage-ca-file: stanza-create, push, fetch"
# One process shares its TLS sessions between its connections: verify's
# main thread reads the stanza and lists the archive on one connection, then
# each of its 2 workers opens its own, which resumes that session instead of
# a full handshake (certificate chain and its verification again).
for seg in $(seg_range "$(seg_add "$first_seg" 1)" "$(seg_add "$first_seg" 3)"); do
    assert_exit_pg 0 "$PUSH" --config "$TLS" --stanza "$STANZA" "$T/src/pg_wal/$seg"
done
read -r tcp0 full0 res0 <"$TLS_COUNT"
assert_exit_pg 0 "$PITR" --config "$TLS" --stanza "$STANZA" verify --process-max 2
read -r tcp1 full1 res1 <"$TLS_COUNT"
tcp=$((tcp1 - tcp0)) full=$((full1 - full0)) res=$((res1 - res0))
note "verify --process-max 2 over https: $tcp connections, $full full TLS handshakes, $res resumed"
((tcp >= 3)) || die "verify --process-max 2 opened $tcp connections, expected one per worker and the main one"
((full == 1 && res == tcp - 1)) ||
    die "verify --process-max 2: $full full TLS handshakes and $res resumed for $tcp connections: only the first should be full"
ok "verify --process-max 2 over https: $tcp connections, 1 full TLS handshake, the others resumed"
NOCA=$T/noca.conf
s3_config "$NOCA" "https://127.0.0.1:$S3_TLS_PORT"
t0=$(now)
assert_exit_pg 17 "$FETCH" --config "$NOCA" --stanza "$STANZA" "$first_seg" "$T/dst/x"
secs=$(elapsed "$t0")
grep -q -i certificate "$LAST_ERR" || die "no certificate error in: $(cat "$LAST_ERR")"
assert_file_absent "$T/dst/x"
ok "https without the CA file: verification fails, exit 17 in $secs s: $(head -c 200 "$LAST_ERR")"
NOVERIFY=$T/noverify.conf
s3_config "$NOVERIFY" "https://127.0.0.1:$S3_TLS_PORT" repo1-storage-verify-tls=n
assert_exit_pg 0 "$FETCH" --config "$NOVERIFY" --stanza "$STANZA" "$first_seg" "$T/dst/nv"
ok "https with repo1-storage-verify-tls=n works (and warns: $(grep -c 'verification is disabled' "$LAST_ERR") line)"

# ------------------------------------------- 7. base backups through s3 --
if [[ -x "$BASEBACKUP" ]]; then
    t0=$(now)
    take_backup --type full
    FULL=$BACKUP_ID
    note "full backup $FULL into s3 in $(elapsed "$t0") s"
    pgbench_run "$P" -t 200 -c 2 -j 2 -n >"$T/out/pgbench-incr" 2>&1 || die "pgbench failed"
    t0=$(now)
    take_backup --type incr
    INCR=$BACKUP_ID
    note "incremental backup $INCR into s3 in $(elapsed "$t0") s"
    q "$P" "insert into uw_marker values (2, 'after the backups')" >/dev/null
    last_seg=$(switch_wal "$P")
    wait_archived "$P" "$last_seg" 60
    sum_end=$(table_checksum "$P")
    "${S3PY[@]}" list "$PREFIX/$STANZA/backup/" >"$T/out/bb.list" || die "boto3 list failed"
    for id in "$FULL" "$INCR"; do
        grep -q " $PREFIX/$STANZA/backup/$id/manifest$" "$T/out/bb.list" ||
            die "boto3 does not see the manifest of backup $id"
    done
    ok "boto3 sees both backups' manifests ($(grep -c . "$T/out/bb.list") objects under backup/)"
    # The full backup, then all the WAL from s3 to the end.
    t0=$(now)
    restore_to bb --set "$FULL"
    pg_set_port bb "$P_BB"
    pg_start bb
    wait_promoted "$P_BB" 180
    note "ue-pitr restore of $FULL from s3, started and promoted in $(elapsed "$t0") s"
    [[ "$(table_checksum "$P_BB")" == "$sum_end" ]] || die "cluster restored from s3 backups differs from the source"
    ok "ue-basebackup + ue-pitr restore through s3: contents equal the source's"
    pg_stop bb
    rm -f "/tmp/ue-wal-$STANZA.backup.lock"
else
    die "ue-basebackup not built (it always is: build the project)"
fi
