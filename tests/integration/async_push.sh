#!/usr/bin/env bash
# async_push: asynchronous archiving (archive-async) under load, recovery
# through the prefetching fetch, and a SIGKILL in the middle of a batch.
#
#  1. cluster "src", archive_command = ue-wal-push --archive-async
#     --process-max 2 --spool-path $T/spool; pg_basebackup -X none BEFORE the
#     load.
#     ue-wal-push --archive-async starts a detached pusher (one per spool and
#     stanza, holding <spool>/<stanza>/push/lock) that pushes every .ready
#     file with process-max workers and leaves a note per stored file; the
#     archiver's call waits for its file's note (or error file).
#  2. backlog: archive_command pointed at a missing configuration (exit 3)
#     while pgbench -i piles up .ready files; then the async command again,
#     under pgbench load (and updates until 23 segments are written), until
#     everything is archived.  The server log
#     must show pushers ("pushed N of M ready files ahead of the
#     archiver"), calls answered from a note ("archived asynchronously"), no
#     failed asynchronous push, and no archive failure after the repair other
#     than the broken command's exit 3; every segment is in the repository
#     exactly once, no temporary file is left there, and no note is left for
#     a file PostgreSQL already marked .done.
#  3. recovery of the base backup with restore_command = ue-wal-fetch
#     --archive-get-queue-max=128MiB --process-max=2 (spool beside pg_wal):
#     identical table contents, most segments "delivered ... from the
#     prefetch queue", and the prefetcher exits and empties its spool within
#     ~30 s of the last request (checked at the end, step 6).
#  4. SIGKILL of the pusher (compress-level 16 makes it slow) on a
#     pg_wal-like copy of 12 archived segments, into another repository: the
#     call for the first one returns 0 once that one is stored (it fetches
#     back identical; archive-timeout is generous: only a hang may fail it);
#     the pusher is killed after two more notes while an object is being
#     written (frozen with SIGSTOP to check that, then SIGKILL), whatever
#     the machine's speed: every note left names a segment stored
#     exactly once that fetches back identical (nothing acknowledged early),
#     every segment fetches back identical or is absent (exit 1): temporary
#     files are never visible; re-running the archiver's sequence (one call
#     per .ready file, oldest first, .ready -> .done) archives everything
#     with exit 0, every segment fetches back identical, no note is left.
#  5. notes and changed files: the pusher started for A leaves notes for B,
#     C and D; B
#     rewritten in place (new mtime) and C replaced by another file (new
#     inode) are refused with exit 7 (the note is not honoured, the stored
#     object is untouched, the note is gone); with the original bytes back,
#     the calls succeed.  D rewritten in place with its mtime restored is
#     reported (informational: notes identify a file by dev:inode:size:mtime).
#  7. (run before 6) an unwritable repository: the asynchronous call fails with a
#     synchronous push's exit code, the status names the error, nothing is
#     acknowledged, the archiver's sequence succeeds after the repair; a
#     pusher slower than archive-timeout (archive-timeout=1, the pusher
#     frozen with SIGSTOP while the call waits, so on any machine): the call
#     exits 12; once resumed the pusher finishes and the archiver's later
#     calls are answered from its notes.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
STANZA=ap$UW_PORT_BASE
SCALE=${UW_AP_SCALE:-12}
SPOOL=$T/spool
at_exit kill_own_processes

pg_dir "$SPOOL" 700
ASYNC_CMD="$PUSH --config $CONF --stanza $STANZA --archive-async --process-max 2 --spool-path $SPOOL %p"
BROKEN_CMD="$PUSH --config $T/missing.conf --stanza $STANZA --archive-async --process-max 2 --spool-path $SPOOL %p"

# --------------------------------------------------------------- 1. setup --
pg_init src "$P"
# wal_keep_size: the archived segments stay in pg_wal for steps 4 and 5.
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
set_archive_command src "$ASYNC_CMD"
first_seg=$(current_seg "$P")
t0=$(now)
basebackup "$P" restore
note "pg_basebackup -X none through the async archive_command: $(elapsed "$t0") s"

