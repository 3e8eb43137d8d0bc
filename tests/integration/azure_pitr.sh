#!/usr/bin/env bash
# azure_pitr: base backups and point-in-time recovery through an Azure Blob
# repository (repo1-type=azure on Azurite; tests/objstore.sh), with
# tests/azure_tool.py (SharedKey requests signed by its own code, not
# ue-wal's) as the reference client reading everything ue-wal wrote.
#
#  1. Azurite on UW_PORT_BASE+10, container made by azure_tool.py; cluster
#     "src" archives with ue-wal-push into it (SharedKey, path-style URLs,
#     prefix /pitr, 1 MiB blocks); pgbench -i -s 3; a full ue-basebackup
#     taken while pgbench runs; more pgbench; an incremental.
#  2. marker rows, one transaction each: batch A (1-5), the instant T
#     (select now(), a pause of over a second on each side), batch B (6-10);
#     pg_switch_wal, archived.
#  3. ue-pitr restore --set <full> --target-time T --target-action pause
#     --start --port: WAL comes from Azure through the restore_command that
#     ue-pitr wrote (ue-wal-fetch); the cluster holds exactly batch A.
#  4. ue-pitr restore of the newest backup (the incremental, its chain
#     assembled from Azure) to the end of the archive, --start, promoted:
#     every table's checksum equals the source's.
#  5. azure_tool's signing lists the stanza and downloads EVERY blob: sizes
#     equal the listing, Content-MD5 (where the listing has one) matches;
#     both manifests are there; every WAL blob fetched through ue-wal-fetch
#     has the SHA-256 of its name and is byte-identical to the source's
#     pg_wal file.
#  6. a WAL blob replaced (azure_tool put) by a copy with one byte flipped:
#     ue-wal-fetch exits 150 and leaves no file; put back, it fetches again.
#  7. clear refusals, one ERROR line, exit 17 at once, no key in the
#     output: a wrong key; a container that does not exist; TLS verification
#     failure (Azurite over HTTPS with a self-signed certificate, on
#     UW_PORT_BASE+11), which works with repo1-storage-ca-file.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_TIME=$((P + 1))
P_END=$((P + 2))
AZ_PORT=$((P + 10))
AZ_TLS_PORT=$((P + 11))
STANZA=azp$UW_PORT_BASE
CONTAINER=uw-pitr
PREFIX=pitr
SCALE=${UW_PITR_SCALE:-3}
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZTOOL=(python3 "$UW_SRC_DIR/tests/azure_tool.py")
export AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$KEY

markers() { q "$1" "select coalesce(string_agg(id::text, ',' order by id), '') from uw_marker"; }
batch() {
    local i
    for ((i = $1; i <= $2; i++)); do q "$P" "insert into uw_marker values ($i, '$3')" >/dev/null; done
}
# az_cfg: the repository settings but the key.
az_cfg=(repo1-type=azure "repo1-azure-account=$ACCOUNT" "repo1-azure-container=$CONTAINER"
    repo1-azure-endpoint=http://127.0.0.1 "repo1-storage-port=$AZ_PORT" repo1-azure-uri-style=path
    "repo1-path=/$PREFIX" repo1-azure-block-size=1MiB repo1-storage-timeout=20)

# ------------------------------------------------- 1. archive and backups --
t0=$(now)
objstore_start "$T/objstore" azure UW_AZURE_PORT="$AZ_PORT"
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"
note "Azurite on 127.0.0.1:$AZ_PORT, container $CONTAINER ($(elapsed "$t0") s)"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config "${az_cfg[@]}" "repo1-azure-key=$KEY"
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
note "full backup $FULL into Azure during pgbench: $(elapsed "$t0") s"
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
note "incremental backup $INCR into Azure: $(elapsed "$t0") s"

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
ok "ue-pitr info on Azure lists $FULL and $INCR"
# The source stops here: nothing (autovacuum...) adds to the archive behind
# the listings below; its pg_wal stays for the comparisons.
pg_stop src

