#!/usr/bin/env bash
# Block-level incremental backups restore to the exact data, and are small
# when little changed.
#
# A real PostgreSQL 15 cluster loaded with pgbench -i -s 10 (about 150 MB),
# archived through ue-wal-push.  Chain: full, change data, incr, change data,
# incr.  "Change data" touches about 1% of pgbench_accounts (100 runs of 100
# consecutive rows spread evenly over the whole table), runs 400 pgbench
# transactions and inserts into a small table.  (1% of the rows picked one in
# a hundred would touch every other page of a table with 61 rows per page:
# that is not "little changed" at the page level.)
#
#  1. each incremental's manifest is type=incr with the previous backup as
#     prior, and what it stores (manifest stored=, and du of its directory)
#     is less than 1/5 of what the full backup stores;
#  2. restoring the last incremental (default set: the newest; 2 workers)
#     with no target recovers to the end of the archive, promotes, and gives
#     every table exactly the source's contents after writes stopped
#     (table_checksum of every table);
#  3. restoring the FIRST incremental (--set) with --target=immediate gives
#     exactly the contents the source had while that backup ran (no writes
#     during it);
#  4. both restored clusters are internally consistent: an index-only scan
#     counts every pgbench_accounts row once (it trusts the visibility map),
#     amcheck finds nothing in heaps and btree indexes, pg_visibility finds
#     no page marked all-visible/all-frozen that is not.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_END=$((P + 1))
P_IMM=$((P + 2))
SCALE=${UW_INCR_SCALE:-10}
# The backup lock is /tmp/ue-wal-<stanza>.backup.lock: a stanza name of our
# own keeps tests running side by side from blocking each other.
STANZA=incr$UW_PORT_BASE

# ---------------------------------------------------------------- setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src

t0=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create table uw_events(id serial primary key, round int, at timestamptz default now(), note text)" >/dev/null
q "$P" "insert into uw_events(round, note) select 0, 'initial ' || g from generate_series(1, 100) g" >/dev/null
db_bytes=$(q "$P" "select pg_database_size('postgres')")
note "pgbench -i -s $SCALE: $(elapsed "$t0") s, database $((db_bytes / 1024 / 1024)) MiB"

# backup_stored ID: "stored=" of the manifest; backup_du ID: bytes on disk.
backup_stored() { manifest_get "$1" stored; }
backup_du() { du -sb "$REPO/$STANZA/backup/$1" | cut -f1; }

# ------------------------------------------------------------ full backup --
t0=$(now)
take_backup --type full --process-max 2
FULL=$BACKUP_ID
full_secs=$(elapsed "$t0")
assert_eq full "$(manifest_get "$FULL" type)" "manifest of $FULL: type"
full_stored=$(backup_stored "$FULL")
full_du=$(backup_du "$FULL")
note "full backup $FULL in $full_secs s: stored=$full_stored bytes (du $full_du) of size=$(manifest_get "$FULL" size)"
((full_stored > 0)) || die "full backup stored=$full_stored"

