#!/usr/bin/env bash
# azure_archive: archive to and recover from an Azure Blob repository
# (Azurite on loopback, started by tests/objstore.sh).
#
#  1. Azurite on UW_PORT_BASE+10, container created by tests/azure_tool.py
#     (its own SharedKey signing, independent of ue-wal's).
#  2. Cluster "src" archives with ue-wal-push to repo1-type=azure (SharedKey,
#     path-style URLs, repo1-path as a prefix, 1 MiB blocks):
#     stanza-create, pg_basebackup -X none, pgbench, pg_switch_wal; every
#     segment is in the container exactly once, well named, and nothing else
#     is there (no leftovers of uploads).
#  3. A fetch with 2-entry List Blobs pages (continuation markers).
#  4. Wrong key: ue-wal-fetch and ue-wal-push exit 17 (refused) at once.
#     Missing segment: ue-wal-fetch exits 1.
#  5. SAS token (service SAS for the container, sp=racwdl): stanza-create,
#     push of a 16 MiB segment uncompressed with 1 MiB blocks (Put Block x16 +
#     Put Block List, checked in the service's committed block list), fetch
#     back byte-identical. A read-only SAS (sp=rl) fetches but cannot push
#     (exit 17).
#  6. Recovery of the base backup with restore_command = ue-wal-fetch from
#     Azure to the end of the archive; table contents equal the source's.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
AZ_PORT=$((P + 10))
SCALE=${UW_AZ_SCALE:-5}
CONTAINER=uw-archive
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
OBJSTORE=$T/objstore
AZTOOL=(python3 "$UW_SRC_DIR/tests/azure_tool.py")
export AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$KEY

# Stop Azurite before lib.sh's cleanup (which removes $T on success).
# shellcheck disable=SC2154 # _rc is set by the trap itself
trap '_rc=$?; bash "$UW_SRC_DIR/tests/objstore.sh" stop "$OBJSTORE" >/dev/null 2>&1; (exit $_rc); _uw_cleanup' EXIT

# ------------------------------------------------------------- 1. azurite --
t0=$(now)
UW_AZURE_PORT=$AZ_PORT bash "$UW_SRC_DIR/tests/objstore.sh" start "$OBJSTORE" azure 2>"$T/out/objstore.start" ||
    { cat "$T/out/objstore.start" >&2; die "could not start Azurite"; }
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"
note "Azurite on 127.0.0.1:$AZ_PORT, container $CONTAINER ($(elapsed "$t0") s)"

# az_cfg: the azure repository settings (without credentials).
az_cfg=(repo1-type=azure "repo1-azure-account=$ACCOUNT" "repo1-azure-container=$CONTAINER"
    repo1-azure-endpoint=http://127.0.0.1 "repo1-storage-port=$AZ_PORT"
    repo1-azure-uri-style=path repo1-azure-block-size=1MiB repo1-storage-timeout=10)

# az_list PREFIX: "size name" of every blob under PREFIX (azure_tool's view).
az_list() { "${AZTOOL[@]}" list "$CONTAINER" "$1"; }

# ----------------------------------------------------------- 2. archiving --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config "${az_cfg[@]}" repo1-path=/ue-wal "repo1-azure-key=$KEY"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
az_list ue-wal/ >"$T/out/az.list"
grep -q " ue-wal/$STANZA/stanza.info$" "$T/out/az.list" || die "stanza.info is not in the container"
ok "stanza-create wrote ue-wal/$STANZA/stanza.info into the container"
enable_archiving src
first_seg=$(current_seg "$P")

t0=$(now)
basebackup "$P" restore
note "pg_basebackup -X none took $(elapsed "$t0") s (it waits for the archive)"

t_load=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
pgbench_run "$P" -T 5 -c 2 -j 2 -n >"$T/out/pgbench-run" 2>&1 ||
    { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'before switch')" >/dev/null
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 120
archive_secs=$(elapsed "$t_load")
row=$(q "$P" "select failed_count, coalesce(last_archived_wal,''), coalesce(last_failed_wal,'') from pg_stat_archiver")
IFS='|' read -r failed_count last_archived last_failed <<<"$row"
[[ "$last_archived" =~ ^[0-9A-F]{24}$ && "$last_archived" > "$last_seg" ]] && last_seg=$last_archived
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
note "archived $nseg segments $first_seg..$last_seg to Azure in $archive_secs s of load+archiving"
assert_eq 0 "$failed_count" "archiver failed_count (last failed: '$last_failed')"

