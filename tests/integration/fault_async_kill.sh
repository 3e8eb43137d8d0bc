#!/usr/bin/env bash
# fault_async_kill: SIGKILL at random points of asynchronous pushes, the
# archiver's call and the detached pusher alike (issue 11's fault suite).
#  1. cluster "src" writes 8 full segments (pgbench -i) that stay in pg_wal.
#  Then rounds until 50 kills have landed, each with a fresh repository,
#  spool and pg_wal-like directory (copies of the 8 segments, .ready files):
#  2. the archiver's loop (oldest .ready first, .ready -> .done on exit 0)
#     with ue-wal-push --archive-async --process-max 2 --compress-level 12,
#     and a killer: a random 0-600 ms into each call, the call, its pusher, or
#     both are SIGKILLed (a third each; the call by its own pid, the
#     pusher picked by its spool lock, see pusher_pids); once 50 kills have landed the loop
#     runs without kills until no .ready is left.
#  3. nothing acknowledged early: every segment is .done, has exactly one
#     stored object, and fetches back byte-identical to the source.
#  4. the next pusher's start sweeps the temporaries the killed processes
#     left: after one more asynchronous call (a segment of its own), no
#     temporary file is left in the repository.  Printed: rounds, calls,
#     kills, temporaries seen before the sweep.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
STANZA=fa$UW_PORT_BASE
NSEG=8
# 50 kills (a sanitized build, slower per call: 20).
if [[ "$UW_SANITIZED" == 1 ]]; then KILLS=${UW_FA_KILLS:-20}; else KILLS=${UW_FA_KILLS:-50}; fi
at_exit kill_own_processes

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
first=$(current_seg "$P")
# Full segments of real data (pgbench -i writes its tables through WAL).
pgbench_run "$P" -i -s 12 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
last=$(switch_wal "$P")
mapfile -t segs < <(seg_range "$first" "$last" | head -n "$NSEG")
((${#segs[@]} == NSEG)) || die "only ${#segs[@]} segments written ($first .. $last)"
# A repository with the stanza created, copied for each round.
write_config -f "$T/template.conf" -r "$T/repo-template"
assert_exit_pg 0 "$PITR" --config "$T/template.conf" --stanza "$STANZA" stanza-create
q "$P" "checkpoint" >/dev/null
pg_stop src
note "segments ${segs[0]} .. ${segs[-1]} written"
# A high compression level keeps the pusher busy long enough for the kills
# to land in the middle of its work, not after it.
LEVEL=(--process-max 2 --compress-level 12)

# pusher_pids SPOOL: the detached pushers, picked by their lock on
# SPOOL/lock, never by name: a process that is not a lock holder (under
# LeakSanitizer, the tracer a process clones at its exit) is never killed.
# A lock holder whose parent is one of our ue-wal-push processes is left
# alone too: the daemon's short-lived middle fork, or a tracer cloned by a
# pusher (it shares the pusher's descriptor table, so it shows the lock).
pusher_pids() {
    local pid ppid ours
    ours=" $(own_pids ue-wal-push | tr '\n' ' ') "
    for pid in $(spool_lock_holders "$1"); do
        ppid=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null) || continue
        [[ -n "$ppid" && "$ours" != *" $ppid "* ]] && echo "$pid"
    done
    return 0
}


kills=0
calls=0
acked=0
killed_calls=0
killed_pushers=0
temps_swept=0
round=0
while ((kills < KILLS)); do
    round=$((round + 1))
    # A bound against a hang, per round (each round is progress).
    deadline=$((SECONDS + 300))
    # ------------------------------------------ 2. a round of random kills --
    repo=$T/repo-$round
    spool=$T/spool-$round
    cp -a "$T/repo-template" "$repo"
    write_config -f "$T/round-$round.conf" -r "$repo"
    pg_dir "$spool" 700
    wal=$T/wal-$round
    wal_dir_ready "$wal" "$T/src/pg_wal" "${segs[@]}"
    apush=("$PUSH" --config "$T/round-$round.conf" --stanza "$STANZA" --archive-async
        --spool-path "$spool" "${LEVEL[@]}")
    while :; do
        ((SECONDS < deadline)) || die "round $round made no progress in 300 s ($calls calls, $kills kills)"
        next=$(find "$wal/archive_status" -maxdepth 1 -name '*.ready' -printf '%f\n' | sort | head -1)
        [[ -n "$next" ]] || break
        next=${next%.ready}
        pg_bg "call$calls" "${apush[@]}" "$wal/$next"
        calls=$((calls + 1))
        call=$BG_PID
        job=$BG_JOB
        if ((kills < KILLS)); then
            ms=$((RANDOM % 600))
            sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
            what=$((RANDOM % 3))
            landed=0
            if ((what != 1)) && kill -KILL "$call" 2>/dev/null; then
                landed=1
                killed_calls=$((killed_calls + 1))
            fi
            if ((what != 0)); then
                pids=$(pusher_pids "$spool/$STANZA/push")
                if [[ -n "$pids" ]]; then
                    # shellcheck disable=SC2086 # one pid per word
                    kill -KILL $pids 2>/dev/null && landed=1 && killed_pushers=$((killed_pushers + 1))
                fi
            fi
            kills=$((kills + landed))
        fi
        if wait "$job"; then
            mv "$wal/archive_status/$next.ready" "$wal/archive_status/$next.done"
            acked=$((acked + 1))
        fi
    done

    # ------------------------------------ 3. nothing acknowledged early --
    back=$T/back-$round
    pg_dir "$back" 700
    for s in "${segs[@]}"; do
        [[ -e "$wal/archive_status/$s.done" ]] || die "round $round: $s was never acknowledged"
        n=$(stored_objects "$s" "$repo" | wc -l)
        [[ $n == 1 ]] || die "round $round: $s acknowledged with $n stored objects"
        assert_exit_pg 0 "$FETCH" --config "$T/round-$round.conf" --stanza "$STANZA" "$s" "$back/$s"
        cmp -s "$back/$s" "$wal/$s" || die "round $round: $s fetches back different from the source"
    done

    # -------------------------------------------------------- 4. the sweep --
    temps=$(repo_temp_files "$repo" | wc -l)
    temps_swept=$((temps_swept + temps))
    # The round's last pusher leaves when idle; the next one sweeps.
    wait_lock_free "$spool/$STANZA/push" 120
    extra=$(seg_add "${segs[-1]}" 1)
    wal_dir_ready "$wal-extra" "$T/src/pg_wal" "$extra"
    assert_exit_pg 0 "${apush[@]}" "$wal-extra/$extra"
    wait_lock_free "$spool/$STANZA/push" 120
    left=$(repo_temp_files "$repo" | wc -l)
    ((left == 0)) || die "round $round: $left temporary files left after the next pusher's sweep (before: $temps): $(repo_temp_files "$repo" | head -3 | tr '\n' ' ')"
    note "round $round: all ${#segs[@]} segments acknowledged, stored once, byte-identical; $temps temporaries swept by the next pusher ($kills kills so far)"
done
ok "$calls asynchronous calls in $round rounds, $kills SIGKILLs ($killed_calls calls, $killed_pushers pushers): 0 segments lost, 0 acknowledged early, $acked acknowledgements, $temps_swept temporaries left by the kills, 0 after the next sweep"
