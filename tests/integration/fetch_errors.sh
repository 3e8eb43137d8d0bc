#!/usr/bin/env bash
# fetch_errors: ue-wal-fetch must tell "not in the archive" (exit 1, the
# normal end of recovery) apart from everything that must stop recovery
# (exit > 125, which PostgreSQL treats as fatal), and never leave a
# partial or wrong file at the destination.
#
#  (a) missing segment           -> 1, no destination file
#  (b) object with a flipped byte -> 150, no destination file
#  (c) object truncated to half  -> 150, no destination file
#  (d) recovery through a corrupt segment: PostgreSQL must stop (FATAL),
#      never promote; with the object repaired the same recovery completes
#      and matches the source
#  (e) archive directory unreadable -> 5 (storage error), not 1
# Each negative case has a positive control on the same object.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
basebackup "$P" restore
backup_seg=$(current_seg "$P")
note "base backup taken; WAL position after it is in $backup_seg"

# Several segments after the backup: pgbench data plus marker rows with a
# switch between each.
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create table uw_marker(id int primary key, at timestamptz default now())" >/dev/null
for i in 1 2 3; do
    q "$P" "insert into uw_marker(id) values ($i)" >/dev/null
    last_seg=$(switch_wal "$P")
done
wait_archived "$P" "$last_seg"
note "archived up to $last_seg"
pg_dir "$T/dst" 700
DST=$T/dst

# A segment after the end of the backup with more WAL after it.
victim=$(seg_add "$backup_seg" 1)
(($(seg_no "$victim") < $(seg_no "$last_seg"))) || die "setup: victim $victim is not before $last_seg"
obj=$(objects "$victim")
[[ $(grep -c . <<<"$obj") == 1 ]] || die "setup: expected one object for $victim, found: $obj"
cp -p "$obj" "$T/saved-object"
note "victim segment $victim, object $(basename "$obj") ($(stat -c %s "$obj") bytes)"

# Positive control: the intact object fetches, identical to pg_wal's copy.
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/ok"
cmp -s "$DST/ok" "$T/src/pg_wal/$victim" || die "fetched $victim differs from pg_wal/$victim"
ok "control: intact $victim fetches (exit 0) and equals pg_wal/$victim"
rm -f "$DST/ok"

# (a) not in the archive
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" 0000000100000099000000FF "$DST/x"
assert_file_absent "$DST/x" "(a) missing segment created the destination"
ok "(a) missing segment: exit 1, no file"
# a history file that does not exist (recovery asks for these) is "missing" too
assert_exit_pg 1 "$FETCH" --config "$CONF" --stanza "$STANZA" 00000009.history "$DST/x"
assert_file_absent "$DST/x"
ok "(a) missing history file: exit 1, no file"

# (b) one flipped byte in the middle of the object
size=$(stat -c %s "$obj")
flip_byte "$obj" $((size / 2))
assert_exit_pg 150 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/x"
assert_file_absent "$DST/x" "(b) corrupt object left a destination file"
ok "(b) flipped byte at offset $((size / 2)): exit 150, no file ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
cp -p "$T/saved-object" "$obj"

# (c) object truncated to half its size
truncate -s $((size / 2)) "$obj"
assert_exit_pg 150 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/x"
assert_file_absent "$DST/x" "(c) truncated object left a destination file"
ok "(c) truncated object: exit 150, no file ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
# also an empty object
truncate -s 0 "$obj"
assert_exit_pg 150 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/x"
assert_file_absent "$DST/x"
ok "(c) empty object: exit 150, no file"
cp -p "$T/saved-object" "$obj"

# (d) recovery must stop at the corrupt segment instead of promoting early
flip_byte "$obj" $((size / 2))
src_sum=$(table_checksum "$P")
setup_restore restore "$P_RESTORE"
t0=$(now)
pg_start_nowait restore
promoted=no
stopped=no
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    r=$(q_try "$P_RESTORE" "select pg_is_in_recovery()") || r=""
    [[ "$r" == f ]] && { promoted=yes; break; }
    if grep -q "database system is shut down" "$T/restore.log" && ! pg_running restore; then
        stopped=yes
        break
    fi
    sleep 0.2
done
if [[ "$promoted" == yes ]]; then
    tail -n 30 "$T/restore.log" >&2
    die "(d) PostgreSQL promoted although $victim is corrupt in the archive (data after it is lost)"
fi
if [[ "$stopped" != yes ]]; then
    tail -n 30 "$T/restore.log" >&2
    die "(d) recovery cluster still running 60 s after start; expected it to stop at corrupt $victim"
fi
_uw_running_del restore
grep -E "could not restore file \"$victim\" from archive: .*(exit code 150|exited with exit code 150)" "$T/restore.log" >&2 ||
    { tail -n 30 "$T/restore.log" >&2; die "(d) server log lacks the restore_command failure for $victim"; }
grep -q "FATAL" "$T/restore.log" || die "(d) no FATAL in the server log"
ok "(d) recovery stopped at corrupt $victim after $(elapsed "$t0") s without promoting"

# ... and with the object repaired, the same recovery goes through.
cp -p "$T/saved-object" "$obj"
pg_file "$T/restore.log" 644
pg_start restore
wait_promoted "$P_RESTORE" 90
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "(d) restored cluster differs from the source after repairing $victim"
fi
ok "(d) control: with $victim repaired recovery completes and the cluster matches the source"
pg_stop restore

# (e) unreadable archive directory: storage error, not "missing"
[[ $(id -u) -eq 0 ]] || die "(e) needs root to make the archive unreadable to the postgres user"
adir=$REPO/$STANZA/archive
[[ -d "$adir" ]] || die "(e) $adir does not exist (repository layout)"
mode=$(stat -c %a "$adir")
chmod 000 "$adir"
t0=$(now)
assert_exit_pg 5 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/x"
chmod "$mode" "$adir"
assert_file_absent "$DST/x"
ok "(e) unreadable $adir: exit 5 after $(elapsed "$t0") s ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$victim" "$DST/x"
ok "(e) control: readable again, fetch exits 0"
