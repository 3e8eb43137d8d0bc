#!/usr/bin/env bash
# backup_kill: a killed ue-basebackup never blocks the next (issue 11, item 1).
#
# Three times in a row: start ue-basebackup, wait (on progress, not time)
# until the new backup's folder holds a worker's temporary file (a copy in
# flight), SIGKILL it. Then:
#   - `ue-pitr info` never lists the killed backup as valid
#   - the next ue-basebackup succeeds (before: exit 5 "unable to remove
#     '.../pg_data/base/5': Directory not empty", the killed workers'
#     temporaries being invisible to the cleanup)
#   - nothing of the killed backup remains in the repository
# Prints how many temporaries each killed backup left and how long each
# following backup took.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
need_basebackup

pg_init src "$P"
# ue-basebackup's lock: /tmp/ue-wal-<stanza>.<uid>.<12 hex of the repository>.backup.lock
lock_hash=$(printf '%s\n%s' "(posix:$REPO)" "$STANZA" | sha256sum | cut -c1-12)
rm_lock() { rm -f "/tmp/ue-wal-$STANZA.$(id -u "$PGUSER_OS").$lock_hash.backup.lock"; }
at_exit rm_lock
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 10 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
note "cluster ready: $(q "$P" "select pg_size_pretty(pg_database_size('postgres'))")"

backups_dir=$REPO/$STANZA/backup
# copy_in_flight: a new backup (not in $before) whose folder holds a worker's
# temporary of more than 256 KiB: the big relation file's copy in flight.
copy_in_flight() {
    local d
    for d in "$backups_dir"/*/; do
        d=$(basename "$d")
        [[ " $before " == *" $d "* ]] && continue
        if [[ -n "$(find "$backups_dir/$d" -name '*.uwtmp.*' -size +256k -print -quit 2>/dev/null)" ]]; then
            echo "$d"
            return 0
        fi
    done
}
for round in 1 2 3; do
    before=$(find "$backups_dir" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort | tr '\n' ' ') || before=""
    # Level 9 and one worker: the big relation file's copy (caught by the
    # size of its temporary) lasts long enough to be killed in flight.
    kill_backup_mid_copy "backup$round" copy_in_flight --compress-level 9 --process-max 1
    killed=$KILLED_BACKUP
    temps=$(find "$backups_dir/$killed" -name '*.uwtmp.*' | wc -l)
    files=$(find "$backups_dir/$killed" -type f | wc -l)
    note "round $round: killed backup $killed mid-copy after $KILL_SECS s ($files files, $temps temporaries left)"
    ((temps > 0)) || die "round $round: setup: no temporary left by the killed backup"
    [[ -f "$backups_dir/$killed/started" && ! -e "$backups_dir/$killed/manifest" ]] ||
        die "round $round: the killed backup has no 'started' marker (or has a manifest)"

    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    if grep -qE "^ +$killed +(full|incr)" "$LAST_OUT"; then
        cat "$LAST_OUT" >&2
        die "round $round: killed backup $killed listed as valid"
    fi
    t0=$(now)
    take_backup
    note "round $round: next backup $BACKUP_ID succeeded in $(elapsed "$t0") s"
    grep -q "removing interrupted backup $killed" "$BACKUP_LOG" || { cat "$BACKUP_LOG" >&2; die "round $round: the leftover was not removed"; }
    # Killed and retaken within one second: the new backup must not take the
    # leftover's id (its files could mix with a leftover that did not go).
    [[ $BACKUP_ID != "$killed" ]] || die "round $round: the next backup reused the killed backup's id $killed"
    [[ ! -e "$backups_dir/$killed" ]] || { find "$backups_dir/$killed" -print 2>/dev/null | sed -n 1,10p >&2; die "round $round: $killed left files behind"; }
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    grep -qE "^ +$BACKUP_ID +full" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "round $round: $BACKUP_ID not listed"; }
done
left=$(find "$REPO" -name '*.uwtmp.*' | wc -l)
assert_eq 0 "$left" "temporaries left in the repository after the last backup"
ok "3 killed backups: none listed as valid, each next backup succeeded, nothing of them remains"
