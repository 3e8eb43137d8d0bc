#!/usr/bin/env bash
# s3_pitr: base backups and point-in-time recovery through an S3 repository
# (repo1-type=s3 on s3rver, Signature V4 verified; tests/objstore.sh), with
# boto3 as the reference client reading everything ue-wal wrote.
#
#  1. s3rver on UW_PORT_BASE+10; cluster "src" archives with ue-wal-push to
#     the bucket (path style, prefix /pitr); pgbench -i -s 3; a full
#     ue-basebackup taken while pgbench runs; more pgbench; an incremental.
#  2. marker rows, one transaction each: batch A (1-5), the instant T
#     (select now(), a pause of over a second on each side), batch B (6-10);
#     pg_switch_wal, archived.
#  3. ue-pitr restore --set <full> --target-time T --target-action pause
#     --start --port: WAL comes from S3 through the restore_command that
#     ue-pitr wrote (ue-wal-fetch); the cluster holds exactly batch A.
#  4. ue-pitr restore of the newest backup (the incremental: its chain is
#     assembled from S3) to the end of the archive, --start, promoted: every
#     table's checksum equals the source's.
#  5. boto3 lists the stanza and downloads EVERY object: sizes equal the
#     listing and Content-Length, single-part ETags are the MD5 of the bytes;
#     both manifests are there; every WAL object fetched through
#     ue-wal-fetch has the SHA-256 of its name and is byte-identical to the
#     source's pg_wal file.
#  6. a WAL object overwritten with boto3 with one byte flipped: ue-wal-fetch
#     exits 150 and leaves no file; put back, it fetches again.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_TIME=$((P + 1))
P_END=$((P + 2))
S3_PORT=$((P + 10))
# The backup lock is per stanza: a stanza of our own.
STANZA=s3p$UW_PORT_BASE
BUCKET=uw-pitr
PREFIX=pitr
SCALE=${UW_PITR_SCALE:-3}
ENDPOINT=http://127.0.0.1:$S3_PORT

# markers PORT: the marker ids, comma-separated, in order.
markers() { q "$1" "select coalesce(string_agg(id::text, ',' order by id), '') from uw_marker"; }
batch() { # batch FIRST LAST TAG: one transaction per marker
    local i
    for ((i = $1; i <= $2; i++)); do q "$P" "insert into uw_marker values ($i, '$3')" >/dev/null; done
}

# ------------------------------------------------- 1. archive and backups --
t0=$(now)
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
s3_tool_init "$ENDPOINT" "$BUCKET"
note "s3rver on 127.0.0.1:$S3_PORT ($(elapsed "$t0") s)"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config repo1-type=s3 repo1-path=/$PREFIX repo1-s3-endpoint="$ENDPOINT" repo1-s3-uri-style=path \
    repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER \
    repo1-storage-timeout=20
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
first_seg=$(current_seg "$P")

t0=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "pgbench -i -s $SCALE: $(elapsed "$t0") s"
# pgbench in rounds of a second until the backup is over: it runs throughout.
touch "$T/bench.on"
(while [[ -e "$T/bench.on" ]]; do pgbench_run "$P" -n -c 2 -j 2 -T 1 || exit 1; done) >"$T/out/pgbench-full" 2>&1 &
bench_pid=$!
sleep 1
t0=$(now)
take_backup --type full --process-max 2
FULL=$BACKUP_ID
note "full backup $FULL into s3 during pgbench: $(elapsed "$t0") s"
kill -0 "$bench_pid" 2>/dev/null || { tail "$T/out/pgbench-full"; die "pgbench stopped before the backup ended"; }
rm -f "$T/bench.on"
wait "$bench_pid" || { tail "$T/out/pgbench-full"; die "pgbench during the full backup failed"; }
note "pgbench during the backup: $(grep -c '^tps' "$T/out/pgbench-full") rounds, $(awk '/^number of transactions actually processed/ { n += $NF } END { print n }' "$T/out/pgbench-full") transactions"
q "$P" "create table uw_marker(id int primary key, tag text, at timestamptz default clock_timestamp())" >/dev/null
pgbench_run "$P" -n -c 2 -j 2 -t 300 >"$T/out/pgbench-incr" 2>&1 ||
    { tail "$T/out/pgbench-incr"; die "pgbench before the incremental failed"; }
