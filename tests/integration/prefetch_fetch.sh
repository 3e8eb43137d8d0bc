#!/usr/bin/env bash
# prefetch_fetch: the prefetching ue-wal-fetch (archive-get-queue-max) across
# a timeline switch, with segment numbers present on both timelines.
#
#  1. cluster "src" (timeline 1) archives through ue-wal-push; pg_basebackup
#     -X none; load, rows "tl1-before", restore point RP in segment N, rows
#     "tl1-after", load and WAL switches: timeline 1 goes on to >= N+10.
#  2. a copy of the base backup recovers to RP (plain ue-wal-fetch) and is
#     promoted: timeline 2, archiving into the same stanza; load, rows "tl2",
#     WAL switches up to >= N+8.  Timelines 1 and 2 both have segments
#     N..N+8, with different contents.
#  3. by hand, with --archive-get-queue-max=128MiB --process-max=2
#     --spool-path: timeline 1's N..N+3, each delivered identical to a fetch
#     without prefetch; once the prefetcher has spooled timeline 1's N+4,
#     timeline 2's N+4 is asked for: it must be timeline 2's bytes.  Then
#     the prefetcher follows timeline 2 (spools its N+5, drops timeline 1's
#     segments); N+5..N+7 of timeline 2, at least one from the queue;
#     timeline 1's N+5 again
#     (timeline 1's bytes), and a quick alternation between the timelines on
#     N+6..N+8: every delivery equals the right timeline's object.
#  4. recovery of another copy of the base backup with the prefetching
#     restore_command and recovery_target_timeline = latest: timeline 2's
#     data ("tl2" rows present, "tl1-after" absent, every table's checksum as
#     on timeline 2 at its end), no timeline 1 segment at or after N
#     restored, promoted onto timeline 3.
#  5. both prefetchers exit and empty their spools ~30 s after their last
#     request; no ue-wal-fetch process is left.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_TL2=$((P + 1))
P_REC=$((P + 2))
STANZA=pf$UW_PORT_BASE
RP=uw_switch_point
QUEUE=(--archive-get-queue-max=128MiB --process-max=2)
at_exit kill_own_processes

# load PORT SECONDS TAG: pgbench load.
load() {
    pgbench_run "$1" -n -c 2 -j 2 -T "$2" >"$T/out/pgbench-$3" 2>&1 ||
        { tail "$T/out/pgbench-$3"; die "pgbench ($3) on port $1 failed"; }
}
marks() { q "$1" "insert into uw_marks(phase, n) select '$2', g from generate_series(1, $3) g" >/dev/null; }
count_marks() { q "$1" "select count(*) from uw_marks where phase = '$2'"; }
# switches PORT N TAG: N times a little write then a WAL switch; prints the
# last segment switched out of.
switches() {
    local i s=""
    for ((i = 1; i <= $2; i++)); do
        q "$1" "insert into uw_marks(phase, n) values ('$3-switch', $i)" >/dev/null
        s=$(switch_wal "$1")
    done
    echo "$s"
}
timeline() { q "$1" "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"; }

# ------------------------------------------------------ 1. timeline 1 --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 2 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create table uw_marks(id serial primary key, phase text not null, n int)" >/dev/null
basebackup "$P" base
load "$P" 3 tl1-a
marks "$P" tl1-before 10
rp_lsn=$(q "$P" "select pg_create_restore_point('$RP')")
rp_seg=$(q "$P" "select pg_walfile_name('$rp_lsn')")
N=$(seg_no "$rp_seg")
marks "$P" tl1-after 10
load "$P" 2 tl1-b
tl1_last=$(switches "$P" 12 tl1)
wait_archived "$P" "$tl1_last" 60
(($(seg_no "$tl1_last") >= N + 10)) || die "timeline 1 ends at $tl1_last, expected >= N+10 (N = $rp_seg)"
note "timeline 1: restore point '$RP' at $rp_lsn in $rp_seg (N), archived up to $tl1_last"

# ------------------------------------------------------ 2. timeline 2 --
cp -a "$T/base" "$T/tl2"
setup_restore tl2 "$P_TL2"
pg_conf tl2 "recovery_target_name = '$RP'" "recovery_target_action = 'promote'" \
    "archive_mode = on" "archive_command = '$PUSH --config $CONF --stanza $STANZA %p'"