# -------------------------------------------------------------- 2. backlog --
set_archive_command src "$BROKEN_CMD"
t0=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'backlog')" >/dev/null
switch_wal "$P" >/dev/null
nready=$(find "$T/src/pg_wal/archive_status" -name '*.ready' | wc -l)
note "pgbench -i -s $SCALE with a broken archive_command: $nready .ready files in $(elapsed "$t0") s"
((nready >= 8)) || die "expected a backlog of at least 8 .ready files, got $nready"
grep -q 'archive command failed with exit code 3' "$T/src.log" ||
    die "self-check: the broken archive_command did not fail with exit code 3"

log_off=$(stat -c %s "$T/src.log")
set_archive_command src "$ASYNC_CMD"
t_fix=$(now)
# A transaction count, not a duration (-T 10 kept the cores busy for 10 s
# on an idle machine whatever it wrote).
pgbench_run "$P" -n -t 500 -c 4 -j 2 >"$T/out/pgbench-run" 2>&1 ||
    { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
note "pgbench -t 500 -c 4 while catching up: $(grep -E '^tps' "$T/out/pgbench-run" | head -1)"
# Steps 4 and 5 need 19 archived segments past the first three: top up by
# amount, with updates of 100000 consecutive accounts each (a segment or
# two of WAL): a fraction of the CPU that pgbench transactions spend on the
# same WAL (a busy machine needed 24 rounds of pgbench -t 300 -c 4).
upd=0
while (($(seg_no "$(current_seg "$P")") < $(seg_no "$first_seg") + 23)); do
    lo=$(((upd % SCALE) * 100000))
    q "$P" "update pgbench_accounts set abalance = abalance + 1 where aid > $lo and aid <= $lo + 100000" >/dev/null ||
        die "update of pgbench_accounts failed"
    upd=$((upd + 1))
done
note "topped up with $upd updates of 100000 accounts"
q "$P" "insert into uw_marker values (2, 'after load')" >/dev/null
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 120
catchup_secs=$(elapsed "$t_fix")
row=$(q "$P" "select coalesce(last_archived_wal,'') from pg_stat_archiver")
[[ "$row" =~ ^[0-9A-F]{24}$ && "$row" > "$last_seg" ]] && last_seg=$row
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
note "backlog and load archived: $nseg segments $first_seg..$last_seg, $catchup_secs s after the repair"

# The pusher logs its summary when it leaves (a second after its last file).
wait_lock_free "$SPOOL/$STANZA/push" 30
tail -c +"$((log_off + 1))" "$T/src.log" >"$T/out/src-after-fix.log"
batches=$(grep -c 'pushed [0-9]* of [0-9]* ready files ahead of the archiver' "$T/out/src-after-fix.log" || true)
ahead=$(grep -o 'pushed [0-9]* of [0-9]* ready files' "$T/out/src-after-fix.log" | awk '{ s += $2 } END { print s + 0 }')
asked=$(grep -o 'pushed [0-9]* of [0-9]* ready files' "$T/out/src-after-fix.log" | awk '{ s += $4 } END { print s + 0 }')
noted=$(grep -c 'was archived asynchronously' "$T/out/src-after-fix.log" || true)
note "server log: $batches pusher runs pushed $ahead of $asked files ahead of the archiver; $noted calls answered from a note"
((batches >= 1)) || die "no asynchronous pusher in the server log ('pushed N of M ready files')"
assert_eq "$asked" "$ahead" "files pushed ahead of the archiver (all of those attempted)"
((noted >= 7)) || die "only $noted archiver calls were answered from a note ('was archived asynchronously'), expected at least 7"
# The pusher's status for monitoring: backlog and outcome.
STATUS=$SPOOL/$STANZA/push/status
[[ -f "$STATUS" ]] || die "no pusher status file $STATUS"
grep -qx 'failed=0' "$STATUS" || die "the last pusher reports failures: $(tr '\n' ' ' <"$STATUS")"
grep -qx 'last-error=' "$STATUS" || die "the last pusher reports an error: $(tr '\n' ' ' <"$STATUS")"
grep -Eqx 'ready=[0-9]+' "$STATUS" || die "no backlog in the status: $(tr '\n' ' ' <"$STATUS")"
grep -Eqx 'pushed=[1-9][0-9]*' "$STATUS" || die "the last pusher pushed nothing: $(tr '\n' ' ' <"$STATUS")"
ok "pusher status: $(tr '\n' ' ' <"$STATUS")"
! grep -q 'asynchronous push of .* failed' "$T/out/src-after-fix.log" ||
    die "failed asynchronous pushes: $(grep 'asynchronous push of .* failed' "$T/out/src-after-fix.log" | head -3)"
# The archiver may have run the broken command once more before it reloaded;
# any other failure is one of ours.
bad=$(grep 'archive command failed' "$T/out/src-after-fix.log" | grep -v 'exit code 3' | head -3 || true)
[[ -z "$bad" ]] || die "archive_command failed after the repair: $bad"
ok "asynchronous archiving caught up with the backlog and the load"

for seg in $(seg_range "$first_seg" "$last_seg"); do
    n=$(stored_objects "$seg" | grep -c . || true)
    [[ "$n" == 1 ]] || die "segment $seg: $n objects in the repository, expected 1: $(stored_objects "$seg" | tr '\n' ' ')"
done
tmp=$(repo_temp_files)
[[ -z "$tmp" ]] || die "temporary files left in the repository: $tmp"
ok "all $nseg segments stored exactly once, no temporary file in the repository"
# A note for a file the archiver already marked .done would be stale.
stale=""
for n in "$SPOOL/$STANZA/push/"*.ok; do
    [[ -e "$n" ]] || continue
    f=$(basename "$n" .ok)
    [[ -e "$T/src/pg_wal/archive_status/$f.done" ]] && stale+="$f "
done
[[ -z "$stale" ]] || die "notes left for files already marked .done: $stale"
ok "no note left for an archived (.done) file"

# ------------------------------------------------------------- 3. recovery --
src_sum=$(table_checksum "$P")
setup_restore restore "$P_RESTORE"
pg_conf restore "restore_command = '$FETCH --config $CONF --stanza $STANZA --archive-get-queue-max=128MiB --process-max=2 %f %p'"
RSPOOL=$T/restore/pg_wal/ue-wal-prefetch
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 150
t_promoted=$(now)
restore_secs=$(elapsed "$t0")
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/restore.log" || true)
delivered=$(grep -c 'delivered [0-9A-F]\{24\} from the prefetch queue' "$T/restore.log" || true)
note "recovery: $restored segments restored, $delivered of them delivered from the prefetch queue, promoted after $restore_secs s ($(ratio "$restored" "$restore_secs") segs/s)"
((restored >= nseg - 1)) || die "recovery restored only $restored segments, expected about $nseg"
((delivered * 2 > restored)) ||
    die "only $delivered of $restored segments were delivered from the prefetch queue (expected most)"
grep -q -E 'prefetch of .* failed' "$T/restore.log" &&
    die "prefetch failures in the recovery log: $(grep -E 'prefetch of .* failed' "$T/restore.log" | head -3)"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "restored cluster differs from the source"
fi
assert_eq "after load" "$(q "$P_RESTORE" "select note from uw_marker where id = 2")" "last marker row recovered"
ok "restored cluster matches the source ($(grep -c . <<<"$src_sum") tables, $(q "$P_RESTORE" "select count(*) from pgbench_accounts") accounts)"
[[ -n "$(spool_lock_holders "$RSPOOL")" ]] && note "the prefetcher is still running after promotion (expected: it leaves ~30 s after the last request)"

# ----------------------------------------------- 4. SIGKILL during a batch --
# Archived segments still in pg_wal, past the first three (nearly empty,
# they compress at once): 12 for the crash, 4 for step 5.
mapfile -t done_segs < <(find "$T/src/pg_wal/archive_status" -name '*.done' -printf '%f\n' |
    sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | sort)
((${#done_segs[@]} >= 19)) || die "only ${#done_segs[@]} archived segments left in pg_wal, want 19"
crash_segs=("${done_segs[@]:3:12}")
note_segs=("${done_segs[@]:15:4}")
CRASH_REPO=$T/repo-crash
CRASH_CONF=$T/crash.conf
CRASH_SPOOL=$T/spool-crash
pg_dir "$CRASH_SPOOL" 700
# archive-timeout: a call waits for a level-16 segment (a minute on a loaded
# machine); the bound only catches a hang. Level 16, not 19: seconds per
# segment either way (the state to kill in lasts), but 19 cost ~20 s of CPU
# per segment against ~2 s.
write_config -f "$CRASH_CONF" -r "$CRASH_REPO" -s "$STANZA" compress-level=16 archive-async=y \
    process-max=2 spool-path="$CRASH_SPOOL" archive-timeout=1200
assert_exit_pg 0 "$PITR" --config "$CRASH_CONF" --stanza "$STANZA" stanza-create
wal_dir_ready "$T/crashwal" "$T/src/pg_wal" "${crash_segs[@]}"
pg_dir "$T/orig" 755
cp "$T/crashwal/"[0-9A-F]* "$T/orig/"
NOTES=$CRASH_SPOOL/$STANZA/push

# fetch_check CONF REPO SEG: SEG fetches back identical to $T/orig/SEG (exit
# 0) or is not in the archive (exit 1, and no object is stored); anything
# else fails the test.  Sets FETCHED=1 or 0.
pg_dir "$T/fetched" 700
fetch_check() {
    local conf=$1 repo=$2 seg=$3
    rm -f "$T/fetched/$seg"
    run as_pg "$FETCH" --config "$conf" --stanza "$STANZA" "$seg" "$T/fetched/$seg"
    case $LAST_RC in
    0)
        cmp -s "$T/orig/$seg" "$T/fetched/$seg" || die "$seg fetches back different bytes"
        FETCHED=1 ;;
    1)
        [[ -z "$(stored_objects "$seg" "$repo")" ]] || die "$seg: fetch says not found, but $(stored_objects "$seg" "$repo") exists"
        FETCHED=0 ;;
    *)
        cat "$LAST_ERR" >&2
        die "ue-wal-fetch $seg exited $LAST_RC (expected 0 or 1)" ;;
    esac
    rm -f "$T/fetched/$seg"
}

t0=$(now)
pg_bg crash-push "$PUSH" --config "$CRASH_CONF" --stanza "$STANZA" "$T/crashwal/${crash_segs[0]}"
# The call returns once its segment is stored; the pusher goes on.
wait "$BG_JOB" && crash_rc=0 || crash_rc=$?
((crash_rc == 0)) || die "the async call for ${crash_segs[0]} exited $crash_rc: $(cat "$T/out/crash-push.err")"
[[ ! -e "$NOTES/${crash_segs[0]}.ok" ]] || die "the note for ${crash_segs[0]} was not consumed by its call"
note "the call for ${crash_segs[0]} returned 0 after $(elapsed "$t0") s"
# Kill the pusher once it has acknowledged two more files (notes) while
# another object is still being written (zstd level 16: seconds per segment,
# so the state lasts). It is frozen (SIGSTOP) before the check that counts,
# so the kill hits that very state however fast the machine is. Up to 300 s
# without progress (no note, no temporary object growing) is a hang.
deadline=$((SECONDS + 300))
seen=""
while :; do
    pusher=$(spool_lock_holders "$NOTES")
    [[ -n "$pusher" ]] || die "the pusher ended before it could be killed (after $(elapsed "$t0") s): $(cat "$T/out/crash-push.err")"
    nnotes=$(find "$NOTES" -name '*.ok' 2>/dev/null | wc -l)
    ntmp=$(repo_temp_files "$CRASH_REPO" | wc -l)
    if ((nnotes >= 2 && ntmp >= 1)); then
        # shellcheck disable=SC2086 # one pid per line
        kill -STOP $pusher
        nnotes=$(find "$NOTES" -name '*.ok' 2>/dev/null | wc -l)
        ntmp=$(repo_temp_files "$CRASH_REPO" | wc -l)
        ((nnotes >= 2 && ntmp >= 1)) && break
        # shellcheck disable=SC2086 # one pid per line
        kill -CONT $pusher
    fi
    mark="$nnotes $(repo_temp_files "$CRASH_REPO" | xargs -r stat -c %s 2>/dev/null | tr '\n' ' ' || true)"
    if [[ "$mark" != "$seen" ]]; then
        seen=$mark
        deadline=$((SECONDS + 300))
    fi
    ((SECONDS < deadline)) || die "the pusher made no progress for 300 s ($nnotes notes, $ntmp objects being written)"
    sleep 0.05
done
# shellcheck disable=SC2086 # one pid per line
kill -KILL $pusher
wait_lock_free "$NOTES" 60
note "killed the pusher (pid ${pusher//$'\n'/ }) after $(elapsed "$t0") s: $nnotes note(s), $ntmp object(s) being written"
fetch_check "$CRASH_CONF" "$CRASH_REPO" "${crash_segs[0]}"
((FETCHED)) || die "${crash_segs[0]} was acknowledged (exit 0) but is not in the archive"

mapfile -t noted_segs < <(find "$NOTES" -name '*.ok' -printf '%f\n' | sed 's/\.ok$//' | sort)
for seg in "${noted_segs[@]}"; do
    objs=$(stored_objects "$seg" "$CRASH_REPO")
    [[ $(grep -c . <<<"$objs") == 1 && -n "$objs" ]] || die "note for $seg, but $(grep -c . <<<"$objs") objects stored: $objs"
    [[ "$(cut -c1-64 "$NOTES/$seg.ok")" == "$(sha "$T/orig/$seg")" ]] ||
        die "the note for $seg does not hold the segment's SHA-256: $(cat "$NOTES/$seg.ok")"
    fetch_check "$CRASH_CONF" "$CRASH_REPO" "$seg"
    ((FETCHED)) || die "note for $seg, but it is not in the archive"
done
ok "${#noted_segs[@]} note(s) after SIGKILL, each for a segment stored once that fetches back identical"
stored=0
for seg in "${crash_segs[@]}"; do
    n=$(stored_objects "$seg" "$CRASH_REPO" | grep -c . || true)
    ((n <= 1)) || die "$seg: $n objects after the kill"
    fetch_check "$CRASH_CONF" "$CRASH_REPO" "$seg"
    stored=$((stored + FETCHED))
done
ntmp=$(repo_temp_files "$CRASH_REPO" | wc -l)
ok "after SIGKILL: $stored of ${#crash_segs[@]} segments stored and intact, the others absent; $ntmp temporary file(s) left, never visible"

t0=$(now)
archive_ready_dir "$T/crashwal" "$PUSH" --config "$CRASH_CONF" --stanza "$STANZA" --compress-level 3
((ARCHIVE_RC == 0)) || { tail -5 "$ARCHIVE_LOG" >&2; die "archiver sequence after the crash: $ARCHIVE_FAILED failed with exit code $ARCHIVE_RC"; }
from_notes=$(grep -c 'was archived asynchronously' "$ARCHIVE_LOG" || true)
note "archiver sequence after the crash: $ARCHIVE_CALLS calls, $from_notes answered from a note, $(elapsed "$t0") s"
((from_notes >= 1)) || die "no call of the archiver sequence was answered from a note"
for seg in "${crash_segs[@]}"; do
    [[ $(stored_objects "$seg" "$CRASH_REPO" | grep -c . || true) == 1 ]] || die "$seg not stored exactly once after the re-run"
    fetch_check "$CRASH_CONF" "$CRASH_REPO" "$seg"
    ((FETCHED)) || die "$seg not archived after the re-run"
done
left=$(find "$NOTES" -name '*.ok' -printf '%f ')
[[ -z "$left" ]] || die "notes left after the archiver sequence: $left"
ok "re-run archived all ${#crash_segs[@]} segments (exit 0), all fetch back identical, no note left"

# ------------------------------------------------ 5. notes and changed files --
A=${note_segs[0]} B=${note_segs[1]} C=${note_segs[2]} D=${note_segs[3]}
wal_dir_ready "$T/notewal" "$T/src/pg_wal" "${note_segs[@]}"
cp "$T/notewal/"[0-9A-F]* "$T/orig/"
NPUSH=("$PUSH" --config "$CRASH_CONF" --stanza "$STANZA" --compress-level 3)
assert_exit_pg 0 "${NPUSH[@]}" "$T/notewal/$A"
mv "$T/notewal/archive_status/$A.ready" "$T/notewal/archive_status/$A.done"
wait_lock_free "$NOTES" 60
for s in "$B" "$C" "$D"; do
    [[ -f "$NOTES/$s.ok" ]] || die "the batch for $A left no note for $s: $(cat "$LAST_ERR")"
done
sum_b=$(sha "$(stored_objects "$B" "$CRASH_REPO")")
sum_c=$(sha "$(stored_objects "$C" "$CRASH_REPO")")
# B: rewritten in place (same inode, new mtime).
sleep 0.05
flip_byte "$T/notewal/$B" $((8 * 1024 * 1024 + 4096 + 100))
assert_exit_pg 7 "${NPUSH[@]}" "$T/notewal/$B"
grep -q 'different checksum' "$LAST_ERR" || die "exit 7 for $B without the mismatch message: $(cat "$LAST_ERR")"
[[ ! -e "$NOTES/$B.ok" ]] || die "the note for the rewritten $B is still there"
assert_exit_pg 7 "${NPUSH[@]}" "$T/notewal/$B"
[[ "$(sha "$(stored_objects "$B" "$CRASH_REPO")")" == "$sum_b" ]] || die "the stored object of $B changed"
ok "note for $B rewritten in place: not honoured (exit 7 twice), stored object untouched"
# C: replaced by another file (new inode).
cp "$T/orig/$C" "$T/notewal/$C.new"
flip_byte "$T/notewal/$C.new" $((12 * 1024 * 1024 + 77))
[[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$T/notewal/$C.new"
mv "$T/notewal/$C.new" "$T/notewal/$C"
assert_exit_pg 7 "${NPUSH[@]}" "$T/notewal/$C"
[[ "$(sha "$(stored_objects "$C" "$CRASH_REPO")")" == "$sum_c" ]] || die "the stored object of $C changed"
ok "note for $C replaced by another file: not honoured (exit 7), stored object untouched"
# The original bytes again (a new file): pushed again, recognised, exit 0.
for s in "$B" "$C"; do
    cp "$T/orig/$s" "$T/notewal/$s"
    assert_exit_pg 0 "${NPUSH[@]}" "$T/notewal/$s"
    grep -q "$s already archived" "$LAST_ERR" || die "$s with its original bytes: no '$s already archived' in: $(cat "$LAST_ERR")"
    mv "$T/notewal/archive_status/$s.ready" "$T/notewal/archive_status/$s.done"
done
ok "with their original bytes back, $B and $C are recognised as archived (exit 0)"
# D: rewritten in place, modification time put back (informational).
touch -r "$T/notewal/$D" "$T/out/mtime-ref"
flip_byte "$T/notewal/$D" $((8 * 1024 * 1024 + 999))
touch -r "$T/out/mtime-ref" "$T/notewal/$D"
run as_pg "${NPUSH[@]}" "$T/notewal/$D"
if ((LAST_RC == 0)) && grep -q 'archived asynchronously' "$LAST_ERR"; then
    note "LIMITATION: $D rewritten in place with its mtime restored: the note was honoured (exit 0) although the bytes differ from what is stored (notes identify a file by dev:inode:size:mtime)"
else
    ok "$D rewritten in place with its mtime restored: not honoured (exit $LAST_RC)"
fi
for seg in "${note_segs[@]}"; do
    fetch_check "$CRASH_CONF" "$CRASH_REPO" "$seg"
    ((FETCHED)) || die "$seg is not archived"
done
ok "segments of step 5 fetch back with their original bytes"

# --------------------------------- 7. repository refusing, archive-timeout --
# The repository's archive directory is not writable for PostgreSQL's user:
# the asynchronous call fails with the code a synchronous push gets, the
# pusher's status names the error, nothing is acknowledged; once repaired the
# archiver's sequence archives everything. Then a pusher slower than
# archive-timeout: the call fails with exit 12 and a later call is answered
# from the note the pusher left.
OUT_REPO=$T/repo-out
OUT_SPOOL=$T/spool-out
pg_dir "$OUT_SPOOL" 700
write_config -f "$T/out.conf" -r "$OUT_REPO" -s "$STANZA" archive-async=y process-max=2 \
    spool-path="$OUT_SPOOL" archive-timeout=1200
assert_exit_pg 0 "$PITR" --config "$T/out.conf" --stanza "$STANZA" stanza-create
wal_dir_ready "$T/outwal" "$T/src/pg_wal" "${note_segs[@]}"
OPUSH=("$PUSH" --config "$T/out.conf" --stanza "$STANZA")
mkdir -p "$OUT_REPO/$STANZA/archive"
chmod 0550 "$OUT_REPO/$STANZA/archive"
[[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$OUT_REPO/$STANZA/archive"
run as_pg "${OPUSH[@]}" --archive-async=n "$T/outwal/$A"
sync_rc=$LAST_RC
((sync_rc > 1 && sync_rc < 126)) || die "a synchronous push into an unwritable repository exited $sync_rc: $(cat "$LAST_ERR")"
run as_pg "${OPUSH[@]}" "$T/outwal/$A"
((LAST_RC == sync_rc)) || die "the asynchronous call exited $LAST_RC, the synchronous one $sync_rc: $(cat "$LAST_ERR")"
grep -q "$A" "$LAST_ERR" || die "the asynchronous call's error does not name $A: $(cat "$LAST_ERR")"
wait_lock_free "$OUT_SPOOL/$STANZA/push" 30
OSTATUS=$OUT_SPOOL/$STANZA/push/status
grep -Eqx 'failed=[1-9][0-9]*' "$OSTATUS" || die "the pusher's status shows no failure: $(tr '\n' ' ' <"$OSTATUS")"
grep -Eq '^last-error=.+' "$OSTATUS" || die "the pusher's status has no last error: $(tr '\n' ' ' <"$OSTATUS")"
[[ -z "$(find "$OUT_SPOOL" -name '*.ok')" ]] || die "notes written although nothing could be stored: $(find "$OUT_SPOOL" -name '*.ok')"
[[ -z "$(find "$OUT_REPO" -type f -name '0*')" ]] || die "objects in the unwritable repository"
ok "unwritable repository: exit $LAST_RC like a synchronous push, status: $(grep last-error "$OSTATUS" | cut -c1-90)..., nothing acknowledged"
chmod 0750 "$OUT_REPO/$STANZA/archive"
archive_ready_dir "$T/outwal" "${OPUSH[@]}"
((ARCHIVE_RC == 0)) || { tail -5 "$ARCHIVE_LOG" >&2; die "archiver sequence after the repair: $ARCHIVE_FAILED failed with exit code $ARCHIVE_RC"; }
for seg in "${note_segs[@]}"; do
    fetch_check "$T/out.conf" "$OUT_REPO" "$seg"
    ((FETCHED)) || die "$seg is not archived after the repair"
done
ok "after the repair the archiver's sequence archived all ${#note_segs[@]} segments"

SLOW_REPO=$T/repo-slow
SLOW_SPOOL=$T/spool-slow
pg_dir "$SLOW_SPOOL" 700
write_config -f "$T/slow.conf" -r "$SLOW_REPO" -s "$STANZA" archive-async=y process-max=2 \
    spool-path="$SLOW_SPOOL" compress-level=16 archive-timeout=1
assert_exit_pg 0 "$PITR" --config "$T/slow.conf" --stanza "$STANZA" stanza-create
# Two segments, one per worker: the one whose call times out and one more.
wal_dir_ready "$T/slowwal" "$T/src/pg_wal" "${crash_segs[@]:0:2}"
SPUSH=("$PUSH" --config "$T/slow.conf" --stanza "$STANZA")
SLOW_NOTES=$SLOW_SPOOL/$STANZA/push
t0=$(now)
# The call starts a pusher and waits 1 s for its note. The pusher (the lock
# holder that is neither the call nor the call's short-lived first child) is
# frozen as soon as it is seen, so it is slower than archive-timeout on any
# machine; compress-level 16 only makes sure it has not stored the first
# segment by then (a second or more of work against a poll of a few
# milliseconds).
pg_bg slow-call "${SPUSH[@]}" "$T/slowwal/${crash_segs[0]}"
slow_call=$BG_PID
slow_job=$BG_JOB
deadline=$((SECONDS + 300))
spusher=""
while [[ -z "$spusher" ]]; do
    for p in $(spool_lock_holders "$SLOW_NOTES"); do
        [[ "$p" != "$slow_call" && "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" != "$slow_call" ]] && spusher=$p
    done
    [[ -n "$spusher" ]] && break
    ((SECONDS < deadline)) || die "no pusher started by the call within 300 s: $(cat "$T/out/slow-call.err")"
    sleep 0.01
done
kill -STOP "$spusher"
[[ -z "$(stored_objects "${crash_segs[0]}" "$SLOW_REPO")" ]] ||
    die "the pusher stored ${crash_segs[0]} before it could be frozen: cannot make it slower than archive-timeout"
wait "$slow_job" && LAST_RC=0 || LAST_RC=$?
kill -CONT "$spusher"
((LAST_RC == 12)) || die "a call waiting longer than archive-timeout exited $LAST_RC (want 12): $(cat "$T/out/slow-call.err")"
grep -q 'archive-timeout' "$T/out/slow-call.err" || die "exit 12 without naming archive-timeout: $(cat "$T/out/slow-call.err")"
note "archive-timeout=1, pusher frozen: exit 12 after $(elapsed "$t0") s"
wait_lock_free "$SLOW_NOTES" 300
archive_ready_dir "$T/slowwal" "${SPUSH[@]}"
((ARCHIVE_RC == 0)) || { tail -5 "$ARCHIVE_LOG" >&2; die "archiver sequence after the timeout: $ARCHIVE_FAILED failed with exit code $ARCHIVE_RC"; }
from_notes=$(grep -c 'was archived asynchronously' "$ARCHIVE_LOG" || true)
((from_notes == 2)) || die "after the pusher finished, only $from_notes of 2 calls were answered from a note"
ok "after the timeout the pusher finished: the archiver's 2 calls were answered from its notes"

# ------------------------------------------ 6. the prefetcher leaves, cleans --
left=$(awk -v a="$(now)" -v b="$t_promoted" 'BEGIN { printf "%d", 45 - (a - b) }')
((left > 0)) || left=1
wait_prefetcher_gone "$RSPOOL" "$left"
gone_after=$(elapsed "$t_promoted")
note "prefetcher gone and spool empty $gone_after s after promotion (spool now holds: $(find "$RSPOOL" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null))"
[[ -z "$(own_pids ue-wal-fetch)" ]] || die "ue-wal-fetch processes still running: $(own_pids ue-wal-fetch | tr '\n' ' ')"
ok "the prefetcher exited and emptied its spool"
note "summary: backlog $nready .ready, $nseg segments archived, $batches batches, $noted calls from notes, catch-up ${catchup_secs}s; recovery ${restore_secs}s, $delivered/$restored from the prefetch queue; prefetcher gone ${gone_after}s after promotion"
