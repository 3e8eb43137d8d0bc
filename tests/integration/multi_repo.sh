#!/usr/bin/env bash
# multi_repo: two repositories at once, the 3-2-1 case: repo1 posix (local),
# repo2 Azure Blob (Azurite on loopback).
#
#  1. stanza-create writes both; every WAL file PostgreSQL archives is in both
#     repositories (ue-wal-push exits 0 only when both hold it).
#  2. Azurite stopped: ue-wal-push fails with an exit code in 1..125 (so the
#     archiver keeps the WAL: .ready stays, failed_count grows, nothing is
#     lost); Azurite restarted on the same data: archiving catches up by
#     itself, and the segments of the outage are in both repositories.
#  3. ue-wal-fetch falls back to repo2 when the object is missing from repo1,
#     and when repo1's copy is corrupt; --repo 2 / --repo 1 select one
#     repository (a miss there is exit 1 even if the other has it).
#  4. Recovery of a base backup while repo1 lacks some segments and holds a
#     corrupt one: every one of them comes from repo2, and the restored
#     cluster equals the source.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
AZ_PORT=$((P + 11))
CONTAINER=uw-multi
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
OBJSTORE=$T/objstore
AZTOOL=(python3 "$UW_SRC_DIR/tests/azure_tool.py")
export AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$KEY

# shellcheck disable=SC2154 # _rc is set by the trap itself
trap '_rc=$?; bash "$UW_SRC_DIR/tests/objstore.sh" stop "$OBJSTORE" >/dev/null 2>&1; (exit $_rc); _uw_cleanup' EXIT

az_start() {
    UW_AZURE_PORT=$AZ_PORT bash "$UW_SRC_DIR/tests/objstore.sh" start "$OBJSTORE" azure 2>"$T/out/objstore.start" ||
        { cat "$T/out/objstore.start" >&2; die "could not start Azurite"; }
}
az_stop() {
    bash "$UW_SRC_DIR/tests/objstore.sh" stop "$OBJSTORE" 2>"$T/out/objstore.stop" ||
        { cat "$T/out/objstore.stop" >&2; die "could not stop Azurite"; }
}
# az_has SEG: number of blobs in repo2 for SEG.
az_count() {
    "${AZTOOL[@]}" list "$CONTAINER" "uw/$STANZA/archive/" >"$T/out/az.list"
    grep -c " uw/$STANZA/archive/${1:0:16}/$1-" "$T/out/az.list" || true
}

az_start
"${AZTOOL[@]}" create-container "$CONTAINER" || die "could not create container $CONTAINER"
note "Azurite on 127.0.0.1:$AZ_PORT"

# ------------------------------------------------------- 1. both repos -----
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config repo2-type=azure repo2-azure-account=$ACCOUNT repo2-azure-container=$CONTAINER \
    repo2-azure-endpoint=http://127.0.0.1:$AZ_PORT repo2-azure-uri-style=path repo2-path=/uw \
    "repo2-azure-key=$KEY" repo2-storage-timeout=5
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
[[ -f "$REPO/$STANZA/stanza.info" ]] || die "stanza.info missing in repo1"
"${AZTOOL[@]}" props "$CONTAINER" "uw/$STANZA/stanza.info" >/dev/null || die "stanza.info missing in repo2"
ok "stanza-create wrote both repositories"
enable_archiving src
first_seg=$(current_seg "$P")
basebackup "$P" restore
pgbench_run "$P" -i -s 3 -q >"$T/out/pgbench-init" 2>&1 || die "pgbench -i failed"
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'first')" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 90
last_seg=$(q "$P" "select last_archived_wal from pg_stat_archiver")
[[ "$last_seg" =~ ^[0-9A-F]{24}$ ]] || last_seg=$seg
nseg=0
for s in $(seg_range "$first_seg" "$last_seg"); do
    [[ $(object_count "$s") == 1 ]] || die "segment $s is not in repo1 (posix)"
    [[ $(az_count "$s") == 1 ]] || die "segment $s is not in repo2 (azure)"
    nseg=$((nseg + 1))
done
ok "$nseg segments $first_seg..$last_seg archived into both repositories"

# ------------------------------------------------ 2. repo2 down, catch-up --
az_stop
failed0=$(q "$P" "select failed_count from pg_stat_archiver")
q "$P" "insert into uw_marker values (2, 'during outage')" >/dev/null
out_seg=$(switch_wal "$P")
note "Azurite stopped; switched to $out_seg"
deadline=$((SECONDS + 90))
while (($(q "$P" "select failed_count from pg_stat_archiver") <= failed0)); do
    ((SECONDS < deadline)) || die "archive_command did not fail while repo2 was down"
    sleep 0.5
done
[[ -e "$T/src/pg_wal/archive_status/$out_seg.ready" ]] ||
    die "$out_seg is not kept as .ready while repo2 is down"
