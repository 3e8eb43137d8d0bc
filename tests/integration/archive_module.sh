#!/usr/bin/env bash
# archive_module: PostgreSQL 15 archiving through the archive library
# ue_wal_archive (archive_library), not archive_command.
#
#  1. cluster "src" with archive_library = 'ue_wal_archive' (found through
#     dynamic_library_path), ue_wal_archive.config/.stanza set; stanza-create;
#     pg_basebackup -X none (needs the archive), pgbench load, every segment
#     in the repository once, failed_count 0, and the configuration read once
#     for all of them (kept in the archiver).
#  2. Repository made unwritable: the archiver fails (failed_count grows, the
#     WARNING carries the same code and message as ue-wal-push on the same
#     file), keeps the WAL (.ready), never restarts or crashes; after the
#     repair it archives everything it kept, with no gap.
#  3. Reload: ue_wal_archive.config pointed at another file (another
#     repository, compress-type=none) takes effect at the next segment; then
#     an edit of that file (compress-type=zstd) does too.
#  4. Recovery of the step-1 base backup through ue-wal-fetch (both
#     repositories) to the end of the archive: table contents identical.
source "$(dirname "$0")/../lib.sh"

# An instrumented module cannot be loaded into an uninstrumented server (the
# sanitizer runtime must be loaded first, and PostgreSQL 15 hangs at start
# with the runtime preloaded): in that build the module's core is checked
# under ASan/LSan by unit.test_archive_module, this test runs in the other.
((UW_SANITIZED == 0)) ||
    skip "sanitizer build: ue_wal_archive cannot be loaded into an uninstrumented PostgreSQL (unit.test_archive_module covers its core here)"
grep -q '^UW_ARCHIVE_MODULE:INTERNAL=ON' "$UW_BIN_DIR/CMakeCache.txt" 2>/dev/null ||
    skip "ue_wal_archive not built: PostgreSQL 15 server headers not found (postgresql-server-dev-15)"
[[ -f "$UW_BIN_DIR/ue_wal_archive.so" ]] || die "ue_wal_archive.so missing in $UW_BIN_DIR though the build says it is built"
mkdir -p "$T/lib"
cp "$UW_BIN_DIR/ue_wal_archive.so" "$T/lib/"
chmod 755 "$T/lib" "$T/lib/ue_wal_archive.so"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
REPO2=$T/repo2
CONF2=$T/ue-wal-2.conf
FCONF=$T/fetch.conf

archiver_pid() { q "$P" "select pid from pg_stat_activity where backend_type = 'archiver'"; }
archiver_row() { q "$P" "select archived_count, failed_count, coalesce(last_failed_wal, '') from pg_stat_archiver"; }
# Every segment from $1 to $2 is stored once, in repository $3 (default $REPO).
check_range() {
    local seg n
    for seg in $(seg_range "$1" "$2"); do
        n=$(object_count "$seg" "${3:-$REPO}")
        [[ "$n" == 1 ]] || die "segment $seg: $n objects in ${3:-$REPO}, expected 1"
    done
}

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
# The module from the first start: no segment is complete (nothing to
# archive) before stanza-create below.
write_config
pg_conf src "archive_mode = on" "wal_keep_size = 512MB" \
    "dynamic_library_path = '$T/lib:\$libdir'" "archive_library = 'ue_wal_archive'" \
    "ue_wal_archive.config = '$CONF'" "ue_wal_archive.stanza = '$STANZA'"
pg_start src
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
first_seg=$(current_seg "$P")
t0=$(now)
basebackup "$P" restore
note "pg_basebackup -X none through the module: $(elapsed "$t0") s"
pgbench_run "$P" -i -s 5 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
pgbench_run "$P" -T 8 -c 2 -j 2 -n >"$T/out/pgbench-run" 2>&1 || { tail "$T/out/pgbench-run"; die "pgbench failed"; }
t0=$(now)
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 120
note "archiving caught up $(elapsed "$t0") s after the load"
IFS='|' read -r archived failed _ <<<"$(archiver_row)"
assert_eq 0 "$failed" "failed_count under pgbench load"
check_range "$first_seg" "$last_seg"
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
ok "$nseg segments $first_seg..$last_seg archived by the module, one object each ($archived files)"
grep -q "ue_wal_archive: pushed $last_seg to repo1" "$T/src.log" || die "no 'pushed $last_seg' line from the module in the server log"
loads=$(grep -c 'ue_wal_archive: configuration .* loaded$' "$T/src.log" || true)
assert_eq 1 "$loads" "configuration read once for $nseg segments (kept by the archiver)"

# ----------------------------------------------------- 2. repository down --
pid=$(archiver_pid)
[[ "$pid" =~ ^[0-9]+$ ]] || die "no archiver process"
IFS='|' read -r _ failed0 _ <<<"$(archiver_row)"
find "$REPO/$STANZA/archive" -type d -exec chmod 0500 {} +
q "$P" "create table down(i int); insert into down select generate_series(1, 1000)" >/dev/null
down_first=$(switch_wal "$P")
deadline=$((SECONDS + 60))
while :; do
    IFS='|' read -r _ failed lastf <<<"$(archiver_row)"
    ((failed >= failed0 + 3)) && break
    ((SECONDS < deadline)) || die "failed_count did not grow with the repository unwritable ($failed)"
    sleep 0.2
