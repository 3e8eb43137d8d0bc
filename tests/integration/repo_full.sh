#!/usr/bin/env bash
# repo_full: a full repository is a repository error (issue 11, item 3).
#
# The repository is a 2 MiB tmpfs (mounting needs root, which the suite
# runs as; the test fails rather than skips without it). WAL of random text
# does not fit:
#   - the archiver's pushes fail with exit 5 (before: 4, "a local file could
#     not be read or written"), the cause ("No space left on device") in
#     the message; PostgreSQL keeps the WAL
#   - a direct push of such a segment: exit 5, no temporary and no partial
#     object left in the repository
#   - space returns (remount with 256 MiB): archiving resumes by itself,
#     every segment has its object
# Then the repository unavailable for a while under pgbench load, twice:
# read-only (remount ro: EROFS) and unwritable (the archive directory
# 0500: EACCES). Each time: the archiver's pushes fail with exit 5 and the
# cause, 0 segments acknowledged (archived_count unchanged, no object) while
# it lasts, PostgreSQL keeps the WAL, and after the repair every segment is
# archived once with no gap and no temporary left.
source "$(dirname "$0")/../lib.sh"

[[ $(id -u) -eq 0 ]] || die "needs root to mount a tmpfs as the repository"
P=$UW_PORT_BASE

pg_dir "$REPO" 750
mount -t tmpfs -o size=2m,mode=750 uw-repo-full "$REPO"
umount_repo() { umount "$REPO" 2>/dev/null || umount -l "$REPO" 2>/dev/null || true; }
at_exit umount_repo
chown "$PGUSER_OS:" "$REPO"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 512MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
first=$(current_seg "$P")
q "$P" "create table r as select md5(random()::text) || md5(random()::text) as v from generate_series(1, 250000) g" >/dev/null
last=$(switch_wal "$P")
note "random WAL written: $first .. $last"

# The archiver fails, with exit code 5, and keeps the WAL.
deadline=$((SECONDS + 120))
while :; do
    failed=$(q "$P" "select failed_count from pg_stat_archiver")
    ((failed > 0)) && grep -q "archive command failed with exit code" "$T/src.log" && break
    ((SECONDS < deadline)) || die "the archiver did not fail on a full repository within 120 s"
    sleep 0.2
done
grep "archive command failed with exit code" "$T/src.log" | head -3
if grep "archive command failed with exit code" "$T/src.log" | grep -qv "exit code 5"; then
    die "an archive failure on a full repository was not exit code 5"
fi
grep -q "No space left on device" "$T/src.log" || die "the cause is not in the archiver's log"
failed_seg=$(q "$P" "select last_failed_wal from pg_stat_archiver")
[[ -f "$T/src/pg_wal/$failed_seg" ]] || die "PostgreSQL no longer holds $failed_seg"
ok "archiver: exit 5 with 'No space left on device', $failed_seg kept by PostgreSQL"

# Stop the archiver's retries (and wait for a push in flight), then push by hand.
set_archive_command src "/bin/false"
deadline=$((SECONDS + 60))
while [[ -n "$(own_pids ue-wal-push)" ]]; do
    ((SECONDS < deadline)) || die "a push is still running after 60 s"
    sleep 0.1
done
pg_dir "$T/wal" 700
cp "$T/src/pg_wal/$failed_seg" "$T/wal/$failed_seg"
chown "$PGUSER_OS:" "$T/wal/$failed_seg"
assert_exit_pg 5 timeout 120 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$failed_seg"
grep -q "No space left on device" "$LAST_ERR" || die "direct push: no cause in: $(cat "$LAST_ERR")"
note "direct push: $(tail -n 1 "$LAST_ERR")"
assert_eq "" "$(repo_temp_files)" "temporaries left in the full repository"
assert_eq 0 "$(object_count "$failed_seg")" "objects (partial or not) for $failed_seg"
ok "direct push: exit 5, nothing partial left"

# Space returns: archiving resumes without help.
mount -o remount,size=256m "$REPO"
enable_archiving src
t0=$(now)
wait_archived "$P" "$last" 180
note "archiving resumed: $last archived $(elapsed "$t0") s after space returned"
for s in $(seg_range "$first" "$last"); do
    [[ $(object_count "$s") == 1 ]] || die "$s has $(object_count "$s") objects after the repair"
