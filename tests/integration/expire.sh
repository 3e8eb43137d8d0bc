#!/usr/bin/env bash
# expire: retention on a posix repository with real backups, made at the real
# time and judged with --now in the future, and every backup left restoring.
#
#  1. a small cluster archiving through ue-wal-push; backups B1 full, B2
#     incr, B3 full, B4 incr, with rows added and a WAL switch between them
#     (the table's checksum noted after each).
#  2. --dry-run with retention-incr=1d retention-daily=1d: at the real time
#     nothing goes; with --now two days on, B1, B2 and B4 would go and B3
#     stays as the only full backup; the dry run removes nothing.
#  3. backup-keep pins B1 (for ever) and B2 (until tomorrow); expire with
#     retention-full=1 retention-archive=1 --now 400 days on: B1 stays
#     (pinned), B2 goes (its pin ended), B3 and B4 stay; the WAL between B1's
#     stop and B3's start goes (the point-in-time window starts at B3), B1's
#     own WAL stays; expire.state records it.
#  4. what remains restores: B3 to the end of the archive, B4 and B1 (whose
#     WAL around it is gone) to their consistency points, each with exactly
#     the source's data then.
#  5. B1 unpinned: the next expire (real time) removes it and its WAL, and an
#     interrupted backup (a directory without a manifest).
#  6. ue-basebackup --retention-full=1 expires after its backup (expire-auto):
#     B3 and B4 go; with expire-auto=n nothing would.
#  7. an object of the newest full backup deleted: info marks it and the
#     incremental built on it not restorable (text and json).
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_B1=$((P + 1))
P_B3=$((P + 2))
P_B4=$((P + 3))
STANZA=exp$UW_PORT_BASE
SPOOL=$T/spool

# ----------------------------------------------------------- 1. backups --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
write_config spool-path="$SPOOL"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
q "$P" "create table t(id int primary key, note text)" >/dev/null

round=0
# step: add rows, switch WAL (so backups' WAL are distinct segments).
step() {
    round=$((round + 1))
    q "$P" "insert into t select g, 'round $round' from generate_series($round * 1000, $round * 1000 + 999) g" >/dev/null
    switch_wal "$P" >/dev/null
}
step
take_backup --type full --process-max 2
B1=$BACKUP_ID
SUM1=$(table_checksum "$P")
step
take_backup --type incr --process-max 2
B2=$BACKUP_ID
step
take_backup --type full --process-max 2
B3=$BACKUP_ID
step
take_backup --type incr --process-max 2
B4=$BACKUP_ID
SUM4=$(table_checksum "$P")
step
wait_archived "$P" "$(switch_wal "$P")"
SUM_END=$(table_checksum "$P")
note "backups: $B1 $B2 $B3 $B4"

expire() { assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" expire "$@"; }
has() { grep -qF -- "$1" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "expire output lacks: $1"; }; }
hasnt() { ! grep -qF -- "$1" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "expire output has: $1"; }; }
bdir() { echo "$REPO/$STANZA/backup/$1"; }
seg_objects() { find "$REPO/$STANZA/archive" -type f -name "$1-*" | grep -c . || true; }
iso() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%SZ'; }
NOW=$(date +%s)
wal_before=$(find "$REPO/$STANZA/archive" -type f | wc -l)

# ----------------------------------------------------------- 2. dry run --
expire --dry-run --retention-incr=1d --retention-daily=1d
hasnt "would remove backup"
has "keep backup $B1 (full"
ok "at the real time nothing would go"
expire --dry-run --retention-incr=1d --retention-daily=1d --now "$(iso $((NOW + 2 * 86400)))"
has "would remove backup $B1 (full"
has "would remove backup $B2 (incr"
has "would remove backup $B4 (incr"
has "older than retention-incr=1d"
has "keep backup $B3 (full"
has "only full backup"
has "would remove WAL"
[[ -d $(bdir "$B1") && -d $(bdir "$B4") ]] || die "a dry run removed a backup"
assert_eq "$wal_before" "$(find "$REPO/$STANZA/archive" -type f | wc -l)" "a dry run removes no WAL"
[[ ! -e "$SPOOL/$STANZA/state/expire.state" ]] || die "a dry run recorded expire.state"

# --------------------------------------------------- 3. pins and expire --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" backup-keep --set "$B1"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" backup-keep --set "$B2" \
    --until "$(iso $((NOW + 86400)))"