done
assert_eq "$down_first" "$lastf" "last_failed_wal is the first segment kept"
for _ in 1 2; do
    q "$P" "insert into down select generate_series(1, 1000)" >/dev/null
    down_last=$(switch_wal "$P")
done
[[ -e "$T/src/pg_wal/archive_status/$down_first.ready" && -e "$T/src/pg_wal/archive_status/$down_last.ready" ]] ||
    die "PostgreSQL did not keep $down_first..$down_last as .ready"
[[ $(object_count "$down_first") == 0 ]] || die "$down_first stored although the repository is unwritable"
# The same failure from ue-wal-push on the same file: same code, same message
# (temporary names hold a pid and a random part: masked).
run as_pg "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/src/pg_wal/$down_first"
((LAST_RC != 0)) || die "ue-wal-push succeeded into the unwritable repository"
mask() { sed -E 's/\.uwtmp\.[^/'"'"' ]*/.uwtmp.X/g'; }
want=$(grep -o '\[[0-9]* [a-z-]*\] .*' "$LAST_ERR" | tail -1 | mask)
[[ -n "$want" ]] || die "ue-wal-push printed no error: $(cat "$LAST_ERR")"
got=$(grep "ue_wal_archive: archiving \"$down_first\" failed" "$T/src.log" | tail -1 | grep -o '\[[0-9]* [a-z-]*\] .*' | mask)
assert_eq "$want" "$got" "the module's WARNING is ue-wal-push's error"
assert_eq "$pid" "$(archiver_pid)" "archiver still the same process (no crash, no restart)"
pg_running src || die "server down"
find "$REPO/$STANZA/archive" -type d -exec chmod 0750 {} +
q "$P" "insert into down select generate_series(1, 10)" >/dev/null
last_seg=$(switch_wal "$P") # also wakes the archiver from its retry wait
wait_archived "$P" "$last_seg" 120
check_range "$first_seg" "$last_seg"
assert_eq "$pid" "$(archiver_pid)" "archiver the same process after the repair"
ok "after the repair every kept segment was archived ($down_first..$last_seg), no gap since $first_seg"
repo1_last=$last_seg

# --------------------------------------------------------------- 3. reload --
write_config -f "$CONF2" -r "$REPO2" compress-type=none
assert_exit_pg 0 "$PITR" --config "$CONF2" --stanza "$STANZA" stanza-create
pg_conf src "ue_wal_archive.config = '$CONF2'"
pg_reload src
deadline=$((SECONDS + 60))
until [[ "$(q "$P" "show ue_wal_archive.config")" == "$CONF2" ]]; do
    ((SECONDS < deadline)) || die "ue_wal_archive.config not reloaded"
    sleep 0.1
done
q "$P" "insert into down select generate_series(1, 10)" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 60
[[ $(object_count "$seg") == 0 && $(object_count "$seg" "$REPO2") == 1 ]] ||
    die "after the reload $seg should be in $REPO2 only"
[[ "$(objects "$seg" "$REPO2")" =~ /$seg-[0-9a-f]{64}$ ]] ||
    die "after the reload $seg should be stored uncompressed: $(objects "$seg" "$REPO2")"
ok "reload to another configuration file (repository, compress-type=none) took effect at $seg"
write_config -f "$CONF2" -r "$REPO2" compress-type=zstd compress-level=1
pg_reload src
q "$P" "insert into down select generate_series(1, 10)" >/dev/null
seg2=$(switch_wal "$P")
wait_archived "$P" "$seg2" 60
[[ "$(objects "$seg2" "$REPO2")" =~ /$seg2-[0-9a-f]{64}\.zst$ ]] ||
    die "after the edit $seg2 should be stored compressed in $REPO2: $(objects "$seg2" "$REPO2")"
check_range "$(seg_add "$repo1_last" 1)" "$seg2" "$REPO2"
again=$(grep -c 'ue_wal_archive: configuration .* loaded again' "$T/src.log" || true)
assert_eq 2 "$again" "configuration read again once per change (setting, then file)"
assert_eq "$pid" "$(archiver_pid)" "archiver the same process through both reloads"

# ------------------------------------------------------------- 4. recovery --
src_sum=$(table_checksum "$P")
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 60
IFS='|' read -r archived failed _ <<<"$(archiver_row)"
write_config -f "$FCONF" -r "$REPO" repo2-type=posix repo2-path="$REPO2"
setup_restore restore "$P_RESTORE" "$FCONF"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
ok "recovery through ue-wal-fetch ($(elapsed "$t0") s) gives identical tables ($(wc -l <<<"$src_sum") tables)"
if grep -E 'terminated by signal|exited with exit code|server process .* was terminated' "$T/src.log"; then
    die "a process of the source server died (see above)"
fi
ok "no process of the source server died ($archived files archived, $failed failures while the repository was down)"