done
assert_eq "" "$(repo_temp_files)" "temporaries left after the repair"
ok "after the repair every segment $first .. $last has its object"

# ---------------- the repository unavailable for a while, under load --
pgbench_run "$P" -i -s 2 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
wait_archived "$P" "$(switch_wal "$P")" 180
tldir=""
for d in "$REPO/$STANZA/archive"/*/; do
    [[ $(basename "$d") =~ ^[0-9A-F]{16}$ ]] && { tldir=${d%/}; break; }
done
[[ -d $tldir ]] || die "setup: no timeline directory under $REPO/$STANZA/archive"
for kind in read-only unwritable; do
    case $kind in
    read-only)
        # EBUSY while a push still has a file open for writing: retry
        deadline=$((SECONDS + 120))
        until mount -o remount,ro "$REPO" 2>/dev/null; do
            ((SECONDS < deadline)) || die "could not remount $REPO read-only within 120 s"
            sleep 0.2
        done
        cause="Read-only file system"
        ;;
    unwritable)
        chmod 0500 "$tldir"
        cause="Permission denied"
        ;;
    esac
    logpos=$(wc -l <"$T/src.log") # only this phase's lines (the /bin/false step above exits 1)
    archived0=$(q "$P" "select archived_count from pg_stat_archiver")
    last0=$(q "$P" "select coalesce(last_archived_wal, '') from pg_stat_archiver")
    failed0=$(q "$P" "select failed_count from pg_stat_archiver")
    first=$(current_seg "$P")
    # load while the repository is unavailable: transactions, not a duration
    for _ in 1 2 3; do # at least 3 segments pile up
        pgbench_run "$P" -n -c 2 -t 1500 >"$T/out/pgbench-$kind" 2>&1 || { tail "$T/out/pgbench-$kind"; die "pgbench failed"; }
        last=$(switch_wal "$P")
    done
    deadline=$((SECONDS + 180))
    while :; do
        failed=$(q "$P" "select failed_count from pg_stat_archiver")
        ((failed > failed0)) && break
        ((SECONDS < deadline)) || die "$kind: the archiver did not fail within 180 s"
        sleep 0.2
    done
    tail -n +"$((logpos + 1))" "$T/src.log" >"$T/out/log-$kind"
    grep -q "$cause" "$T/out/log-$kind" || die "$kind: the cause '$cause' is not in the archiver's log"
    if grep "archive command failed with exit code" "$T/out/log-$kind" | grep -qv "exit code 5"; then
        die "$kind: an archive failure was not exit code 5"
    fi
    assert_eq "$archived0" "$(q "$P" "select archived_count from pg_stat_archiver")" "$kind: segments acknowledged while the repository is unavailable"
    ready=$(find "$T/src/pg_wal/archive_status" -name '*.ready' | wc -l)
    ((ready > 0)) || die "$kind: no .ready file while the repository is unavailable"
    for s in $(seg_range "$first" "$last"); do
        [[ $s > $last0 ]] || continue # archived before the outage began
        [[ -f "$T/src/pg_wal/$s" ]] || die "$kind: PostgreSQL no longer holds $s"
        [[ ! -e "$T/src/pg_wal/archive_status/$s.done" ]] || die "$kind: $s acknowledged (.done) while the repository is unavailable"
    done
    note "$kind: $((failed - failed0)) failed pushes (exit 5, '$cause'), $ready segments waiting as .ready, 0 acknowledged"
    t0=$(now)
    case $kind in
    read-only) mount -o remount,rw "$REPO" ;;
    unwritable) chmod 0700 "$tldir" ;;
    esac
    wait_archived "$P" "$last" 300
    for s in $(seg_range "$first" "$last"); do
        [[ $(object_count "$s") == 1 ]] || die "$kind: $s has $(object_count "$s") objects after the repair"
    done
    assert_eq "" "$(repo_temp_files)" "$kind: temporaries left after the repair"
    ok "$kind repository under load: pushes failed with exit 5 ('$cause'), 0 acknowledged early, $first .. $last archived once each $(elapsed "$t0") s after the repair, no gap"
done
