#!/usr/bin/env bash
# pitr_targets: `ue-pitr restore` to each kind of recovery target, its
# refusals, and --delta.
#
#  1. cluster "src" archiving with ue-wal-push; pgbench -i -s 5; a
#     tablespace ($T/ts1) holding a table of its own; a full ue-basebackup
#     taken while pgbench runs.
#  2. marker rows, each committed in its own transaction, around the
#     targets (in this order): batch A; the instant T (select now(), with a
#     pause of over a second on each side); batch B; the LSN L
#     (pg_current_wal_lsn()); batch C; a transaction X inserting one marker
#     and reporting its xid; batch D; restore point 'rp1'; batch E; then
#     pg_switch_wal and wait until archived.
#  3. restore --target-time T / --target-lsn L / --target-xid X with
#     --start --target-action pause (no promotion, so nothing is archived
#     into the stanza by the restored clusters), and --target-name rp1 with
#     promote: each restored cluster holds exactly the markers committed
#     before its target (time: A; LSN: A+B; xid: A+B+C+X, inclusive; name:
#     A+B+C+X+D), in the tablespace table as well.  The time restore runs as
#     root into a directory owned by the PostgreSQL user: everything it
#     creates must belong to that user.  The tablespace comes back at its
#     recorded location (a symbolic link in pg_tblspc): the source is stopped
#     and its tablespace moved away first, and each restore gets the location
#     empty.
#     --target=immediate with --target-action shutdown: ue-pitr reports the
#     shutdown after consistency.
#  4. refusals (exit 14 unless said otherwise): a non-empty data directory
#     without --delta; a running postmaster (even with --delta); a
#     non-empty tablespace location without --delta; a target
#     time before the end of the backup (the message names the earliest
#     restorable point); a target time and an LSN after the archive's end;
#     two targets at once (exit 2).
#  5. --delta: the promoted name restore gets more writes, is stopped, and
#     is restored again with --delta: same table checksums as the fresh
#     restore, and fewer bytes rewritten than skipped.
#  6. ue-pitr info (text, and --output json that parses).
#  7. a corrupted object in the backup (one byte flipped): the restore fails
#     with exit 150, naming the file.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_TIME=$((P + 1))
P_LSN=$((P + 2))
P_XID=$((P + 3))
P_NAME=$((P + 4))
P_IMM=$((P + 5))
TS=$T/ts1
# The backup lock is per stanza (/tmp/ue-wal-<stanza>.backup.lock).
STANZA=pt$UW_PORT_BASE