# change_data ROUND: ~1% of pgbench_accounts in 100 runs of 100 rows spread
# over the whole table, 400 pgbench transactions, 50 rows into uw_events.
change_data() {
    local round=$1 off=$(( ($1 - 1) * 5000 )) pages
    local where="(aid - 1) % 10000 between $off and $((off + 99))"
    pages=$(q "$P" "select count(*) || ' rows on ' || count(distinct (ctid::text::point)[0]) || ' pages'
        from pgbench_accounts where $where")
    q "$P" "update pgbench_accounts set abalance = abalance + $round, filler = 'round $round' where $where" >/dev/null
    pgbench_run "$P" -n -c 2 -j 2 -t 200 >"$T/out/pgbench-$round" 2>&1 ||
        { tail "$T/out/pgbench-$round"; die "pgbench round $round failed"; }
    q "$P" "insert into uw_events(round, note) select $round, 'change ' || g from generate_series(1, 50) g" >/dev/null
    note "round $round: updated $pages of pgbench_accounts, 400 pgbench transactions, 50 events"
}

# take_incr ROUND PRIOR: incremental backup; sets INCR and checks its size.
take_incr() {
    local round=$1 prior=$2 t0 stored du r
    t0=$(now)
    take_backup --type incr
    INCR=$BACKUP_ID
    note "incremental $INCR in $(elapsed "$t0") s: $(grep -o 'complete: .*' "$BACKUP_LOG" || true)"
    assert_eq incr "$(manifest_get "$INCR" type)" "manifest of $INCR: type"
    assert_eq "$prior" "$(manifest_get "$INCR" prior)" "manifest of $INCR: prior"
    [[ "$INCR" == "${FULL}_"* ]] || die "incremental id $INCR does not begin with its full backup's id ${FULL}_"
    stored=$(backup_stored "$INCR")
    du=$(backup_du "$INCR")
    r=$(ratio "$stored" "$full_stored" 3)
    note "sizes: full stored=$full_stored (du $full_du), incr $round stored=$stored (du $du): ratio $r (du ratio $(ratio "$du" "$full_du" 3))"
    ((stored * 5 < full_stored)) ||
        die "incremental $round stores $stored bytes, not < 1/5 of the full backup's $full_stored (ratio $r)"
    ((du * 5 < full_du)) ||
        die "incremental $round takes $du bytes on disk, not < 1/5 of the full backup's $full_du"
    ok "incremental $round stores $r of the full backup"
}

# ------------------------------------------------ incr 1, its expected data --
change_data 1
take_incr 1 "$FULL"
INCR1=$INCR
# Nothing wrote between the backup and this point: --target=immediate on
# INCR1 must give exactly this.
sum_incr1=$(table_checksum "$P")

# ----------------------------------------------------------------- incr 2 --
change_data 2
take_incr 2 "$INCR1"
INCR2=$INCR
# More writes after the last backup: recovery has to replay them from the
# archive.
q "$P" "insert into uw_events(round, note) select 3, 'after the last backup ' || g from generate_series(1, 20) g" >/dev/null
pgbench_run "$P" -n -c 2 -j 2 -t 100 >"$T/out/pgbench-3" 2>&1 ||
    { tail "$T/out/pgbench-3"; die "pgbench round 3 failed"; }

# Stop writes, switch, wait until the archive holds everything.
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 120
sum_end=$(table_checksum "$P")
[[ "$sum_end" != "$sum_incr1" ]] || die "self-check: the data did not change after the first incremental"
note "source at the end: $(grep -c . <<<"$sum_end") tables"
# shellcheck disable=SC2001 # indents every line
sed 's/^/    /' <<<"$sum_end"

# compare WHAT EXPECTED PORT: table_checksum of PORT equals EXPECTED.
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

# index_only_count PORT: pgbench_accounts rows counted through an index-only
# scan, which trusts the visibility map: a wrong all-visible bit shows up as
# rows counted twice (old and new version of an updated row).
index_only_count() {
    local out
    out=$("$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$T/sock" -p "$1" -U postgres -d postgres \
        -c "set enable_seqscan = off" -c "set enable_bitmapscan = off" \
        -c "explain (costs off) select count(*) from pgbench_accounts where aid > 0" \
        -c "select count(*) from pgbench_accounts where aid > 0" 2>&1) ||
        die "index-only count on port $1 failed: $out"
    [[ "$out" == *"Index Only Scan"* ]] || die "self-check: no index-only scan planned on port $1: $out"
    tail -n 1 <<<"$out"
}

# check_restored WHAT PORT: the visibility map and indexes of a restored
# cluster are right, not just the heap.
check_restored() {
    local what=$1 port=$2 t0 n
    n=$(index_only_count "$port")
    assert_eq $((SCALE * 100000)) "$n" "$what: pgbench_accounts rows through an index-only scan"
    t0=$(now)
    check_relations "$port"
    ok "$what: amcheck (heap, btree) and pg_visibility (visibility map) consistent ($(elapsed "$t0") s)"
}

# ------------------------------------- restore the chain to the end of WAL --
t0=$(now)
restore_to r_end --start --port "$P_END" --process-max 2
wait_promoted "$P_END" 180
note "restore of the newest backup ($INCR2) to the end of the archive, started and promoted in $(elapsed "$t0") s"
grep -q -F "$INCR2" "$RESTORE_OUT" "$RESTORE_LOG" ||
    { cat "$RESTORE_LOG" "$RESTORE_OUT" >&2; die "restore without --set did not say it restored the newest backup $INCR2"; }
[[ $(q "$P_END" "select count(*) from uw_events where round = 3") == 20 ]] ||
    die "rows written after the last backup are missing from the restored cluster"
compare "newest incremental + archive to the end" "$sum_end" "$P_END"
check_restored "newest incremental + archive to the end" "$P_END"
pg_stop r_end

# ------------------------------------- first incremental, target immediate --
t0=$(now)
restore_to r_imm --set "$INCR1" --target=immediate --start --port "$P_IMM"
wait_promoted "$P_IMM" 180
grep -q -F "$INCR1" "$RESTORE_OUT" "$RESTORE_LOG" ||
    { cat "$RESTORE_LOG" "$RESTORE_OUT" >&2; die "restore --set $INCR1 did not say it restored $INCR1"; }
note "restore of $INCR1 with --target=immediate in $(elapsed "$t0") s"
compare "first incremental, --target=immediate" "$sum_incr1" "$P_IMM"
[[ $(q "$P_IMM" "select count(*) from uw_events where round >= 2") == 0 ]] ||
    die "rows written after the first incremental are present after --target=immediate"
check_restored "first incremental, --target=immediate" "$P_IMM"
pg_stop r_imm

rm -f "/tmp/ue-wal-$STANZA.backup.lock"
