#!/usr/bin/env bash
# ue-pitr check and verify (issue 12) on object stores over HTTPS: one cluster
# archives into repo1 = S3 (s3rver) and repo2 = Azure (Azurite), both with a
# self-signed certificate for 127.0.0.1 (repoN-storage-ca-file).
#
#  1. check: exit 0, the switched segment reached repo1 and repo2;
#  2. verify: exit 0, a backup in each repository (ue-basebackup writes one
#     repository: the first, and --repo 2) restorable; a second
#     run reads nothing (the listing's ETag/Last-Modified are the change
#     identity in the cache);
#  3. a WAL object in S3 rewritten with one byte flipped (boto3): exit 18,
#     "corrupt" naming repo1 and that object, repo2's copy sound; put back,
#     the next run reads exactly that object again;
#  4. a backup file object in Azure rewritten with one byte flipped
#     (azure_tool.py): exit 18, "corrupt" naming repo2 and the object.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
S3_PORT=$((P + 10))
AZ_PORT=$((P + 11))
STANZA=vo$UW_PORT_BASE
BUCKET=uw-verify
CONTAINER=uw-verify
PREFIX=vo
SPOOL=$T/spool
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZTOOL=(python3 "$UW_SRC_DIR/tests/azure_tool.py")

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
export AZ_ENDPOINT=https://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$KEY SSL_CERT_FILE=$T/tls.crt
t0=$(now)
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET" \
    UW_S3_TLS_CERT="$T/tls.crt" UW_S3_TLS_KEY="$T/tls.key"
objstore_start "$T/objstore" azure UW_AZURE_PORT="$AZ_PORT" UW_AZURE_TLS_CERT="$T/tls.crt" \
    UW_AZURE_TLS_KEY="$T/tls.key"
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"
s3_tool_init "https://127.0.0.1:$S3_PORT" "$BUCKET"
# s3_put KEY FILE: replace an object. Not S3TOOL's put: over https botocore
# sends a streaming checksum trailer that s3rver refuses; a signed payload it
# takes.
s3_put() {
    python3 - "https://127.0.0.1:$S3_PORT" "$BUCKET" "$1" "$2" <<'PY'
import sys, boto3
from botocore.config import Config
endpoint, bucket, key, path = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1", verify=False,
                  config=Config(s3={"addressing_style": "path", "payload_signing_enabled": True},
                                request_checksum_calculation="when_required"))
with open(path, "rb") as f:
    s3.put_object(Bucket=bucket, Key=key, Body=f.read())
PY
}
note "s3rver and Azurite over https ($(elapsed "$t0") s)"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
write_config "spool-path=$SPOOL" process-max=2 \
    repo1-type=s3 repo1-path=/$PREFIX "repo1-s3-endpoint=https://127.0.0.1:$S3_PORT" \
    repo1-s3-uri-style=path repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER \
    repo1-s3-key-secret=S3RVER repo1-storage-timeout=20 "repo1-storage-ca-file=$T/tls.crt" \
    repo2-type=azure "repo2-azure-account=$ACCOUNT" "repo2-azure-container=$CONTAINER" \
    repo2-azure-endpoint=https://127.0.0.1 "repo2-storage-port=$AZ_PORT" repo2-azure-uri-style=path \
    "repo2-path=/$PREFIX" repo2-storage-timeout=20 "repo2-storage-ca-file=$T/tls.crt" \
    "repo2-azure-key=$KEY"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
# A small table is enough: the catalogs make the backups' hundreds of objects.
q "$P" "create table uw_t as select g, md5(g::text) h from generate_series(1, 20000) g" >/dev/null
# ue-basebackup writes into one repository (the first, or --repo).
take_backup
note "backup $BACKUP_ID in repo1"
take_backup --repo 2
FULL2=$BACKUP_ID
q "$P" "insert into uw_t values (0, 'after the backups')" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 60

# ------------------------------------------------------------- 1. check --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" check
if ! grep -q "reached repo1 (s3" "$LAST_OUT" || ! grep -q "reached repo2 (azure" "$LAST_OUT"; then
    cat "$LAST_OUT"
    die "check did not report both repositories"
