#!/usr/bin/env bash
# prefetch_spool: the prefetch spool is checked before it is trusted, and a
# prefetcher whose spool goes away leaves at once (issue 10 item 9, issue 11
# item 5).
#
#  1. cluster "src" archives through ue-wal-push; pg_basebackup -X none;
#     pgbench and WAL switches: a dozen segments after the backup.
#  2. by hand (--spool-path), a spool that is not ours is refused with one
#     line naming it, and the call fetches directly (exit 0, right bytes, no
#     prefetcher): mode 0755; owned by another user (root, when the test runs
#     as root); a symbolic link to a good directory.
#  3. by hand, a spooled segment changed after the prefetcher verified it (one
#     byte flipped) is not delivered from the queue: it is discarded with a
#     warning and fetched from the repository (right bytes); one whose
#     checksum file is gone likewise; an untouched one is delivered from the
#     queue (control).
#  4. recovery A of a copy of the backup with the prefetching
#     restore_command (spool in pg_wal): promoted; its prefetcher lingers.
#     The data directory is then replaced by a fresh copy (as a restore rerun
#     with --delta clears pg_wal): A's prefetcher leaves within seconds (not
#     after its 30 s of silence, and without following the next recovery);
#     recovery B then starts there and gets a prefetcher of its own, the only
#     holder of B's spool lock, and B's segments come from the queue as A's
#     did (both rates printed).
#  5. B's spool removed by hand right after promotion: its prefetcher leaves
#     at once too; B's data is the source's.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_REC=$((P + 1))
STANZA=ps$UW_PORT_BASE
QUEUE=(--archive-get-queue-max=128MiB --process-max=2)
at_exit kill_own_processes

# -------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 512MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
basebackup "$P" base
first=$(current_seg "$P")
for i in $(seq 12); do
    pgbench_run "$P" -n -c 1 -t 50 >"$T/out/pgbench-$i" 2>&1 || { tail "$T/out/pgbench-$i"; die "pgbench failed"; }
    last_seg=$(switch_wal "$P")
done
wait_archived "$P" "$last_seg" 120
src_sum=$(table_checksum "$P")
pg_stop src
note "base backup taken in $first; archived up to $last_seg"
s() { seg_add "$first" "$1"; } # the segment k after the backup's first
# remove DIR: rm -rf DIR, again while a prefetcher still adds files to it
# (as an operator's or a restore's removal would race it).
remove() {
    local deadline=$((SECONDS + 30))
    until rm -rf "$1" 2>/dev/null && [[ ! -e "$1" ]]; do
        ((SECONDS < deadline)) || die "could not remove $1 within 30 s"
        sleep 0.1
    done
}

# ---------------------------------------------------- 2. foreign spools --
pg_dir "$T/hand" 700
pg_dir "$T/hand/pg_wal" 700
DEST=$T/hand/pg_wal/RECOVERYXLOG
# hand_fetch SPOOL_PATH NAME: fetch NAME with prefetch by hand; the bytes
# must be those of pg_wal/NAME of the source.
hand_fetch() {
    rm -f "$DEST"
    assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "${QUEUE[@]}" --spool-path "$1" "$2" "$DEST"
    cmp -s "$DEST" "$T/src/pg_wal/$2" || die "fetched $2 differs from the source's"
    rm -f "$DEST"
}
# refused SPOOL_PATH WHY: the spool SPOOL_PATH/STANZA/fetch is refused with a
# line naming it and saying WHY; no prefetcher holds its lock.
refused() {
    local dir=$1/$STANZA/fetch
    hand_fetch "$1" "$(s 1)"
    grep -q "prefetch disabled: .*'$dir'.*$2" "$LAST_ERR" ||
        { cat "$LAST_ERR" >&2; die "(2) a spool that $2 was not refused by name"; }
    [[ ! -e "$dir/lock" ]] || die "(2) a prefetcher was started in the refused spool $dir"
    ok "(2) spool that $2: refused, fetched directly ($(grep -o 'prefetch disabled: .*' "$LAST_ERR"))"
}
pg_dir "$T/sp-mode" 700
pg_dir "$T/sp-mode/$STANZA" 700
pg_dir "$T/sp-mode/$STANZA/fetch" 755
refused "$T/sp-mode" "has mode 0755"
if [[ $(id -u) -eq 0 ]]; then
    pg_dir "$T/sp-owner" 700
    pg_dir "$T/sp-owner/$STANZA" 700
    mkdir -m 700 "$T/sp-owner/$STANZA/fetch" # root's
    refused "$T/sp-owner" "is owned by uid 0"
else
    note "(2) not root: no other user to own a spool, owner case not run"
fi
pg_dir "$T/sp-link" 700
pg_dir "$T/sp-link/$STANZA" 700
pg_dir "$T/elsewhere" 700
ln -s "$T/elsewhere" "$T/sp-link/$STANZA/fetch"
refused "$T/sp-link" "is not a directory"

# ------------------------------------------------- 3. tampered segments --
pg_dir "$T/sp" 700
SP=$T/sp/$STANZA/fetch
# wait_spooled NAME: until the prefetcher has NAME (and its checksum) spooled.
wait_spooled() {
    local deadline=$((SECONDS + 60))
    until [[ -f "$SP/$1" ]]; do
        ((SECONDS < deadline)) || die "the prefetcher did not spool $1 within 60 s (spool: $(spool_segments "$SP" | tr '\n' ' '))"
        sleep 0.05
    done
}
hand_fetch "$T/sp" "$(s 1)"
wait_spooled "$(s 2)"
[[ -s "$SP/$(s 2).sha256" ]] || die "(3) spooled $(s 2) has no checksum beside it"
[[ "$(cut -c1-64 "$SP/$(s 2).sha256")" == "$(sha "$T/src/pg_wal/$(s 2)")" ]] || die "(3) the spooled checksum of $(s 2) is not its SHA-256"
flip_byte "$SP/$(s 2)" 12345
hand_fetch "$T/sp" "$(s 2)"
grep -q "delivered $(s 2) from the prefetch queue" "$LAST_ERR" && die "(3) a tampered spooled segment was delivered from the queue"
grep -q "spooled $(s 2) does not match the checksum it was verified with" "$LAST_ERR" ||
    { cat "$LAST_ERR" >&2; die "(3) no warning about the tampered spooled $(s 2)"; }
