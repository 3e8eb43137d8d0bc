#!/usr/bin/env bash
# archive_recover: the full archive -> restore round trip on PostgreSQL 15.
#
#  1. cluster "src" with archive_mode=on; ue-pitr stanza-create; then
#     archive_command = ue-wal-push.
#  2. pg_basebackup -X none (needs the archive to complete) BEFORE any load,
#     so that recovery must replay everything that follows from the archive.
#  3. pgbench -i -s 10, pgbench -t 1000 -c 2, pg_switch_wal; wait until
#     archived.  Every segment from the first one after stanza-create to
#     pg_stat_archiver.last_archived_wal must be in the repository exactly
#     once, with the object name the layout promises, and failed_count = 0.
#  4. Push throughput: 20 of those segments pushed again by hand into a
#     second repository (segs/s, MB/s), fetched back (segs/s) and compared
#     byte for byte with the originals.
#  5. Restore: the base backup with restore_command = ue-wal-fetch, recovery
#     to the end of the archive, promotion; table contents of source and
#     restored cluster must be identical.
#  6. After promotion the restored cluster archives into the same stanza
#     (timeline 2: the 00000002.history file, the .partial segment of
#     timeline 1 and new segments) without a single failure.
#
# Variant knobs (archive_recover_encrypted.sh sets them):
#   UW_AR_COMPRESS (zstd)  UW_AR_CIPHER (none)  UW_AR_SCALE (10)
source "$(dirname "$0")/../lib.sh"

COMPRESS=${UW_AR_COMPRESS:-zstd}
CIPHER=${UW_AR_CIPHER:-none}
SCALE=${UW_AR_SCALE:-10}
PASS="ue-wal test passphrase $$ $RANDOM"
P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
NBENCH=20

cfg=(compress-type="$COMPRESS")
[[ "$CIPHER" != none ]] && cfg+=(cipher-type="$CIPHER" cipher-pass="$PASS")
note "variant: compress-type=$COMPRESS cipher-type=$CIPHER, pgbench scale $SCALE, sanitized build: $UW_SANITIZED"

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
# archive_command stays empty until the stanza exists: WAL is kept (.ready)
# meanwhile.  wal_keep_size keeps the archived segments around for step 4.
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config "${cfg[@]}"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
ok "stanza-create"
enable_archiving src
first_seg=$(current_seg "$P")
note "first segment to be archived: $first_seg"

# ------------------------------------------------------- 2. base backup ----
t0=$(now)
basebackup "$P" restore
note "pg_basebackup -X none took $(elapsed "$t0") s (it waits for the archive)"

# ----------------------------------------------------------------- 3. load --
t_load=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "pgbench -i -s $SCALE: $(elapsed "$t_load") s"
t0=$(now)
# A fixed number of transactions, not a duration: -T 10 burnt two cores for
# 10 s on an idle machine (and its WAL was archived and replayed again) for
# nothing a check needs beyond "updates after the bulk load". The segments
# step 4 needs come from pgbench -i -s 10.
pgbench_run "$P" -t 1000 -c 2 -j 2 -n >"$T/out/pgbench-run" 2>&1 ||
    { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
note "pgbench -t 1000 -c 2: $(grep -E '^tps' "$T/out/pgbench-run" | head -1)"
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'before switch')" >/dev/null
last_seg=$(switch_wal "$P")
note "switched WAL, waiting for $last_seg to be archived"
wait_archived "$P" "$last_seg" 120
archive_secs=$(elapsed "$t_load")
row=$(q "$P" "select archived_count, failed_count, coalesce(last_archived_wal,''), coalesce(last_failed_wal,'') from pg_stat_archiver")
IFS='|' read -r archived_count failed_count last_archived last_failed <<<"$row"
# Check up to what pg_stat_archiver reports (autovacuum may have produced
# and archived more segments after the switch).
[[ "$last_archived" =~ ^[0-9A-F]{24}$ && "$last_archived" > "$last_seg" ]] && last_seg=$last_archived
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
note "archived $archived_count files ($nseg segments $first_seg..$last_seg) in $archive_secs s of load+archiving, $(ratio "$nseg" "$archive_secs") segs/s end to end"
assert_eq 0 "$failed_count" "archiver failed_count (last failed: '$last_failed')"