assert_exit_pg 1 "$PITR" --config "$CONF" --stanza "$STANZA" backup-keep --set 20000101-000000F
expire --dry-run --retention-full=1
has "keep backup $B1 (full"
has "keep backup $B2 (incr, "
has "pinned"
ok "pinned backups kept today"
B1_START=$(manifest_get "$B1" start-wal)
B1_STOP=$(manifest_get "$B1" stop-wal)
B2_START=$(manifest_get "$B2" start-wal)
B3_START=$(manifest_get "$B3" start-wal)
[[ "$B1_STOP" < "$B2_START" && "$B2_START" < "$B3_START" ]] || die "backups share WAL segments"
expire --retention-full=1 --retention-archive=1 --now "$(iso $((NOW + 400 * 86400)))"
has "remove backup $B2 (incr"
has "keep backup $B1 (full"
[[ -d $(bdir "$B1") ]] || die "pinned $B1 removed"
[[ ! -e $(bdir "$B2") ]] || die "$B2 (pin ended) not removed"
[[ -d $(bdir "$B3") && -d $(bdir "$B4") ]] || die "$B3 or $B4 removed"
assert_eq 1 "$(seg_objects "$B1_START")" "B1's first WAL segment kept"
assert_eq 1 "$(seg_objects "$B1_STOP")" "B1's last WAL segment kept"
assert_eq 0 "$(seg_objects "$B2_START")" "WAL between B1 and B3 removed"
assert_eq 1 "$(seg_objects "$B3_START")" "B3's WAL kept"
st=$SPOOL/$STANZA/state/expire.state
assert_eq "result=ok" "$(grep '^result=' "$st")" "expire.state result"
assert_eq "backups_removed=1" "$(grep '^backups_removed=' "$st")" "expire.state backups_removed"
grep -Eq '^wal_removed=[1-9]' "$st" || die "expire.state: $(cat "$st")"
grep -Eq '^bytes_freed=[1-9]' "$st" || die "expire.state: $(cat "$st")"

# ----------------------------------------------------- 4. restores ------
compare() { # compare WHAT EXPECTED PORT
    local got
    got=$(table_checksum "$3")
    [[ "$got" == "$2" ]] || die "$1: expected '$2', got '$got'"
    ok "$1: data as expected"
}
# Each restore promotes to a new timeline that later restores follow: the
# newest point first, so that the older backups stay on those histories.
restore_to r_b3 --set "$B3" --start --port "$P_B3"
wait_promoted "$P_B3" 180
compare "$B3 to the end of the archive" "$SUM_END" "$P_B3"
pg_stop r_b3
restore_to r_b4 --set "$B4" --target=immediate --start --port "$P_B4"
wait_promoted "$P_B4" 180
compare "$B4 (incremental) at its consistency point" "$SUM4" "$P_B4"
pg_stop r_b4
restore_to r_b1 --set "$B1" --target=immediate --start --port "$P_B1"
wait_promoted "$P_B1" 180
compare "oldest backup $B1 (pinned, its own WAL only)" "$SUM1" "$P_B1"
pg_stop r_b1

# ------------------------------------------------- 5. unpin, leftovers --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" backup-keep --set "$B1" --unset
pg_dir "$(bdir 20200101-000000F)" 750
pg_dir "$(bdir 20200101-000000F)/pg_data" 750
expire --retention-full=1
has "remove backup $B1 (full"
has "remove interrupted backup 20200101-000000F"
[[ ! -e $(bdir "$B1") && ! -e $(bdir 20200101-000000F) ]] || die "$B1 or the interrupted backup not removed"
assert_eq 0 "$(seg_objects "$B1_START")" "B1's WAL removed once B1 went"
assert_eq "backups_removed=1" "$(grep '^backups_removed=' "$st")" "expire.state of the second run"

# --------------------------------------------------- 6. expire-auto -----
take_backup --type full --process-max 2 --retention-full=1 --expire-auto=n
B5=$BACKUP_ID
[[ -d $(bdir "$B3") ]] || die "expire-auto=n expired $B3"
take_backup --type full --process-max 2 --retention-full=1
B6=$BACKUP_ID
grep -q "expire: removed 3 backups" "$BACKUP_LOG" || { cat "$BACKUP_LOG" >&2; die "no expire after the backup"; }
for b in "$B3" "$B4" "$B5"; do [[ ! -e $(bdir "$b") ]] || die "expire-auto left $b"; done
ok "expire-auto after ue-basebackup removed $B3 $B4 $B5"
step
take_backup --type incr --process-max 2
B7=$BACKUP_ID

# ------------------------------------------- 7. info: missing objects --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
grep -q "NOT restorable" "$LAST_OUT" && { cat "$LAST_OUT" >&2; die "info: a sound backup marked not restorable"; }
victim=$(find "$(bdir "$B6")/pg_data/base" -type f | sort | sed -n 1p)
rm -f "$victim"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
grep -q "NOT restorable: 1 file missing" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "info did not notice the missing object"; }
[[ $(grep -c "NOT restorable" "$LAST_OUT") == 2 ]] || { cat "$LAST_OUT" >&2; die "info: $B6 and $B7 should both be not restorable"; }
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info --output json
python3 - "$LAST_OUT" "$B6" "$B7" <<'EOF' || die "info json"
import json, sys
d = json.load(open(sys.argv[1]))
b = {x["id"]: x for x in d["repos"][0]["backups"]}
for i in sys.argv[2:]:
    assert b[i]["restorable"] is False and b[i]["problem"], b[i]
assert d["repos"][0]["restorable"]["earliest"] is None, d["repos"][0]["restorable"]
EOF
ok "info marks $B6 (object deleted) and $B7 (built on it) not restorable"