ok "archive_command fails while repo2 is down; PostgreSQL keeps $out_seg (.ready)"
# The exit code PostgreSQL saw: retried storage failure, in 1..125.
t0=$(now)
run as_pg "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/src/pg_wal/$out_seg"
((LAST_RC >= 1 && LAST_RC <= 125)) || die "ue-wal-push exited $LAST_RC with repo2 down (want 1..125)"
ok "ue-wal-push with repo2 down: exit $LAST_RC after $(elapsed "$t0") s: $(grep ERROR "$LAST_ERR" | head -1)"
az_start
t0=$(now)
# The archiver retries on its own after a back-off of up to 60 s; new WAL
# wakes it at once.
q "$P" "insert into uw_marker values (3, 'after outage')" >/dev/null
next_seg=$(switch_wal "$P")
wait_archived "$P" "$next_seg" 120
row=$(q "$P" "select failed_count, last_archived_wal from pg_stat_archiver")
note "archiving caught up $(elapsed "$t0") s after Azurite came back ($row)"
[[ $(object_count "$out_seg") == 1 ]] || die "$out_seg is not in repo1 after the catch-up"
[[ $(az_count "$out_seg") == 1 ]] || die "$out_seg is not in repo2 after the catch-up"
[[ $(az_count "$next_seg") == 1 ]] || die "$next_seg is not in repo2 after the catch-up"
ok "after the outage $out_seg and $next_seg are in both repositories"
last_seg=$next_seg

# ---------------------------------------------- 3. fetch fallback, --repo --
pg_dir "$T/fetched" 700
fetch_ok() { # fetch_ok SEG [args...]: fetch into $T/fetched and compare with pg_wal
    local s=$1
    shift
    rm -f "$T/fetched/$s"
    assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$@" "$s" "$T/fetched/$s"
    cmp -s "$T/fetched/$s" "$T/src/pg_wal/$s" || die "fetched $s differs from pg_wal/$s"
}
mapfile -t segs < <(seg_range "$first_seg" "$last_seg")
((${#segs[@]} >= 6)) || die "only ${#segs[@]} segments archived; the test needs 6"
gone=${segs[1]}
bad=${segs[2]}
only2=${segs[3]}
# Missing in repo1.
rm -f "$(objects "$gone")"
fetch_ok "$gone"
grep -q "from repo2" "$LAST_ERR" || die "fetch of $gone did not say it came from repo2: $(cat "$LAST_ERR")"
ok "$gone missing from repo1: fetched from repo2"
# Corrupt in repo1 (a byte in the middle of the compressed payload).
o=$(objects "$bad")
flip_byte "$o" $(($(stat -c %s "$o") / 2))
fetch_ok "$bad"
grep -q "from repo2" "$LAST_ERR" || die "fetch of corrupt $bad did not fall back to repo2: $(cat "$LAST_ERR")"
grep -q -i "WARN" "$LAST_ERR" || die "fetch of corrupt $bad did not warn about repo1"
ok "$bad corrupt in repo1: warned and fetched from repo2 ($(grep WARN "$LAST_ERR" | head -1 | cut -c1-160))"
# --repo selects one.
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" --repo 1 "$gone" "$T/fetched/x"
assert_file_absent "$T/fetched/x"
fetch_ok "$gone" --repo 2
ok "--repo 1 misses $gone (exit 1), --repo 2 delivers it"
"${AZTOOL[@]}" delete "$CONTAINER" "$(awk -v s="$only2" '$2 ~ "/" s "-" { print $2 }' "$T/out/az.list")"
[[ $(az_count "$only2") == 0 ]] || die "could not delete $only2 from repo2"
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" --repo 2 "$only2" "$T/fetched/x"
fetch_ok "$only2" --repo 1
fetch_ok "$only2"
grep -q "from repo1" "$LAST_ERR" || die "fetch of $only2 did not come from repo1"
ok "--repo 2 misses $only2 (exit 1), --repo 1 and both deliver it"
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" "$(seg_add "$last_seg" 40)" "$T/fetched/x"
ok "a segment in neither repository: exit 1"

# ------------------------------------------- 4. recovery through repo2 ----
# More holes in repo1: every other segment after the first three.
holes=0
for ((i = 4; i < ${#segs[@]}; i += 2)); do
    objects "${segs[$i]}" | xargs -r rm -f
    holes=$((holes + 1))
done
src_sum=$(table_checksum "$P")
setup_restore restore "$P_RESTORE"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
n2=$(grep -c "from repo2" "$T/restore.log" || true)
note "recovery promoted after $(elapsed "$t0") s; $n2 files came from repo2"
((n2 >= holes + 2)) || die "expected at least $((holes + 2)) files fetched from repo2, got $n2"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
[[ $(q "$P_RESTORE" "select count(*) from uw_marker") == 3 ]] ||
    die "marker rows (including the one written during the outage) missing after recovery"
ok "restored cluster matches the source, with $((holes + 2)) segments only (intact) in repo2"