# Every segment PostgreSQL archived is in the repository, once, well named.
suffix=""
[[ "$COMPRESS" == zstd ]] && suffix+='\.zst'
[[ "$CIPHER" != none ]] && suffix+='\.enc'
raw_bytes=0
repo_bytes=0
for seg in $(seg_range "$first_seg" "$last_seg"); do
    objs=$(objects "$seg")
    n=$(grep -c . <<<"$objs" || true)
    [[ "$n" == 1 ]] || die "segment $seg: expected 1 object in the repository, found $n: ${objs//$'\n'/ }"
    [[ "$(basename "$objs")" =~ ^$seg-[0-9a-f]{64}$suffix$ ]] ||
        die "segment $seg: object name $(basename "$objs") does not match $seg-<sha256>$suffix"
    repo_bytes=$((repo_bytes + $(stat -c %s "$objs")))
    raw_bytes=$((raw_bytes + 16 * 1024 * 1024))
done
ok "all $nseg segments $first_seg..$last_seg are in the repository (one object each, named <seg>-<sha256>$suffix)"
note "repository: $repo_bytes bytes for $raw_bytes bytes of WAL (ratio $(ratio "$repo_bytes" "$raw_bytes" 3))"
if [[ "$COMPRESS" == zstd ]]; then
    ((repo_bytes * 10 < raw_bytes * 8)) ||
        die "compress-type=zstd but the repository is not smaller than 80% of the WAL ($repo_bytes of $raw_bytes bytes)"
    ok "objects are compressed"
else
    ((repo_bytes >= raw_bytes)) ||
        die "compress-type=none but objects ($repo_bytes bytes) are smaller than the WAL ($raw_bytes bytes)"
fi
# Nothing else than WAL objects and stanza metadata in the archive: no
# temporary files left behind.
leftover=$(find "$REPO" -type f \( -name '*.tmp' -o -name '*.partial.*' -o -name '.*' \) | head -5)
[[ -z "$leftover" ]] || die "temporary files left in the repository: $leftover"

# ------------------------------------------------ 4. push/fetch throughput --
# Copies of archived (.done) segments still in pg_wal.
pg_dir "$T/walcopy" 700
n=0
for f in $(wal_segments "$T/src/pg_wal"); do
    [[ -e "$T/src/pg_wal/archive_status/$f.done" ]] || continue
    cp "$T/src/pg_wal/$f" "$T/walcopy/$f"
    n=$((n + 1))
    ((n < NBENCH)) || break
done
chown -R "$PGUSER_OS:" "$T/walcopy" 2>/dev/null || true
((n >= 10)) || die "only $n archived segments left in pg_wal for the throughput test (want >= 10)"
bench_segs=$(ls "$T/walcopy")
# The copies must equal what was archived: fetch each from the main repo.
pg_dir "$T/fetched" 700
bench_repo=$T/repo-bench
BCONF=$T/bench.conf
write_config -f "$BCONF" -r "$bench_repo" "${cfg[@]}"
assert_exit_pg 0 "$PITR" --config "$BCONF" --stanza "$STANZA" stanza-create
t0=$(now)
for seg in $bench_segs; do
    assert_exit_pg 0 "$PUSH" --config "$BCONF" --stanza "$STANZA" "$T/walcopy/$seg"
done
push_secs=$(elapsed "$t0")
note "ue-wal-push: $n segments in $push_secs s = $(ratio "$n" "$push_secs") segs/s, $(ratio $((n * 16)) "$push_secs") MB/s (compress=$COMPRESS cipher=$CIPHER)"
for seg in $bench_segs; do
    [[ $(object_count "$seg" "$bench_repo") == 1 ]] || die "push of $seg left no object in $bench_repo"
done
t0=$(now)
for seg in $bench_segs; do
    assert_exit_pg 0 "$FETCH" --config "$BCONF" --stanza "$STANZA" "$seg" "$T/fetched/$seg"
done
fetch_secs=$(elapsed "$t0")
note "ue-wal-fetch: $n segments in $fetch_secs s = $(ratio "$n" "$fetch_secs") segs/s, $(ratio $((n * 16)) "$fetch_secs") MB/s"
for seg in $bench_segs; do
    cmp -s "$T/walcopy/$seg" "$T/fetched/$seg" || die "fetched $seg differs from the pushed segment"