# markers PORT: the marker ids, comma-separated, in order (the table in the
# tablespace must hold the same ids).
markers() {
    local a b
    a=$(q "$1" "select coalesce(string_agg(id::text, ',' order by id), '') from uw_marker")
    b=$(q "$1" "select coalesce(string_agg(id::text, ',' order by id), '') from uw_ts_marker")
    [[ "$a" == "$b" ]] || die "port $1: uw_marker has '$a' but uw_ts_marker (tablespace) has '$b'"
    echo "$a"
}
# batch FIRST LAST TAG: one transaction per marker (in both tables).
batch() {
    local i
    for ((i = $1; i <= $2; i++)); do
        q "$P" "insert into uw_marker values ($i, '$3'); insert into uw_ts_marker values ($i)" >/dev/null
    done
}
# ts_free: an empty tablespace location for the next restore (restores run
# as the PostgreSQL user cannot create it in $T).
ts_free() {
    rm -rf "$TS"
    pg_dir "$TS" 700
}
seq_csv() { seq -s, "$1" "$2"; }

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
t0=$(now)
pgbench_run "$P" -i -s 5 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "pgbench -i -s 5: $(elapsed "$t0") s"
pg_dir "$TS" 700
q "$P" "create tablespace ts1 location '$TS'" >/dev/null
q "$P" "create table uw_ts_marker(id int primary key) tablespace ts1" >/dev/null
# pgbench in rounds of a second until the backup is over (not -T 8, which
# kept two cores busy for 8 s on an idle machine whatever the backup took).
touch "$T/bench.on"
(while [[ -e "$T/bench.on" ]]; do pgbench_run "$P" -n -c 2 -j 2 -T 1 || exit 1; done) >"$T/out/pgbench-run" 2>&1 &
bench_pid=$!
sleep 1
t0=$(now)
take_backup --type full --process-max 2
FULL=$BACKUP_ID
note "full backup $FULL taken during pgbench in $(elapsed "$t0") s"
kill -0 "$bench_pid" 2>/dev/null || { tail "$T/out/pgbench-run"; die "pgbench stopped before the backup ended"; }
rm -f "$T/bench.on"
wait "$bench_pid" || { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
note "pgbench during the backup: $(grep -c '^tps' "$T/out/pgbench-run") rounds, $(awk '/^number of transactions actually processed/ { n += $NF } END { print n }' "$T/out/pgbench-run") transactions"

# -------------------------------------------------------------- 2. markers --
q "$P" "create table uw_marker(id int primary key, tag text, at timestamptz default clock_timestamp())" >/dev/null
batch 1 5 A
sleep 1.2
T_TIME=$(q "$P" "select now()")
sleep 1.2
batch 6 10 B
T_LSN=$(q "$P" "select pg_current_wal_lsn()")
batch 11 15 C
T_XID=$(q "$P" "insert into uw_marker values (16, 'X'); insert into uw_ts_marker values (16); select txid_current()")
batch 17 20 D
q "$P" "select pg_create_restore_point('rp1')" >/dev/null
batch 21 25 E
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 60
note "targets: time '$T_TIME', LSN $T_LSN, xid $T_XID, restore point rp1; archived up to $last_seg"
src_sum=$(table_checksum "$P")
ts_oid=$(q "$P" "select oid from pg_tablespace where spcname = 'ts1'")
# The restores recreate the tablespace at its recorded location.
pg_stop src
mv "$TS" "$T/ts1.src"

# ------------------------------------------------- 3. restores to targets --
# check_markers PORT EXPECTED WHAT
check_markers() {
    assert_eq "$2" "$(markers "$1")" "$3: markers"
}

# Time, as root into a directory owned by the PostgreSQL user.
pg_dir "$T/r_time" 700
pg_adopt r_time "$P_TIME"
t0=$(now)
assert_exit 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/r_time" \
    --target-time "$T_TIME" --target-action pause --start --port "$P_TIME" --process-max 2
note "restore --target-time (as $(id -un)): $(elapsed "$t0") s"
sed 's/^/    | /' "$LAST_OUT"
check_markers "$P_TIME" "$(seq_csv 1 5)" "target-time"
assert_eq t "$(q "$P_TIME" "select pg_is_in_recovery()")" "target-time: paused in recovery"
if [[ $(id -u) -eq 0 ]]; then
    foreign=$(find "$T/r_time" ! -user "$PGUSER_OS" | head -3)
    [[ -z "$foreign" ]] || die "restore as root left files not owned by $PGUSER_OS: $foreign"
    ok "restore as root: everything owned by $PGUSER_OS"
fi
assert_eq 700 "$(stat -c %a "$T/r_time")" "data directory mode"
assert_eq "$TS" "$(readlink "$T/r_time/pg_tblspc/$ts_oid")" "tablespace link"
grep -q "^restore_command = '.*ue-wal-fetch.* --stanza=$STANZA .*%f %p'" "$T/r_time/postgresql.auto.conf" ||
    die "postgresql.auto.conf lacks the restore_command: $(cat "$T/r_time/postgresql.auto.conf")"
[[ -e "$T/r_time/recovery.signal" ]] || die "recovery.signal missing"
pg_stop r_time immediate
ts_free

t0=$(now)
restore_to r_lsn --target-lsn "$T_LSN" --target-action pause --start --port "$P_LSN" --process-max 2
note "restore --target-lsn: $(elapsed "$t0") s"
check_markers "$P_LSN" "$(seq_csv 1 10)" "target-lsn"
pg_stop r_lsn immediate
ts_free

t0=$(now)
restore_to r_xid --target-xid "$T_XID" --target-action pause --start --port "$P_XID" --process-max 2
note "restore --target-xid: $(elapsed "$t0") s"
check_markers "$P_XID" "$(seq_csv 1 16)" "target-xid (inclusive)"
pg_stop r_xid immediate
ts_free

# Immediate, shutting down at the target: ue-pitr waits for the postmaster to exit.
t0=$(now)
restore_to r_imm --target immediate --target-action shutdown --start --port "$P_IMM"
note "restore --target=immediate --target-action shutdown: $(elapsed "$t0") s"
grep -q "shut down" "$LAST_OUT" || die "no shutdown reported: $(cat "$LAST_OUT")"
grep -q "consistent recovery state reached" "$T/r_imm/log/ue-wal-restore.log" ||
    die "recovery did not reach consistency before shutting down"
! pg_running r_imm || die "the server is still running after --target-action shutdown"
_uw_running_del r_imm
ok "target immediate: recovery reached consistency and shut down"
ts_free

# Promoted: it archives timeline 2 into the stanza from now on; the restores
# below either use --target-timeline current or are refused before that
# matters.
t0=$(now)
restore_to r_name --target-name rp1 --target-timeline current --target-action promote \
    --start --port "$P_NAME" --process-max 2
fresh_out=$(cat "$LAST_OUT")
note "restore --target-name: $(elapsed "$t0") s"
check_markers "$P_NAME" "$(seq_csv 1 20)" "target-name"
name_sum=$(table_checksum "$P_NAME")
[[ "$name_sum" != "$src_sum" ]] || die "self-check: the name restore equals the source"

# ------------------------------------------------------------ 4. refusals --
# refuse CODE PATTERN RESTORE-ARGS...: exit CODE and a message matching PATTERN.
refuse() {
    local code=$1 pattern=$2
    shift 2
    assert_exit_pg "$code" "$PITR" --config "$CONF" --stanza "$STANZA" restore "$@"
    grep -q -E -- "$pattern" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "message does not match /$pattern/"; }
    ok "refused ($code): $(grep -m1 ERROR "$LAST_ERR" | cut -c1-220)"
}
refuse 14 "is running in" --pgdata "$T/r_name" --delta
pg_stop r_name fast
refuse 14 "is not empty" --pgdata "$T/r_name"
pg_dir "$T/r_refuse" 700
refuse 14 "tablespace location '$TS' .* is not empty" --pgdata "$T/r_refuse"
refuse 14 "before the end of backup $FULL.*earliest restorable point" \
    --pgdata "$T/r_refuse" --target-time "2000-01-01 00:00:00+00"