az_list ue-wal/ >"$T/out/az.list"
for seg in $(seg_range "$first_seg" "$last_seg"); do
    n=$(grep -c " ue-wal/$STANZA/archive/${seg:0:16}/$seg-[0-9a-f]\{64\}\.zst$" "$T/out/az.list" || true)
    [[ "$n" == 1 ]] || die "segment $seg: expected 1 blob in the container, found $n"
done
ok "all $nseg segments are in the container, one blob each, named <seg>-<sha256>.zst"
others=$(grep -v -E " ue-wal/$STANZA/(stanza\.info|archive/[0-9A-F]{16}/[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?-[0-9a-f]{64}\.zst)$" "$T/out/az.list" || true)
[[ -z "$others" ]] || die "unexpected blobs in the container: $(head -5 <<<"$others")"
ok "no other blobs in the container ($(wc -l <"$T/out/az.list") in all)"
# With 1 MiB blocks, compressed segments above 1 MiB were uploaded in blocks.
big=$(awk -v m=$((1024 * 1024)) '$1 > m && $2 ~ /archive\/[0-9A-F]+\// { print $2; exit }' "$T/out/az.list")
if [[ -n "$big" ]]; then
    nb=$("${AZTOOL[@]}" blocks "$CONTAINER" "$big")
    ((nb >= 2)) || die "$big is larger than the block size but has $nb committed blocks"
    ok "$(basename "$big") ($(awk -v b="$big" '$2 == b { print $1 }' "$T/out/az.list") bytes) was uploaded as $nb blocks"
fi

# ------------------------------------------------ 3. list continuation ----
pg_dir "$T/fetched" 700
mid_seg=$(seg_add "$first_seg" $((nseg / 2)))
assert_exit_pg 0 env UW_TEST_AZURE_LIST_MAX=2 "$FETCH" --config "$CONF" --stanza "$STANZA" "$mid_seg" "$T/fetched/$mid_seg"
cmp -s "$T/fetched/$mid_seg" "$T/src/pg_wal/$mid_seg" || die "fetched $mid_seg differs from pg_wal/$mid_seg"
ok "fetch through 2-entry List Blobs pages (continuation markers) delivers $mid_seg byte-identical"

# ------------------------------------------- 4. wrong key, missing segment --
BAD=$T/bad.conf
write_config -f "$BAD" "${az_cfg[@]}" repo1-path=/ue-wal \
    "repo1-azure-key=$(printf '%s' "$KEY" | tr 'A-Za-z' 'B-ZAb-za')"
t0=$(now)
assert_exit_pg 17 "$FETCH" --config "$BAD" --stanza "$STANZA" "$mid_seg" "$T/fetched/bad"
secs=$(elapsed "$t0")
# A retry logs "retrying"; no bound on the time (a loaded machine makes any
# bound a guess), it is printed.
! grep -q -i retrying "$LAST_ERR" || die "wrong key: retried ($secs s): $(cat "$LAST_ERR")"
grep -q "HTTP 403" "$LAST_ERR" || die "wrong key: no HTTP 403 in the message: $(cat "$LAST_ERR")"
grep -q -- "$KEY" "$LAST_ERR" && die "the account key appears in the error message"
assert_file_absent "$T/fetched/bad"
ok "wrong key: ue-wal-fetch exits 17 after $secs s: $(head -1 "$LAST_ERR")"
seg_file=$(wal_segments "$T/src/pg_wal" | head -1)
t0=$(now)
assert_exit_pg 17 "$PUSH" --config "$BAD" --stanza "$STANZA" "$T/src/pg_wal/$seg_file"
ok "wrong key: ue-wal-push exits 17 after $(elapsed "$t0") s"
missing=$(seg_add "$last_seg" 50)
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" "$missing" "$T/fetched/$missing"
assert_file_absent "$T/fetched/$missing"
ok "missing segment $missing: ue-wal-fetch exits 1"

# ------------------------------------------------ 5. SAS, large objects ----
SAS=$("${AZTOOL[@]}" sas "$CONTAINER" racwdl)
SASCONF=$T/sas.conf
write_config -f "$SASCONF" "${az_cfg[@]}" repo1-path=/sas compress-type=none "repo1-azure-sas=$SAS"
assert_exit_pg 0 "$PITR" --config "$SASCONF" --stanza "$STANZA" stanza-create
ok "SAS token: stanza-create"
# An archived segment still in pg_wal (wal_keep_size), uncompressed: 16 MiB
# in 1 MiB blocks.
big_seg=""
for f in $(wal_segments "$T/src/pg_wal"); do
    [[ -e "$T/src/pg_wal/archive_status/$f.done" ]] && { big_seg=$f; break; }