done
ok "$n segments pushed and fetched back byte-identical"
# And the objects PostgreSQL archived hold exactly these bytes too.
for seg in $(echo "$bench_segs" | head -3); do
    rm -f "$T/fetched/$seg"
    assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/fetched/$seg"
    cmp -s "$T/walcopy/$seg" "$T/fetched/$seg" || die "segment $seg archived by PostgreSQL does not fetch back identical"
done
ok "segments archived by PostgreSQL fetch back byte-identical"

if [[ "$CIPHER" != none ]]; then
    # The repository must not hold plaintext WAL: pgbench_accounts rows
    # carry an 84-byte blank-padded filler; 64 blanks in a row is plaintext.
    blanks=$(printf '%64s' '')
    plain=0
    for seg in $bench_segs; do
        LC_ALL=C grep -qaF -- "$blanks" "$T/walcopy/$seg" && plain=$((plain + 1))
    done
    ((plain > 0)) || die "self-check: no raw segment contains the plaintext pattern"
    leaks=$(find "$REPO" -type f -name '*.enc' -exec env LC_ALL=C grep -laF -- "$blanks" {} + | head -3 || true)
    [[ -z "$leaks" ]] || die "encrypted objects contain plaintext WAL: $leaks"
    ok "no plaintext in the encrypted repository ($plain raw segments contain the probe)"
fi

# ------------------------------------------------------------ 5. restore ---
src_sum=$(table_checksum "$P")
accounts=$(q "$P" "select count(*) from pgbench_accounts")
assert_eq $((SCALE * 100000)) "$accounts" "source pgbench_accounts row count"
setup_restore restore "$P_RESTORE"
# Step 6: the restored cluster archives into the same stanza once promoted.
pg_conf restore "archive_mode = on" \
    "archive_command = '$PUSH --config $CONF --stanza $STANZA %p'"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
restore_secs=$(elapsed "$t0")
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/restore.log" || true)
note "recovery: $restored segments restored from the archive, promoted after $restore_secs s ($(ratio "$restored" "$restore_secs") segs/s)"
((restored >= nseg - 1)) ||
    die "recovery restored only $restored segments from the archive, expected about $nseg"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
# shellcheck disable=SC2001 # indents every line
sed 's/^/    /' <<<"$src_sum"
ok "restored cluster matches the source ($(wc -l <<<"$src_sum") tables)"
[[ $(q "$P_RESTORE" "select note from uw_marker where id = 1") == "before switch" ]] ||
    die "marker row written just before the last switch is missing after recovery"

# --------------------------------------------- 6. archiving after promotion --
tli=$(q "$P_RESTORE" "select timeline_id from pg_control_checkpoint()")
assert_eq 2 "$tli" "restored cluster is on timeline 2"
q "$P_RESTORE" "insert into uw_marker values (2, 'after promotion')" >/dev/null
seg2=$(switch_wal "$P_RESTORE")
wait_archived "$P_RESTORE" "$seg2" 60
row=$(q "$P_RESTORE" "select archived_count, failed_count, coalesce(last_failed_wal,'') from pg_stat_archiver")
IFS='|' read -r a2 f2 lf2 <<<"$row"
assert_eq 0 "$f2" "archiver failures after promotion (last failed: '$lf2')"
hist=$(find "$REPO" -type f -name '00000002.history*' | head -1)
[[ -n "$hist" ]] || die "00000002.history was not archived into the repository"
pg_dir "$T/hist" 700
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" 00000002.history "$T/hist/00000002.history"
cmp -s "$T/restore/pg_wal/00000002.history" "$T/hist/00000002.history" ||
    die "fetched 00000002.history differs from the one PostgreSQL wrote"
[[ $(object_count "$seg2") == 1 ]] || die "timeline 2 segment $seg2 not in the repository"
ok "after promotion: $a2 files archived (history file, timeline 2 segment $seg2), history fetches back identical"

note "summary: compress=$COMPRESS cipher=$CIPHER segments=$nseg archive=${archive_secs}s push=$(ratio "$n" "$push_secs") segs/s fetch=$(ratio "$n" "$fetch_secs") segs/s recovery=${restore_secs}s ratio=$(ratio "$repo_bytes" "$raw_bytes" 3)"