refuse 14 "after the last archived WAL" --pgdata "$T/r_refuse" \
    --target-time "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" --target-timeline current
refuse 14 "after the last archived WAL" --pgdata "$T/r_refuse" --target-lsn FF/0 --target-timeline current
refuse 2 "target-time.*target-lsn.*mutually exclusive" --pgdata "$T/r_refuse" \
    --target-time "$T_TIME" --target-lsn "$T_LSN"
refuse 2 "no time zone" --pgdata "$T/r_refuse" --target-time "2026-01-01 00:00:00"
[[ -z "$(ls -A "$T/r_refuse")" ]] || die "a refused restore wrote into $T/r_refuse"

# --------------------------------------------------------------- 5. delta --
pg_start r_name
pgbench_run "$P_NAME" -n -c 2 -j 2 -t 300 >"$T/out/pgbench-diverge" 2>&1 ||
    { tail "$T/out/pgbench-diverge"; die "pgbench on the restored cluster failed"; }
q "$P_NAME" "insert into uw_marker select g, 'diverged' from generate_series(100, 200) g" >/dev/null
q "$P_NAME" "create table uw_extra as select g from generate_series(1, 100000) g" >/dev/null
q "$P_NAME" "insert into uw_ts_marker select g from generate_series(100, 200) g" >/dev/null
q "$P_NAME" "create table uw_ts_extra tablespace ts1 as select g from generate_series(1, 1000) g" >/dev/null
q "$P_NAME" "checkpoint" >/dev/null
[[ "$(table_checksum "$P_NAME")" != "$name_sum" ]] || die "self-check: the restored cluster did not diverge"
pg_stop r_name fast
t0=$(now)
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/r_name" --delta \
    --target-name rp1 --target-timeline current --target-action promote --start --port "$P_NAME" \
    --process-max 2