fi
ok "check: $(grep -c reached "$LAST_OUT") repositories reached: $(tr '\n' ' ' <"$LAST_OUT" | cut -c1-300)"

# ------------------------------------------------------------ 2. verify --
verify() { run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" verify; }
counts() { sed -nE 's/^objects: ([0-9]+) read .*, ([0-9]+) skipped.*/\1 \2/p' "$LAST_OUT"; }
show() { echo "--- stdout:" >&2; cat "$LAST_OUT" >&2; echo "--- stderr:" >&2; cat "$LAST_ERR" >&2; }
verify
[[ "$LAST_RC" == 0 ]] || { show; die "verify of sound repositories exited $LAST_RC"; }
grep -q "^backups: 2 restorable of 2" "$LAST_OUT" || { show; die "the backups are not both restorable"; }
read -r total _ <<<"$(counts)"
((total > 20)) || die "only $total objects read"
ok "verify: $total objects read in S3 and Azure, the backup in each restorable"
verify
[[ "$LAST_RC" == 0 ]] || { show; die "second verify exited $LAST_RC"; }
assert_eq "0 $total" "$(counts)" "second run: objects read and skipped"

# ------------------------------------------------ 3. WAL object in S3 --
key=$("${S3TOOL[@]}" list "$PREFIX/$STANZA/archive/" | awk '!f && $2 ~ /\/archive\/0000/ && $2 !~ /history|backup|partial/ { print $2; f = 1 }')
[[ -n "$key" ]] || die "no WAL object in S3"
"${S3TOOL[@]}" get "$key" "$T/wal.orig"
cp "$T/wal.orig" "$T/wal.bad"
flip_byte "$T/wal.bad" $(($(stat -c %s "$T/wal.bad") / 2))
s3_put "$key" "$T/wal.bad" 2>"$T/out/s3put.err" || { cat "$T/out/s3put.err"; die "put failed"; }
verify
rel=${key#"$PREFIX/"}
if [[ "$LAST_RC" != 18 ]] || ! grep -Eq "^corrupt: repo1 \(s3.* $rel: " "$LAST_OUT"; then
    show
    die "flipped WAL byte in S3 not found"
fi
grep -Eq "^corrupt: repo2" "$LAST_OUT" && { show; die "repo2 reported corrupt too"; }
ok "S3: $(grep -m1 '^corrupt:' "$LAST_OUT" | cut -c1-220)"
s3_put "$key" "$T/wal.orig" 2>"$T/out/s3put.err" || { cat "$T/out/s3put.err"; die "put failed"; }
verify
[[ "$LAST_RC" == 0 ]] || { show; die "verify after the undo exited $LAST_RC"; }
assert_eq "1 $((total - 1))" "$(counts)" "after the undo: only the rewritten S3 object read again"

# ------------------------------------------- 4. backup file in Azure --
blob=$("${AZTOOL[@]}" list "$CONTAINER" "$PREFIX/$STANZA/backup/$FULL2/pg_data/base/" | awk '!f && $1 > 20000 { print $2; f = 1 }')
[[ -n "$blob" ]] || die "no large backup file object in Azure"
"${AZTOOL[@]}" get "$CONTAINER" "$blob" "$T/file.bad"
flip_byte "$T/file.bad" $(($(stat -c %s "$T/file.bad") / 2))
"${AZTOOL[@]}" put "$CONTAINER" "$blob" "$T/file.bad"
verify
rel=${blob#"$PREFIX/"}
if [[ "$LAST_RC" != 18 ]] || ! grep -Eq "^corrupt: repo2 \(azure.* $rel: " "$LAST_OUT"; then
    show
    die "flipped backup byte in Azure not found"
fi
grep -Eq "^not-restorable: repo2 .*backup $FULL2" "$LAST_OUT" || { show; die "the damaged backup in repo2 is not called unrestorable"; }
grep -q "^backups: 1 restorable of 2" "$LAST_OUT" || { show; die "repo1's copy should stay restorable"; }
ok "Azure: $(grep -m1 '^corrupt:' "$LAST_OUT" | cut -c1-220)"