pg_start tl2
wait_promoted "$P_TL2" 120
assert_eq 2 "$(timeline "$P_TL2")" "the cluster restored to '$RP' writes on timeline"
assert_eq 0 "$(count_marks "$P_TL2" tl1-after)" "rows of timeline 1 after the restore point on timeline 2"
pg_stop src
load "$P_TL2" 3 tl2
marks "$P_TL2" tl2 10
# Timeline 2 starts inside segment N: nine switches end it at N+8 or later
# whatever WAL the time-bound load above wrote (a slow, sanitized build
# writes less of it in 3 s).
tl2_last=$(switches "$P_TL2" 9 tl2)
[[ "$tl2_last" == 00000002* ]] || die "switched segment $tl2_last is not on timeline 2"
wait_archived "$P_TL2" "$tl2_last" 60
(($(seg_no "$tl2_last") >= N + 8)) || die "timeline 2 ends at $tl2_last, expected >= N+8"
sum_tl2=$(table_checksum "$P_TL2")
[[ -n "$(stored_objects 00000002.history)" ]] || die "00000002.history is not in the repository"
pg_stop tl2
note "timeline 2 archived up to $tl2_last"

# ---------------------------------------------- 3. by hand, both timelines --
s1() { seg_name 00000001 $((N + $1)); } # timeline 1's N+k
s2() { seg_name 00000002 $((N + $1)); } # timeline 2's N+k
pg_dir "$T/ref" 700
for k in $(seq 0 8); do
    for s in "$(s1 "$k")" "$(s2 "$k")"; do
        assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$s" "$T/ref/$s"
    done
    ! cmp -s "$T/ref/$(s1 "$k")" "$T/ref/$(s2 "$k")" || die "self-check: $(s1 "$k") and $(s2 "$k") are identical"
done
ok "reference copies (no prefetch) of N..N+8 on both timelines; they differ pairwise"

