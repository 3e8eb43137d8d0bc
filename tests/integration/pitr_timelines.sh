#!/usr/bin/env bash
# Point-in-time restore, promotion onto a new timeline that archives into
# the same stanza, and restores that follow (or do not follow) it.
#
# A real PostgreSQL 15 cluster (pgbench -i -s 1 and pgbench load) archived
# through ue-wal-push, one full ue-basebackup, then:
#
#  1. timeline 1: load, rows "tl1-before", pg_create_restore_point, rows
#     "tl1-after", load; everything archived.
#  2. restore --target-name <the restore point> --target-action promote
#     --start: exactly the source's contents at the restore point (every
#     table's checksum), no "tl1-after" rows, running on timeline 2.
#  3. timeline 2: the restored cluster keeps the archive_command it was
#     backed up with and archives into the same stanza (same system id):
#     load, rows "tl2", switch; 00000002.history and its segments reach the
#     repository.
#  4. restore from the same backup with --target-timeline latest (no target:
#     to the end of the archive): timeline 2's data ("tl2" rows present,
#     "tl1-after" rows absent, every table as on timeline 2).
#  5. restore from the same backup with --target-timeline current: the end
#     of timeline 1 ("tl1-after" present, "tl2" absent, every table as the
#     source at the end).
#  6. `ue-pitr info` (text and --output json) shows timeline 2's WAL.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_TL2=$((P + 1))
P_LATEST=$((P + 2))
P_CURRENT=$((P + 3))
# Own stanza name: the backup lock is /tmp/ue-wal-<stanza>.backup.lock.
STANZA=tl$UW_PORT_BASE
RP=uw_before_mistake

# load PORT SECONDS TAG: pgbench load.
load() {
    pgbench_run "$1" -n -c 2 -j 2 -T "$2" >"$T/out/pgbench-$3" 2>&1 ||
        { tail "$T/out/pgbench-$3"; die "pgbench ($3) on port $1 failed"; }
    note "pgbench $3: $(grep -E '^tps' "$T/out/pgbench-$3" | head -1)"
}
# marks PORT PHASE N: insert N rows of PHASE.
marks() {
    q "$1" "insert into uw_marks(phase, n) select '$2', g from generate_series(1, $3) g" >/dev/null
}
# count_marks PORT PHASE
count_marks() { q "$1" "select count(*) from uw_marks where phase = '$2'"; }
# timeline PORT: the timeline the (promoted) cluster writes on.
timeline() { q "$1" "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"; }
# compare WHAT EXPECTED PORT
compare() {
    local what=$1 want=$2 port=$3 got
    got=$(table_checksum "$port")
    if [[ "$got" != "$want" ]]; then
        echo "--- expected ($what) / +++ restored (port $port):" >&2
        diff <(echo "$want") <(echo "$got") >&2 || true
        die "$what: restored data differs"
    fi
    ok "$what: all $(grep -c . <<<"$want") tables identical"
}
# repo_has NAME TIMEOUT: wait until an object for WAL file NAME is stored.
repo_has() {
    local deadline=$((SECONDS + $2))
    until [[ -n "$(find "$REPO/$STANZA/archive" -type f -name "$1-*" | head -1)" ]]; do
        ((SECONDS < deadline)) || die "$1 did not reach the repository within $2 s"
        sleep 0.2
    done
}

# -------------------------------------------------------- setup, backup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create table uw_marks(id serial primary key, phase text not null, n int, at timestamptz default clock_timestamp())" >/dev/null
t0=$(now)
take_backup
FULL=$BACKUP_ID
note "full backup $FULL in $(elapsed "$t0") s"

# ------------------------------------------------------------ timeline 1 --
load "$P" 3 tl1-a
marks "$P" tl1-before 10
rp_lsn=$(q "$P" "select pg_create_restore_point('$RP')")
# Nothing writes between the restore point and this checksum.
sum_rp=$(table_checksum "$P")
note "restore point '$RP' at $rp_lsn"
marks "$P" tl1-after 10
load "$P" 3 tl1-b
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 60
sum_tl1_end=$(table_checksum "$P")
[[ "$sum_tl1_end" != "$sum_rp" ]] || die "self-check: nothing changed after the restore point"