# ---------------------------------------------- 3. restore to the instant --
t0=$(now)
restore_to r_time --set "$FULL" --target-time "$T_TIME" --target-action pause --start --port "$P_TIME" \
    --process-max 2
note "restore --set $FULL --target-time from Azure, started: $(elapsed "$t0") s"
grep -q "^restore_command = '.*ue-wal-fetch.*--stanza=$STANZA .*%f %p'" "$T/r_time/postgresql.auto.conf" ||
    die "postgresql.auto.conf lacks ue-wal-fetch as restore_command: $(cat "$T/r_time/postgresql.auto.conf")"
n=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/r_time.log" || true)
((n >= 2)) || die "the time restore replayed $n segments from the archive"
assert_eq "$(seq -s, 1 5)" "$(markers "$P_TIME")" "target-time: exactly the markers before the instant ($n segments fetched from Azure)"
assert_eq t "$(q "$P_TIME" "select pg_is_in_recovery()")" "target-time: paused in recovery"
pg_stop r_time immediate

# ------------------------------------- 4. newest backup, end of the archive --
t0=$(now)
restore_to r_end --start --port "$P_END" --process-max 2
note "restore of the newest backup to the end of the archive from Azure, started: $(elapsed "$t0") s"
grep -q -F "$INCR" "$RESTORE_OUT" "$RESTORE_LOG" || die "the default restore did not use $INCR: $(cat "$RESTORE_OUT")"
wait_promoted "$P_END" 60
dst_sum=$(table_checksum "$P_END")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "the cluster restored from $INCR differs from the source"
fi
assert_eq "$(seq -s, 1 10)" "$(markers "$P_END")" "end of archive: all markers"
ok "restore of $INCR (incremental chain from Azure) to the end: $(grep -c . <<<"$src_sum") tables equal the source's"
check_relations "$P_END"
ok "amcheck and pg_visibility find nothing in the restored cluster"
pg_stop r_end

# ------------------------------------ 5. azure_tool's signing reads everything --
t0=$(now)
az_dump "$CONTAINER" "$PREFIX/$STANZA/" "$T/dump" >"$T/out/az.dump" 2>"$T/out/az.dump.err" ||
    { cat "$T/out/az.dump.err" >&2; die "azure_tool could not download every blob intact"; }
nobj=$(grep -c . "$T/out/az.dump")
nbytes=$(awk '{ s += $1 } END { print s }' "$T/out/az.dump")
nwal=$(grep -c " $PREFIX/$STANZA/archive/" "$T/out/az.dump" || true)
nfull=$(grep -c " $PREFIX/$STANZA/backup/$FULL/" "$T/out/az.dump" || true)
nincr=$(grep -c " $PREFIX/$STANZA/backup/$INCR/" "$T/out/az.dump" || true)
ok "azure_tool listed and downloaded all $nobj blobs ($nbytes bytes) of the stanza with the listed sizes in $(elapsed "$t0") s: $nwal WAL, $nfull in $FULL, $nincr in $INCR"
# The plain listing command agrees with the dump's.
"${AZTOOL[@]}" list "$CONTAINER" "$PREFIX/$STANZA/" >"$T/out/az.list"
diff <(sort "$T/out/az.list") <(sort "$T/out/az.dump") >&2 || die "azure_tool list and dump disagree"
for id in "$FULL" "$INCR"; do
    grep -q " $PREFIX/$STANZA/backup/$id/manifest$" "$T/out/az.dump" || die "no manifest blob for $id"
done
grep -q " $PREFIX/$STANZA/stanza.info$" "$T/out/az.dump" || die "no stanza.info blob"
grep -q "^\[backup\]" "$T/dump/$PREFIX/$STANZA/backup/$INCR/manifest" ||
    die "the manifest downloaded by azure_tool has no [backup] section"
others=$(awk '{ print $2 }' "$T/out/az.dump" |
    grep -v -E "^$PREFIX/$STANZA/(stanza\.info|archive/.*|backup/($FULL|$INCR)/.*)$" || true)