pg_dir "$T/hand" 700
pg_dir "$T/hand/pg_wal" 700
pg_dir "$T/spool-hand" 700
HSPOOL=$T/spool-hand/$STANZA/fetch
HFETCH=("$FETCH" --config "$CONF" --stanza "$STANZA" "${QUEUE[@]}" --spool-path "$T/spool-hand")
FROM_QUEUE=0
# get NAME: fetch NAME with prefetch by hand, as PostgreSQL would into
# pg_wal/RECOVERYXLOG, and compare with the reference copy.
get() {
    local s=$1 dest=$T/hand/pg_wal/RECOVERYXLOG
    rm -f "$dest"
    assert_exit_pg 0 "${HFETCH[@]}" "$s" "$dest"
    if ! cmp -s "$dest" "$T/ref/$s"; then
        local other
        for other in "$T"/ref/*; do
            cmp -s "$dest" "$other" && die "asked for $s, got the bytes of $(basename "$other")"
        done
        die "asked for $s, got bytes that match no archived segment"
    fi
    FROM_QUEUE=0
    grep -q "delivered $s from the prefetch queue" "$LAST_ERR" && FROM_QUEUE=1
    rm -f "$dest"
    return 0
}
# wait_spooled NAME TIMEOUT: until the prefetcher has NAME in its spool.
wait_spooled() {
    local deadline=$((SECONDS + $2))
    until [[ -f "$HSPOOL/$1" ]]; do
        ((SECONDS < deadline)) || die "the prefetcher did not spool $1 within $2 s (spool: $(spool_segments "$HSPOOL" | tr '\n' ' '))"
        sleep 0.05
    done
}
for k in 0 1 2 3; do get "$(s1 "$k")"; done
wait_spooled "$(s1 4)" 20
note "timeline 1 N..N+3 delivered identical; the spool holds $(spool_segments "$HSPOOL" | tr '\n' ' ')"
get "$(s2 4)"
ok "timeline 2's N+4 asked for while timeline 1's N+4 was spooled: timeline 2's bytes (from the queue: $FROM_QUEUE)"
wait_spooled "$(s2 5)" 20
deadline=$((SECONDS + 60))
while [[ -n "$(spool_segments "$HSPOOL" | grep '^00000001' || true)" ]]; do
    ((SECONDS < deadline)) || die "timeline 1 segments still spooled 60 s after timeline 2 was asked for: $(spool_segments "$HSPOOL" | tr '\n' ' ')"
    sleep 0.05
done
ok "the prefetcher followed timeline 2: it spooled timeline 2's N+5 and dropped timeline 1's segments"
# Each of N+5..N+7 once spooled: at least one must come from the queue (not
# all: the prefetcher may drop the segment being asked for, see the report).
queued=0
for k in 5 6 7; do
    wait_spooled "$(s2 "$k")" 20
    get "$(s2 "$k")"
    queued=$((queued + FROM_QUEUE))
done
((queued >= 1)) || die "timeline 2's N+5..N+7 were spooled, but none was delivered from the prefetch queue"
ok "timeline 2's N+5..N+7 delivered with timeline 2's bytes, $queued of 3 from the queue"
get "$(s1 5)"
ok "back to timeline 1: N+5 has timeline 1's bytes"
queued=0
for k in 6 7 8; do
    get "$(s1 "$k")"
    queued=$((queued + FROM_QUEUE))
    get "$(s2 "$k")"
    queued=$((queued + FROM_QUEUE))
    get "$(s2 "$k")" # asked twice, as PostgreSQL may
done
ok "alternating timelines on N+6..N+8: every delivery had the right timeline's bytes ($queued from the queue)"
t_hand_last=$(now)

# ------------------------------------------- 4. recovery, timeline latest --
cp -a "$T/base" "$T/latest"
setup_restore latest "$P_REC"
pg_conf latest "restore_command = '$FETCH --config $CONF --stanza $STANZA ${QUEUE[*]} %f %p'" \
    "recovery_target_timeline = 'latest'"
RSPOOL=$T/latest/pg_wal/ue-wal-prefetch
t0=$(now)
pg_start latest
wait_promoted "$P_REC" 120
t_promoted=$(now)
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/latest.log" || true)
delivered=$(grep -c 'delivered [0-9A-F]\{24\} from the prefetch queue' "$T/latest.log" || true)
delivered2=$(grep -c 'delivered 00000002[0-9A-F]\{16\} from the prefetch queue' "$T/latest.log" || true)
note "recovery (timeline latest): $restored segments restored, $delivered from the prefetch queue ($delivered2 of timeline 2), promoted after $(elapsed "$t0") s"
((delivered >= 1)) || die "no segment was delivered from the prefetch queue"
wrong=$(grep -o 'restored log file "00000001[0-9A-F]\{16\}" from archive' "$T/latest.log" |
    grep -o '00000001[0-9A-F]\{16\}' | while read -r s; do
        (($(seg_no "$s") >= N)) && echo "$s"
    done || true)
[[ -z "$wrong" ]] || die "recovery restored timeline 1 segments at or after the switch ($rp_seg): $wrong"
tl2_restored=$(grep -c 'restored log file "00000002[0-9A-F]\{16\}" from archive' "$T/latest.log" || true)
((tl2_restored >= 9)) || die "recovery restored only $tl2_restored timeline 2 segments, expected >= 9"
ok "recovery restored timeline 1 only before $rp_seg and $tl2_restored timeline 2 segments from it on"
assert_eq 10 "$(count_marks "$P_REC" tl2)" "rows written only on timeline 2"
assert_eq 0 "$(count_marks "$P_REC" tl1-after)" "rows written on timeline 1 after the switch point"
assert_eq 10 "$(count_marks "$P_REC" tl1-before)" "rows written on timeline 1 before the switch point"
got=$(table_checksum "$P_REC")
if [[ "$got" != "$sum_tl2" ]]; then
    diff <(echo "$sum_tl2") <(echo "$got") >&2 || true
    die "recovered data differs from timeline 2's"
fi
ok "recovered data equals timeline 2's at its end ($(grep -c . <<<"$got") tables)"
assert_eq 3 "$(timeline "$P_REC")" "the recovered cluster writes on timeline"
grep -q -E 'prefetch of .* failed' "$T/latest.log" &&
    die "prefetch failures in the recovery log: $(grep -E 'prefetch of .* failed' "$T/latest.log" | head -3)"

# ---------------------------------------------- 5. the prefetchers leave --
left=$(awk -v a="$(now)" -v b="$t_hand_last" 'BEGIN { printf "%d", 45 - (a - b) }')
((left > 0)) || left=1
wait_prefetcher_gone "$HSPOOL" "$left"
note "hand prefetcher gone $(elapsed "$t_hand_last") s after its last request"
left=$(awk -v a="$(now)" -v b="$t_promoted" 'BEGIN { printf "%d", 45 - (a - b) }')
((left > 0)) || left=1
wait_prefetcher_gone "$RSPOOL" "$left"
note "recovery's prefetcher gone $(elapsed "$t_promoted") s after promotion (spool now holds: $(find "$RSPOOL" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null))"
[[ -z "$(own_pids ue-wal-fetch)" ]] || die "ue-wal-fetch processes still running: $(own_pids ue-wal-fetch | tr '\n' ' ')"
ok "both prefetchers exited and emptied their spools"