done
[[ -n "$big_seg" ]] || die "no archived segment left in pg_wal"
pg_dir "$T/walcopy" 700
cp "$T/src/pg_wal/$big_seg" "$T/walcopy/$big_seg"
chown -R "$PGUSER_OS:" "$T/walcopy" 2>/dev/null || true
t0=$(now)
assert_exit_pg 0 "$PUSH" --config "$SASCONF" --stanza "$STANZA" "$T/walcopy/$big_seg"
push_secs=$(elapsed "$t0")
blob=$(az_list sas/ | awk -v s="$big_seg" '$2 ~ "/" s "-" { print $2 }')
[[ -n "$blob" ]] || die "SAS push of $big_seg left no blob under sas/"
size=$(az_list sas/ | awk -v b="$blob" '$2 == b { print $1 }')
((size > 16 * 1024 * 1024)) || die "$blob is $size bytes, expected an uncompressed 16 MiB segment"
nb=$("${AZTOOL[@]}" blocks "$CONTAINER" "$blob")
assert_eq $(((size + 1048575) / 1048576)) "$nb" "committed blocks of the $size-byte object with 1 MiB blocks"
read -r plen pmd5 < <("${AZTOOL[@]}" props "$CONTAINER" "$blob")
assert_eq "$size" "$plen" "Content-Length of $(basename "$blob")"
[[ -n "$pmd5" ]] || die "Put Block List did not set the blob's Content-MD5"
"${AZTOOL[@]}" get "$CONTAINER" "$blob" "$T/out/big.blob"
want_md5=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.md5(open(sys.argv[1], "rb").read()).digest()).decode())' "$T/out/big.blob")
assert_eq "$want_md5" "$pmd5" "Content-MD5 stored with the block list matches the blob's content"
t0=$(now)
assert_exit_pg 0 "$FETCH" --config "$SASCONF" --stanza "$STANZA" "$big_seg" "$T/fetched/$big_seg"
cmp -s "$T/walcopy/$big_seg" "$T/fetched/$big_seg" || die "fetched $big_seg differs from the pushed segment"
ok "SAS: 16 MiB segment pushed in $push_secs s as $nb blocks, fetched back byte-identical in $(elapsed "$t0") s"

ROSAS=$("${AZTOOL[@]}" sas "$CONTAINER" rl)
ROCONF=$T/ro.conf
write_config -f "$ROCONF" "${az_cfg[@]}" repo1-path=/sas compress-type=none "repo1-azure-sas=$ROSAS"
rm -f "$T/fetched/$big_seg"
assert_exit_pg 0 "$FETCH" --config "$ROCONF" --stanza "$STANZA" "$big_seg" "$T/fetched/$big_seg"
other=$(wal_segments "$T/src/pg_wal" | grep -v "$big_seg" | head -1)
cp "$T/src/pg_wal/$other" "$T/walcopy/$other"
chown "$PGUSER_OS:" "$T/walcopy/$other" 2>/dev/null || true
assert_exit_pg 17 "$PUSH" --config "$ROCONF" --stanza "$STANZA" "$T/walcopy/$other"
ok "read-only SAS (sp=rl): fetch works, push is refused with 17: $(grep -o 'HTTP [0-9]* [A-Za-z]*' "$LAST_ERR" | head -1)"
[[ -z $(az_list sas/ | awk -v s="$other" '$2 ~ "/" s "-"') ]] || die "refused push left a blob for $other"

# ------------------------------------------------------------ 6. restore ---
src_sum=$(table_checksum "$P")
setup_restore restore "$P_RESTORE"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
restore_secs=$(elapsed "$t0")
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/restore.log" || true)
note "recovery: $restored segments restored from Azure, promoted after $restore_secs s"
((restored >= nseg - 1)) || die "recovery restored only $restored segments, expected about $nseg"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
ok "restored cluster matches the source ($(wc -l <<<"$src_sum") tables)"
[[ $(q "$P_RESTORE" "select note from uw_marker where id = 1") == "before switch" ]] ||
    die "marker row written just before the last switch is missing after recovery"
note "summary: segments=$nseg archive=${archive_secs}s big-push=${push_secs}s recovery=${restore_secs}s"