[[ -z "$others" ]] || die "unexpected blobs in the stanza: $(head -5 <<<"$others")"
for seg in $(seg_range "$first_seg" "$last_seg"); do
    n=$(grep -c " $PREFIX/$STANZA/archive/${seg:0:16}/$seg-[0-9a-f]\{64\}\.zst$" "$T/out/az.dump" || true)
    [[ "$n" == 1 ]] || die "segment $seg: $n blobs"
done
ok "every segment $first_seg..$last_seg is in the container once"
t0=$(now)
check_wal_objects "$T/out/az.dump" "$T/src/pg_wal" "$T/r_end/pg_wal"
((WAL_COMPARED >= $(seg_no "$last_seg") - $(seg_no "$first_seg") + 1)) ||
    die "only $WAL_COMPARED WAL blobs could be compared with pg_wal"
(( WAL_OBJECTS == nwal )) || die "$nwal objects under archive/, $WAL_OBJECTS of them WAL"
ok "all $WAL_OBJECTS WAL blobs fetched through ue-wal-fetch match their names' SHA-256, $WAL_COMPARED byte-identical to the clusters' pg_wal ($(elapsed "$t0") s)"

# --------------------------------------------------------- 6. corruption --
victim_seg=$(seg_add "$first_seg" 2)
blob=$(awk -v p="$PREFIX/$STANZA/archive/${victim_seg:0:16}/$victim_seg-" 'index($2, p) == 1 { print $2 }' "$T/out/az.dump")
[[ -n "$blob" ]] || die "no blob for $victim_seg"
cp "$T/dump/$blob" "$T/out/victim.orig"
cp "$T/dump/$blob" "$T/out/victim.bad"
flip_byte "$T/out/victim.bad" $(($(stat -c %s "$T/out/victim.bad") / 2))
"${AZTOOL[@]}" put "$CONTAINER" "$blob" "$T/out/victim.bad" || die "azure_tool could not replace $blob"
read -r size _ < <("${AZTOOL[@]}" props "$CONTAINER" "$blob")
assert_eq "$(stat -c %s "$T/out/victim.orig")" "$size" "size of the corrupted blob (one byte flipped)"
pg_dir "$T/fetched" 700
assert_exit_pg 150 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim_seg" "$T/fetched/$victim_seg"
assert_file_absent "$T/fetched/$victim_seg" "a corrupt blob must not be delivered"
[[ $(grep -c . "$LAST_ERR") -le 2 ]] || die "corrupt blob: more than a line or two: $(cat "$LAST_ERR")"
ok "blob with a flipped byte: ue-wal-fetch exits 150: $(grep -m1 ERROR "$LAST_ERR" | cut -c1-200)"
"${AZTOOL[@]}" put "$CONTAINER" "$blob" "$T/out/victim.orig" || die "azure_tool could not restore $blob"
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim_seg" "$T/fetched/$victim_seg"
cmp -s "$T/fetched/$victim_seg" "$T/src/pg_wal/$victim_seg" || die "$victim_seg fetched after the repair differs"
ok "blob put back: fetched byte-identical again"