pg_adopt r_name "$P_NAME"
note "restore --delta: $(elapsed "$t0") s"
sed 's/^/    | /' "$LAST_OUT"
check_markers "$P_NAME" "$(seq_csv 1 20)" "delta restore"
delta_sum=$(table_checksum "$P_NAME")
if [[ "$delta_sum" != "$name_sum" ]]; then
    diff <(echo "$name_sum") <(echo "$delta_sum") >&2 || true
    die "the delta restore differs from the fresh restore"
fi
ok "delta restore gives the same tables as the fresh restore ($(grep -c . <<<"$name_sum") tables)"
[[ "$(q "$P_NAME" "select count(*) from pg_class where relname = 'uw_extra'")" == 0 ]] ||
    die "table created after the restore survived the delta restore"
line=$(grep -E '^ *delta: ' "$LAST_OUT") || die "no delta summary in the output"
rewritten=$(sed -E 's/.*delta: [0-9]+ files \(([0-9]+) bytes\) rewritten.*/\1/' <<<"$line")
skipped=$(sed -E 's/.*rewritten, [0-9]+ files \(([0-9]+) bytes.*/\1/' <<<"$line")
fresh=$(sed -nE 's/.* files, ([0-9.]+ [KMG]?i?B) written.*/\1/p' <<<"$fresh_out")
note "delta: $rewritten bytes rewritten, $skipped bytes unchanged; the fresh restore wrote $fresh"
# Every file that recovery or the diverging writes touched differs from the
# backup (pgbench ran during the backup, so its big table always does); the
# rest must be kept.
((skipped > 0 && rewritten < rewritten + skipped)) ||
    die "delta restore kept nothing ($rewritten bytes rewritten, $skipped kept)"
ok "delta restore rewrote $(ratio $((rewritten * 100)) $((rewritten + skipped)) 0)% of the bytes"
pg_stop r_name fast

# ---------------------------------------------------------------- 6. info --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
sed 's/^/    | /' "$LAST_OUT"
grep -q -F "$FULL" "$LAST_OUT" || die "info does not list $FULL"
grep -q "earliest:" "$LAST_OUT" || die "info does not show the restorable range"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info --output json
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); r = d["repos"][0]; assert r["backups"][0]["id"] == sys.argv[2]; assert r["restorable"]["earliest"]["backup"] == sys.argv[2]' \
    "$LAST_OUT" "$FULL" || die "info --output json: $(head -c 600 "$LAST_OUT")"
ok "info --output json parses and lists the backup"

# ----------------------------------------------------------- 7. corruption --
victim=$(find "$REPO/$STANZA/backup/$FULL/pg_data/base" -type f -size +100k | sort | head -1)
[[ -n "$victim" ]] || die "no object to corrupt"
rel=${victim#"$REPO/$STANZA/backup/$FULL/pg_data/"}
rel=${rel%.zst}
flip_byte "$victim" $(($(stat -c %s "$victim") / 2))
pg_dir "$T/r_corrupt" 700
ts_free
refuse 150 "restoring '$rel'" --pgdata "$T/r_corrupt" --target-timeline current --process-max 2
[[ ! -e "$T/r_corrupt/global/pg_control" ]] || die "a failed restore left global/pg_control behind"
ok "a failed restore leaves no global/pg_control (it cannot be started)"
flip_byte "$victim" $(($(stat -c %s "$victim") / 2))

rm -f "/tmp/ue-wal-$STANZA.backup.lock"