t0=$(now)
take_backup --type incr --process-max 2
INCR=$BACKUP_ID
[[ "$INCR" == "${FULL}_"*I ]] || die "incremental backup id $INCR does not refer to $FULL"
note "incremental backup $INCR into s3: $(elapsed "$t0") s"

# ------------------------------------------------------------- 2. markers --
batch 1 5 A
sleep 1.2
T_TIME=$(q "$P" "select now()")
sleep 1.2
batch 6 10 B
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 90
assert_eq 0 "$(q "$P" "select failed_count from pg_stat_archiver")" "archiver failed_count"
src_sum=$(table_checksum "$P")
note "instant '$T_TIME' between markers 5 and 6; archived up to $last_seg"

assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info --output json
python3 - "$LAST_OUT" "$FULL" "$INCR" <<'EOF' || die "ue-pitr info --output json: $(head -c 800 "$LAST_OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
ids = [b["id"] for b in d["repos"][0]["backups"]]
assert ids == sys.argv[2:4], ids
EOF
ok "ue-pitr info on s3 lists $FULL and $INCR"
# The source stops here: nothing (autovacuum...) adds to the archive behind
# the listings below; its pg_wal stays for the comparisons.
pg_stop src

# ---------------------------------------------- 3. restore to the instant --
t0=$(now)
restore_to r_time --set "$FULL" --target-time "$T_TIME" --target-action pause --start --port "$P_TIME" \
    --process-max 2
note "restore --set $FULL --target-time from s3, started: $(elapsed "$t0") s"
grep -q "^restore_command = '.*ue-wal-fetch.*--stanza=$STANZA .*%f %p'" "$T/r_time/postgresql.auto.conf" ||
    die "postgresql.auto.conf lacks ue-wal-fetch as restore_command: $(cat "$T/r_time/postgresql.auto.conf")"
n=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/r_time.log" || true)
((n >= 2)) || die "the time restore replayed $n segments from the archive"
assert_eq "$(seq -s, 1 5)" "$(markers "$P_TIME")" "target-time: exactly the markers before the instant ($n segments fetched from s3)"
assert_eq t "$(q "$P_TIME" "select pg_is_in_recovery()")" "target-time: paused in recovery"
pg_stop r_time immediate

# ------------------------------------- 4. newest backup, end of the archive --
t0=$(now)
restore_to r_end --start --port "$P_END" --process-max 2
note "restore of the newest backup to the end of the archive from s3, started: $(elapsed "$t0") s"
grep -q -F "$INCR" "$RESTORE_OUT" "$RESTORE_LOG" || die "the default restore did not use $INCR: $(cat "$RESTORE_OUT")"
wait_promoted "$P_END" 60
dst_sum=$(table_checksum "$P_END")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "the cluster restored from $INCR differs from the source"
fi
assert_eq "$(seq -s, 1 10)" "$(markers "$P_END")" "end of archive: all markers"
ok "restore of $INCR (incremental chain from s3) to the end: $(grep -c . <<<"$src_sum") tables equal the source's"
check_relations "$P_END"
ok "amcheck and pg_visibility find nothing in the restored cluster"
# Stopped: it archives timeline 2 into the stanza as well, which the listing
# below includes.
pg_stop r_end

# --------------------------------------------- 5. boto3 reads everything --
t0=$(now)
"${S3TOOL[@]}" dump "$PREFIX/$STANZA/" "$T/dump" >"$T/out/s3.dump" 2>"$T/out/s3.dump.err" ||
    { cat "$T/out/s3.dump.err" >&2; die "boto3 could not download every object intact"; }
