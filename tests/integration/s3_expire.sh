#!/usr/bin/env bash
# s3_expire: retention on an S3 repository (s3rver, tests/objstore.sh), with
# boto3 as the reference client looking at what is left.
#
#  1. a small cluster archiving to the bucket; backups B1 full, B2 full, B3
#     incr, with rows added and a WAL switch between them.
#  2. expire --dry-run --retention-full=1 names B1 and WAL, and removes
#     nothing (boto3 still lists B1's objects).
#  3. expire --retention-full=1 --process-max 2: no object of B1 and none of
#     the WAL before B2's start is listed any more; B2's WAL is.
#  4. B2 restores (to its consistency point) with the source's data then.
#  5. one object of B2 deleted with boto3: info marks B2 and B3 (built on
#     it) not restorable.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_B2=$((P + 1))
S3_PORT=$((P + 10))
STANZA=s3x$UW_PORT_BASE
BUCKET=uw-expire
PREFIX=exp
ENDPOINT=http://127.0.0.1:$S3_PORT

objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
s3_tool_init "$ENDPOINT" "$BUCKET"
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config repo1-type=s3 repo1-path=/$PREFIX repo1-s3-endpoint="$ENDPOINT" repo1-s3-uri-style=path \
    repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
    repo1-storage-timeout=20 spool-path="$T/spool"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
q "$P" "create table t(id int primary key, note text)" >/dev/null
round=0
step() {
    round=$((round + 1))
    q "$P" "insert into t select g, 'round $round' from generate_series($round * 1000, $round * 1000 + 999) g" >/dev/null
    switch_wal "$P" >/dev/null
}

# ----------------------------------------------------------- 1. backups --
step
take_backup --type full --process-max 2
B1=$BACKUP_ID
step
take_backup --type full --process-max 2
B2=$BACKUP_ID
SUM2=$(table_checksum "$P")
step
take_backup --type incr --process-max 2
B3=$BACKUP_ID
note "backups: $B1 $B2 $B3"

keys() { "${S3TOOL[@]}" list "$PREFIX/$STANZA/$1" | awk '{ print $2 }'; }
count() { keys "$1" | grep -c . || true; }
# start_wal ID: the backup's first WAL segment, as info reports it.
start_wal() {
    "$PITR" --config "$CONF" --stanza "$STANZA" info --output json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print([b["start_wal"] for b in d["repos"][0]["backups"] if b["id"] == sys.argv[1]][0])' "$1"
}
B1_START=$(start_wal "$B1")
B2_START=$(start_wal "$B2")
[[ -n "$B1_START" && -n "$B2_START" ]] || die "start WAL of $B1 or $B2 not found"
((b1_objects = $(count "backup/$B1/"))) || die "no object of $B1 listed"
wal_b1=$(keys archive/ | grep -c "/$B1_START-" || true)
assert_eq 1 "$wal_b1" "B1's first WAL segment archived"

# ----------------------------------------------------------- 2. dry run --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" expire --dry-run --retention-full=1
grep -q "would remove backup $B1 (full" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "dry run: $B1 not named"; }
grep -q "would remove WAL" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "dry run: no WAL named"; }
assert_eq "$b1_objects" "$(count "backup/$B1/")" "a dry run removes nothing from S3"

# ------------------------------------------------------------ 3. expire --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" expire --retention-full=1 --process-max 2
grep -q "removed 1 backups" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "expire summary"; }
assert_eq 0 "$(count "backup/$B1/")" "no object of $B1 left in the bucket"
assert_eq 0 "$(keys archive/ | grep -c "/$B1_START-" || true)" "B1's WAL removed from the bucket"
assert_eq 1 "$(keys archive/ | grep -c "/$B2_START-" || true)" "B2's WAL kept"
[[ $(count "backup/$B3/") -gt 0 ]] || die "$B3 removed"

# ----------------------------------------------------------- 4. restore --
restore_to r_b2 --set "$B2" --target=immediate --start --port "$P_B2"
wait_promoted "$P_B2" 180
got=$(table_checksum "$P_B2")
[[ "$got" == "$SUM2" ]] || die "$B2 restored: expected '$SUM2', got '$got'"
ok "$B2 restores from S3 after expire with the data it had"
pg_stop r_b2

# ------------------------------------------- 5. info: missing objects --
victim=$(keys "backup/$B2/pg_data/base/" | sort | sed -n 1p)
[[ -n "$victim" ]] || die "no object of $B2 under base/"
python3 - "$ENDPOINT" "$BUCKET" "$victim" <<'EOF' || die "could not delete $victim"
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
s3.delete_object(Bucket=sys.argv[2], Key=sys.argv[3])
EOF
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
grep -q "NOT restorable: 1 file missing" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "info did not notice the missing object"; }
[[ $(grep -c "NOT restorable" "$LAST_OUT") == 2 ]] || { cat "$LAST_OUT" >&2; die "info: $B2 and $B3 should both be not restorable"; }
ok "info marks $B2 (object deleted in S3) and $B3 not restorable"