# ------------------------------------------------------ 7. clear refusals --
# refused WHAT PATTERN CMD...: exit 17 at once, one ERROR line matching
# PATTERN, nothing else but warnings, no key in the output.
refused() {
    local what=$1 pattern=$2 t1 secs
    shift 2
    t1=$(now)
    assert_exit_pg 17 "$@"
    secs=$(elapsed "$t1")
    [[ $(grep -c ERROR "$LAST_ERR") == 1 ]] || die "$what: not one ERROR line: $(cat "$LAST_ERR")"
    ! grep -q -v -e ERROR -e WARN "$LAST_ERR" || die "$what: more than the error: $(cat "$LAST_ERR")"
    grep -q -E -- "$pattern" "$LAST_ERR" || die "$what: message does not match /$pattern/: $(cat "$LAST_ERR")"
    ! grep -q -F -e "$KEY" -e "${KEY:0:20}" "$LAST_ERR" "$LAST_OUT" || die "$what: the account key is in the output"
    # A retry logs "retrying"; the time is printed, not bounded.
    ! grep -q -i retrying "$LAST_ERR" || die "$what: retried ($secs s)"
    ok "$what: exit 17 in $secs s: $(grep ERROR "$LAST_ERR" | cut -c1-200)"
}
seg=$(seg_add "$first_seg" 1)
pg_start src # for stanza-create over https
WRONGKEY=$(printf '%s' "$KEY" | tr 'A-Za-z' 'B-ZAb-za')
BADKEY=$T/badkey.conf
write_config -f "$BADKEY" "${az_cfg[@]}" "repo1-azure-key=$WRONGKEY"
refused "wrong key (fetch)" "HTTP 403" "$FETCH" --config "$BADKEY" --stanza "$STANZA" "$seg" "$T/fetched/x"
! grep -q -F -e "$WRONGKEY" -e "${WRONGKEY:0:20}" "$LAST_ERR" || die "wrong key: the key is in the output"
assert_file_absent "$T/fetched/x"
refused "wrong key (push)" "HTTP 403" "$PUSH" --config "$BADKEY" --stanza "$STANZA" "$T/src/pg_wal/$seg"
! grep -q -F -e "$WRONGKEY" -e "${WRONGKEY:0:20}" "$LAST_ERR" || die "wrong key: the key is in the output"
NOCONT=$T/nocontainer.conf
write_config -f "$NOCONT" "${az_cfg[@]}" "repo1-azure-key=$KEY" repo1-azure-container=no-such-container
refused "missing container (fetch)" "no-such-container" \
    "$FETCH" --config "$NOCONT" --stanza "$STANZA" "$seg" "$T/fetched/x"
assert_file_absent "$T/fetched/x"
refused "missing container (push)" "no-such-container" \
    "$PUSH" --config "$NOCONT" --stanza "$STANZA" "$T/src/pg_wal/$seg"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
objstore_start "$T/objstore-tls" azure UW_AZURE_PORT="$AZ_TLS_PORT" UW_AZURE_TLS_CERT="$T/tls.crt" \
    UW_AZURE_TLS_KEY="$T/tls.key"
SSL_CERT_FILE=$T/tls.crt AZ_ENDPOINT=https://127.0.0.1:$AZ_TLS_PORT "${AZTOOL[@]}" create-container "$CONTAINER" ||
    die "could not create the container over https"
TLSCONF=$T/tls.conf
write_config -f "$TLSCONF" "${az_cfg[@]}" "repo1-azure-key=$KEY" repo1-azure-endpoint=https://127.0.0.1 \
    repo1-storage-port="$AZ_TLS_PORT" repo1-storage-ca-file="$T/tls.crt"
assert_exit_pg 0 "$PITR" --config "$TLSCONF" --stanza "$STANZA" stanza-create
assert_exit_pg 0 "$PUSH" --config "$TLSCONF" --stanza "$STANZA" "$T/src/pg_wal/$seg"
assert_exit_pg 0 "$FETCH" --config "$TLSCONF" --stanza "$STANZA" "$seg" "$T/fetched/tls"
cmp -s "$T/fetched/tls" "$T/src/pg_wal/$seg" || die "segment fetched over https differs"
ok "Azure over https with repo1-storage-ca-file: stanza-create, push, fetch"
NOCA=$T/noca.conf
write_config -f "$NOCA" "${az_cfg[@]}" "repo1-azure-key=$KEY" repo1-azure-endpoint=https://127.0.0.1 \
    repo1-storage-port="$AZ_TLS_PORT"
refused "TLS verification failure (fetch)" "[Cc]ertificate" \
    "$FETCH" --config "$NOCA" --stanza "$STANZA" "$seg" "$T/fetched/x"
assert_file_absent "$T/fetched/x"
refused "TLS verification failure (push)" "[Cc]ertificate" \
    "$PUSH" --config "$NOCA" --stanza "$STANZA" "$T/src/pg_wal/$seg"

rm -f "/tmp/ue-wal-$STANZA."*backup.lock