# ------------------------------------- restore to the point, promote: TL 2 --
t0=$(now)
restore_to tl2 --target-name "$RP" --target-action promote --start --port "$P_TL2"
wait_promoted "$P_TL2" 120
note "restore --target-name $RP: promoted after $(elapsed "$t0") s"
compare "restore to '$RP'" "$sum_rp" "$P_TL2"
assert_eq 10 "$(count_marks "$P_TL2" tl1-before)" "rows before the restore point"
assert_eq 0 "$(count_marks "$P_TL2" tl1-after)" "rows after the restore point (timeline 1)"
assert_eq 2 "$(timeline "$P_TL2")" "the restored cluster writes on timeline"
check_relations "$P_TL2"
ok "amcheck and pg_visibility: heap, btree indexes and visibility maps consistent"
ac=$(q "$P_TL2" "show archive_command")
[[ "$ac" == *ue-wal-push*"--stanza $STANZA"* ]] ||
    die "the restored cluster does not archive into stanza $STANZA: archive_command = '$ac'"

# ------------------------------------------------------------ timeline 2 --
load "$P_TL2" 3 tl2
marks "$P_TL2" tl2 10
seg2=$(switch_wal "$P_TL2")
[[ "$seg2" == 00000002* ]] || die "switched segment $seg2 is not on timeline 2"
wait_archived "$P_TL2" "$seg2" 60
sum_tl2=$(table_checksum "$P_TL2")
repo_has 00000002.history 30
repo_has "$seg2" 5
row=$(q "$P_TL2" "select archived_count, failed_count, coalesce(last_failed_wal, '') from pg_stat_archiver")
IFS='|' read -r archived failed last_failed <<<"$row"
assert_eq 0 "$failed" "archive failures on timeline 2 (last failed: '$last_failed')"
ok "timeline 2 archived into stanza $STANZA: $archived files up to $seg2, with 00000002.history"
pg_stop tl2

# ----------------------------------------------- again: timeline latest --
t0=$(now)
restore_to latest --target-timeline latest --start --port "$P_LATEST"
wait_promoted "$P_LATEST" 120
note "restore --target-timeline latest: promoted after $(elapsed "$t0") s"
assert_eq 10 "$(count_marks "$P_LATEST" tl2)" "rows written only on timeline 2"
assert_eq 0 "$(count_marks "$P_LATEST" tl1-after)" "rows written on timeline 1 after the restore point"
compare "restore --target-timeline latest" "$sum_tl2" "$P_LATEST"
check_relations "$P_LATEST"
ok "amcheck and pg_visibility: consistent"
assert_eq 3 "$(timeline "$P_LATEST")" "after following timeline 2, the restored cluster writes on timeline"
# Its own history file must be archived before another restore picks a new
# timeline, or both would choose 3.
repo_has 00000003.history 30
pg_stop latest

# ---------------------------------------------- again: timeline current --
t0=$(now)
restore_to current --target-timeline current --start --port "$P_CURRENT"
wait_promoted "$P_CURRENT" 120
note "restore --target-timeline current: promoted after $(elapsed "$t0") s"
assert_eq 10 "$(count_marks "$P_CURRENT" tl1-after)" "rows written on timeline 1 after the restore point"
assert_eq 0 "$(count_marks "$P_CURRENT" tl2)" "rows written only on timeline 2"
compare "restore --target-timeline current (end of timeline 1)" "$sum_tl1_end" "$P_CURRENT"
check_relations "$P_CURRENT"
ok "amcheck and pg_visibility: consistent"
pg_stop current

# ------------------------------------------------------------ ue-pitr info --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
cp "$LAST_OUT" "$T/out/info.txt"
sed 's/^/    | /' "$T/out/info.txt"
grep -q -F "$FULL" "$T/out/info.txt" || die "ue-pitr info does not list backup $FULL"
grep -q -E -i '00000002\.history|timeline[ :=]*2([^0-9]|$)|^ *2 +[0-9A-F]{24}|00000002[0-9A-F]{16}' "$T/out/info.txt" ||
    die "ue-pitr info does not mention timeline 2 or 00000002.history"
grep -q -E -i '00000001[0-9A-F]{16}|timeline[ :=]*1([^0-9]|$)' "$T/out/info.txt" ||
    die "ue-pitr info does not mention timeline 1's WAL"
ok "ue-pitr info shows timelines 1 and 2"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info --output json
cp "$LAST_OUT" "$T/out/info.json"
if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/out/info.json" ||
        die "ue-pitr info --output json is not valid JSON: $(head -c 500 "$T/out/info.json")"
fi
grep -q -E '00000002' "$T/out/info.json" || die "ue-pitr info --output json does not mention timeline 2's WAL"
grep -q -F "$FULL" "$T/out/info.json" || die "ue-pitr info --output json does not list backup $FULL"
ok "ue-pitr info --output json is valid and shows timeline 2"

rm -f "/tmp/ue-wal-$STANZA.backup.lock"