ok "(3) tampered spooled $(s 2): discarded with a warning, fetched from the repository (right bytes)"
wait_spooled "$(s 3)"
rm -f "$SP/$(s 3).sha256"
hand_fetch "$T/sp" "$(s 3)"
grep -q "delivered $(s 3) from the prefetch queue" "$LAST_ERR" && die "(3) a spooled segment without checksum was delivered from the queue"
grep -q "spooled $(s 3) has no checksum" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(3) no warning about $(s 3)'s missing checksum"; }
ok "(3) spooled $(s 3) without its checksum file: discarded, fetched from the repository"
wait_spooled "$(s 4)"
hand_fetch "$T/sp" "$(s 4)"
grep -q "delivered $(s 4) from the prefetch queue" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(3) control: intact spooled $(s 4) not delivered from the queue"; }
ok "(3) control: intact spooled $(s 4) delivered from the queue"
psp=$(spool_lock_holders "$SP")
[[ -n "$psp" ]] || die "(3) no prefetcher holds $SP/lock"
remove "$T/sp"
deadline=$((SECONDS + 10))
while kill -0 "$psp" 2>/dev/null; do
    ((SECONDS < deadline)) || die "(3) the prefetcher $psp still runs 10 s after its spool was removed"
    sleep 0.05
done

# ------------------------------------- 4. a stale prefetcher, a new recovery --
RSPOOL=$T/rec/pg_wal/ue-wal-prefetch
# recover TAG: recovery of a fresh copy of the base backup in $T/rec with
# the prefetching restore_command; sets REC_SECS, REC_SEGS (segments
# restored) and REC_QUEUED (of them from the prefetch queue).
recover() {
    remove "$T/rec"
    cp -a "$T/base" "$T/rec"
    setup_restore rec "$P_REC"
    pg_conf rec "restore_command = '$FETCH --config $CONF --stanza $STANZA ${QUEUE[*]} %f %p'"
    : >"$T/rec.log"
    local t0
    t0=$(now)
    pg_start rec
    wait_promoted "$P_REC" 180
    REC_SECS=$(elapsed "$t0")
    REC_SEGS=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/rec.log" || true)
    REC_QUEUED=$(grep -c 'delivered [0-9A-F]\{24\} from the prefetch queue' "$T/rec.log" || true)
    cp "$T/rec.log" "$T/out/rec-$1.log"
}
# gone PID WHAT: PID exits within 5 s (its 30 s of silence would be far
# longer: the last request was moments ago); prints how long it took.
gone() {
    local t0 deadline=$((SECONDS + 5))
    t0=$(now)
    while kill -0 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$2: prefetcher $1 still runs $(elapsed "$t0") s after its spool was removed"
        sleep 0.02
    done
    elapsed "$t0"
}
recover A
a_secs=$REC_SECS a_segs=$REC_SEGS a_queued=$REC_QUEUED
pa=$(spool_lock_holders "$RSPOOL")
[[ -n "$pa" ]] || die "(4) recovery A's prefetcher is not running after promotion (it stays 30 s after the last request)"
pg_stop rec immediate
kill -0 "$pa" 2>/dev/null || die "(4) recovery A's prefetcher $pa left before the spool was removed (stopping A took too long?)"
note "(4) recovery A: $a_segs segments in $a_secs s, $a_queued from the queue; its prefetcher (pid $pa) lingers"
# A restore rerun clears the data directory (pg_wal with it); recovery B
# starts in the same place.
remove "$T/rec"
pa_secs=$(gone "$pa" "(4) recovery A's")
ok "(4) A's prefetcher left $pa_secs s after its spool was removed"
recover B
b_secs=$REC_SECS b_segs=$REC_SEGS b_queued=$REC_QUEUED
pb=$(spool_lock_holders "$RSPOOL")
[[ -n "$pb" && "$pb" != "$pa" && $(grep -c . <<<"$pb") == 1 ]] || die "(4) B's spool lock is held by '$pb' (A's prefetcher was $pa)"
note "(4) recovery B: $b_segs segments in $b_secs s, $b_queued from the queue (A: $a_segs in $a_secs s, $a_queued from the queue); rate B/A $(ratio "$(ratio "$b_segs" "$b_secs" 3)" "$(ratio "$a_segs" "$a_secs" 3)" 2)"
((b_queued >= 1)) || die "(4) recovery B got no segment from the prefetch queue"
ok "(4) B had a prefetcher of its own (pid $pb) and $b_queued of $b_segs segments from its queue"

# --------------------------------------------------- 5. operator cleanup --
remove "$RSPOOL"
pb_secs=$(gone "$pb" "(5) recovery B's")
ok "(5) B's spool removed by hand after promotion: its prefetcher left after $pb_secs s"
assert_eq "$src_sum" "$(table_checksum "$P_REC")" "recovery B: data as on the source"
[[ -z "$(own_pids ue-wal-fetch)" ]] || die "ue-wal-fetch processes still running: $(own_pids ue-wal-fetch | tr '\n' ' ')"