nobj=$(grep -c . "$T/out/s3.dump")
nbytes=$(awk '{ s += $1 } END { print s }' "$T/out/s3.dump")
nwal=$(grep -c " $PREFIX/$STANZA/archive/" "$T/out/s3.dump" || true)
nfull=$(grep -c " $PREFIX/$STANZA/backup/$FULL/" "$T/out/s3.dump" || true)
nincr=$(grep -c " $PREFIX/$STANZA/backup/$INCR/" "$T/out/s3.dump" || true)
ok "boto3 downloaded all $nobj objects ($nbytes bytes) of the stanza with the listed sizes in $(elapsed "$t0") s: $nwal WAL, $nfull in $FULL, $nincr in $INCR"
for id in "$FULL" "$INCR"; do
    grep -q " $PREFIX/$STANZA/backup/$id/manifest$" "$T/out/s3.dump" || die "no manifest object for $id"
done
grep -q " $PREFIX/$STANZA/stanza.info$" "$T/out/s3.dump" || die "no stanza.info object"
grep -q "^\[backup\]" "$T/dump/$PREFIX/$STANZA/backup/$INCR/manifest" ||
    die "the manifest downloaded by boto3 has no [backup] section"
others=$(awk '{ print $2 }' "$T/out/s3.dump" |
    grep -v -E "^$PREFIX/$STANZA/(stanza\.info|archive/.*|backup/($FULL|$INCR)/.*)$" || true)
[[ -z "$others" ]] || die "unexpected objects in the stanza: $(head -5 <<<"$others")"
for seg in $(seg_range "$first_seg" "$last_seg"); do
    n=$(grep -c " $PREFIX/$STANZA/archive/${seg:0:16}/$seg-[0-9a-f]\{64\}\.zst$" "$T/out/s3.dump" || true)
    [[ "$n" == 1 ]] || die "segment $seg: $n objects"
done
ok "every segment $first_seg..$last_seg is in the bucket once"
t0=$(now)
check_wal_objects "$T/out/s3.dump" "$T/src/pg_wal" "$T/r_end/pg_wal"
((WAL_COMPARED >= $(seg_no "$last_seg") - $(seg_no "$first_seg") + 1)) ||
    die "only $WAL_COMPARED WAL objects could be compared with pg_wal"
(( WAL_OBJECTS == nwal )) || die "$nwal objects under archive/, $WAL_OBJECTS of them WAL"
ok "all $WAL_OBJECTS WAL objects fetched through ue-wal-fetch match their names' SHA-256, $WAL_COMPARED byte-identical to the clusters' pg_wal ($(elapsed "$t0") s)"

# --------------------------------------------------------- 6. corruption --
victim_seg=$(seg_add "$first_seg" 2)
key=$(awk -v p="$PREFIX/$STANZA/archive/${victim_seg:0:16}/$victim_seg-" 'index($2, p) == 1 { print $2 }' "$T/out/s3.dump")
[[ -n "$key" ]] || die "no object for $victim_seg"
cp "$T/dump/$key" "$T/out/victim.orig"
cp "$T/dump/$key" "$T/out/victim.bad"
flip_byte "$T/out/victim.bad" $(($(stat -c %s "$T/out/victim.bad") / 2))
"${S3TOOL[@]}" put "$key" "$T/out/victim.bad" || die "boto3 could not overwrite $key"
read -r size _ < <("${S3TOOL[@]}" head "$key")
assert_eq "$(stat -c %s "$T/out/victim.orig")" "$size" "size of the corrupted object (one byte flipped)"
pg_dir "$T/fetched" 700
assert_exit_pg 150 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim_seg" "$T/fetched/$victim_seg"
assert_file_absent "$T/fetched/$victim_seg" "a corrupt object must not be delivered"
[[ $(grep -c . "$LAST_ERR") -le 2 ]] || die "corrupt object: more than a line or two: $(cat "$LAST_ERR")"
ok "object with a flipped byte: ue-wal-fetch exits 150: $(grep -m1 ERROR "$LAST_ERR" | cut -c1-200)"
"${S3TOOL[@]}" put "$key" "$T/out/victim.orig" || die "boto3 could not restore $key"
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim_seg" "$T/fetched/$victim_seg"
cmp -s "$T/fetched/$victim_seg" "$T/src/pg_wal/$victim_seg" || die "$victim_seg fetched after the repair differs"
ok "object put back: fetched byte-identical again"

rm -f "/tmp/ue-wal-$STANZA."*backup.lock
