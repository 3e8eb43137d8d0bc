#!/usr/bin/env bash
# fault_async_kill: SIGKILL at random points of asynchronous pushes under a
# real PostgreSQL archiver and pgbench load, ending in a recovery (issue
# 11's fault suite: "SIGKILL at random points of at least 50 pushes ... the
# call and the detached pusher").
#  1. cluster "src" with 1 MiB WAL segments (initdb --wal-segsize=1: many
#     segments, cheaply), archive_command = ue-wal-push --archive-async
#     --process-max 2; a full ue-basebackup before any load.
#  2. pgbench -i, then pgbench runs, while a killer SIGKILLs (by pid) at
#     random points whatever can be killed right now, one kind at random:
#     the archiver's call, the detached pusher, the pusher while a
#     temporary of its own is in the repository (mid-write), or the call
#     and the pusher together.  The pusher is picked by its spool lock,
#     never by name (see scan_push: LeakSanitizer's tracer is never killed).
#     PostgreSQL restarts an archiver whose command died of a signal only
#     10 s after its last start, so only about one kill in ten includes a
#     call (spread over the run).  After each landed kill the killer waits
#     for progress (one more file acknowledged or stored), so the kills land
#     on many different pushes.  Meanwhile it checks every new .done file:
#     its object must already be stored.  The load runs until 50 kills have
#     landed (a sanitized build: 30).
#  3. the load stops, archiving finishes (pg_stat_archiver, a generous bound
#     on progress); then every file PostgreSQL acknowledged (.done) has
#     exactly one object whose name carries the SHA-256 of the file in
#     pg_wal (a sample fetches back byte-identical; the recovery fetches
#     every segment, verified against that SHA-256); nothing is lost: every
#     segment from the backup's start-wal to the last one is archived once.
#  4. the temporaries the killed pushers left: the pushers started after the
#     kills swept them (their log lines are counted); one more pusher start
#     (a new segment) leaves 0 temporaries in the repository.
#  5. recovery: ue-pitr restore of the backup (ue-wal-fetch as
#     restore_command) to the end of the archive, promoted, has exactly the
#     source's table contents.
# Printed: archiver calls (archived / failed), kills (calls, pushers, both,
# mid-write), early acknowledgements (0), temporaries swept during the run /
# before / after the last sweep, segments, recovery result.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_R=$((P + 1))
STANZA=fa$UW_PORT_BASE
SPOOL=$T/spool
# 1 MiB segments: 4096 per log id (for seg_range and friends).
UW_SEGS_PER_ID=4096
SCALE=${UW_FA_SCALE:-4}
# Level 15: a 1 MiB segment takes long enough to push (~0.1 s) for kills
# to land in the middle of pushes and of the calls waiting for them.
LEVEL=${UW_FA_LEVEL:-15}
# 50 kills (a sanitized build, slower per call and per scan: 30).
if [[ "$UW_SANITIZED" == 1 ]]; then KILLS=${UW_FA_KILLS:-30}; else KILLS=${UW_FA_KILLS:-50}; fi
# A killed call makes the archiver exit, and PostgreSQL restarts a failed
# archiver at most every 10 s (PGARCH_RESTART_INTERVAL): each costs ~10 s
# of the test, so CALL_KILLS kills (spread over the run) include a call,
# the others hit pushers, which the killed archiver's absence does not stop.
CALL_KILLS=${UW_FA_CALL_KILLS:-$((KILLS / 10 > 3 ? KILLS / 10 : 3))}
seed=${UW_SEED:-$$}
RANDOM=$seed
note "random seed $seed (UW_SEED=$seed repeats the killer's choices, not the machine's timing)"

KILLER_PID=""
stop_killer() {
    [[ -n "$KILLER_PID" ]] && kill "$KILLER_PID" 2>/dev/null
    return 0
}
at_exit stop_killer
at_exit kill_own_processes

# ---------------------------------------------------------------- 1. setup --
pg_dir "$SPOOL" 700
pg_init src "$P" --wal-segsize=1
# wal_keep_size: every segment (and its .done) stays in pg_wal for step 3.
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB" \
    "min_wal_size = 4MB" "max_wal_size = 128MB"
pg_start src
write_config "spool-path=$SPOOL"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
ASYNC_CMD="$PUSH --config $CONF --stanza $STANZA --archive-async --process-max 2 --compress-level $LEVEL %p"
set_archive_command src "$ASYNC_CMD"
q "$P" "create table uw_marker(id int primary key, note text); insert into uw_marker values (1, 'before the backup')" >/dev/null
take_backup --type full
FULL=$BACKUP_ID
start_wal=$(manifest_get "$FULL" start-wal)
[[ "$start_wal" =~ ^[0-9A-F]{24}$ ]] || die "backup $FULL: start-wal '$start_wal'"
note "backup $FULL starts at $start_wal"

WAL=$T/src/pg_wal
ADIR=$REPO/$STANZA/archive
LOCK=$(readlink -f "$SPOOL")/$STANZA/push/lock

# scan_push: our ue-wal-push processes, split into PUSHERS (holders of the
# pusher's spool lock) and CALLS (the others: the archiver's calls).  A
# process whose parent is one of ours is left out: the daemon's short-lived
# middle fork, a pusher before its reparenting, or LeakSanitizer's tracer,
# which a process clones at its exit (killing it would fail that process for
# a reason of our own).  Zombies are left out too.
scan_push() {
    local pid line ours
    local -a all=() top=() fds=() f
    CALLS=() PUSHERS=()
    mapfile -t all < <(own_pids ue-wal-push)
    ((${#all[@]})) || return 0
    ours=" ${all[*]} "
    for pid in "${all[@]}"; do
        read -r line <"/proc/$pid/stat" 2>/dev/null || continue
        read -ra f <<<"${line##*) }"
        [[ "${f[0]}" != Z && "$ours" != *" ${f[1]} "* ]] || continue
        top+=("$pid")
        fds+=("/proc/$pid/fd")
    done
    ((${#top[@]})) || return 0
    local holders
    holders=" $(find "${fds[@]}" -mindepth 1 -maxdepth 1 -lname "$LOCK" 2>/dev/null | awk -F/ '{ print $3 }' | tr '\n' ' ') "
    for pid in "${top[@]}"; do
        if [[ "$holders" == *" $pid "* ]]; then PUSHERS+=("$pid"); else CALLS+=("$pid"); fi
    done
    return 0
}

# hit PID: SIGKILL PID if it is still one of our ue-wal-push processes (the
# pid may have ended, or been reused, since the scan).
hit() {
    [[ "/proc/$1/exe" -ef "$PUSH" ]] || return 1
    kill -KILL "$1" 2>/dev/null
}

# is_pusher PID: PID holds the pusher's spool lock.
is_pusher() {
    [[ -n "$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname "$LOCK" -print -quit 2>/dev/null)" ]]
}

# pause MS: sleep MS milliseconds, without a fork (a read that times out on
# a pipe this shell also holds open for writing: nothing ever arrives).
exec {PAUSE_FD}<> <(:)
pause() {
    local t
    printf -v t '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    read -r -t "$t" -u "$PAUSE_FD" _ || true
}

# check_acks: every .done file not checked yet must have its object stored
# now (the .done is listed first: an object stored later is too late).
# Writes the offenders to $T/out/early-acks.
declare -A ACKED=()
check_acks() {
    local f o name objs
    for f in "$WAL"/archive_status/*.done; do
        [[ -e "$f" ]] || continue
        name=${f##*/}
        name=${name%.done}
        [[ -n "${ACKED[$name]:-}" ]] && continue
        ACKED[$name]=1
        objs=0
        for o in "$ADIR/${name:0:16}/$name"-*.zst; do
            [[ -e "$o" ]] && objs=$((objs + 1))
        done
        ((objs == 1)) || echo "$name acknowledged with $objs stored objects" >>"$T/out/early-acks"
    done
    DONE_COUNT=${#ACKED[@]}
}

# count_stored: objects in the archive now (a glob: no fork).
count_stored() {
    local -a o=("$ADIR"/*/*.zst)
    [[ -e "${o[0]}" ]] || o=()
    echo "${#o[@]}"
}

# killer: until KILLS kills have landed, one kill at a random point of a
# random kind; after each landed kill, wait for the archiver to acknowledge
# another file.  One line per kill in $T/out/kills.log; $T/out/killer.done
# when finished.
killer() {
    set +e
    shopt -s nullglob
    local kills=0 what victim pid mark owner mid stored next_call=0
    local -a tmps kinds
    : >"$T/out/kills.log"
    while ((kills < KILLS)); do
        check_acks
        # What can be killed right now (a call lives while its file is
        # pushed, a temporary while it is written): one of those kinds at
        # random, so that no time goes into waiting for a given kind.
        scan_push
        mid=""
        tmps=("$ADIR"/*/*.uwtmp.*)
        if ((${#tmps[@]})); then
            owner=${tmps[RANDOM % ${#tmps[@]}]##*.uwtmp.}
            owner=${owner%%.*}
            [[ "/proc/$owner/exe" -ef "$PUSH" ]] && mid=$owner
        fi
        kinds=()
        ((${#PUSHERS[@]})) && kinds+=(1)
        [[ -n "$mid" ]] && kinds+=(2)
        if ((${#CALLS[@]} && kills >= next_call)); then
            kinds+=(0)
            ((${#PUSHERS[@]})) && kinds+=(3)
        fi
        victim=()
        if ((${#kinds[@]})); then
            what=${kinds[RANDOM % ${#kinds[@]}]}
            case $what in
            0) victim=("${CALLS[RANDOM % ${#CALLS[@]}]}") ;;
            1) victim=("${PUSHERS[@]}") ;;
            2) victim=("$mid") ;;
            3) victim=("${CALLS[RANDOM % ${#CALLS[@]}]}" "${PUSHERS[@]}") ;;
            esac
        fi
        if ((${#victim[@]} == 0)); then
            pause 5
            continue
        fi
        # A random point: mid-write kills are already at one; a call
        # lives tens of ms, a pusher at least a second.
        case $what in
        0 | 3) pause $((RANDOM % 30)) ;;
        1) pause $((RANDOM % 300)) ;;
        esac
        local landed=0 calls=0 pushers=0 role
        for pid in "${victim[@]}"; do
            # The role before the kill: a mid-write victim may also be a
            # call pushing by itself (three pushers ended without a word).
            role=call
            if ((what == 2)); then
                is_pusher "$pid" && role=pusher
            elif [[ " ${PUSHERS[*]} " == *" $pid "* ]]; then
                role=pusher
            fi
            if hit "$pid"; then
                landed=1
                if [[ $role == pusher ]]; then pushers=$((pushers + 1)); else calls=$((calls + 1)); fi
            fi
        done
        ((landed)) || continue
        kills=$((kills + 1))
        ((calls)) && next_call=$((kills + KILLS / CALL_KILLS))
        echo "kill $kills kind $what calls $calls pushers $pushers pids ${victim[*]} acked $DONE_COUNT at $(elapsed "$_UW_T0")" >>"$T/out/kills.log"
        # The next kill after the archiver acknowledged one more file (the
        # load goes on, so one always comes; the main loop bounds the wait).
        # The next kill after some progress: the archiver acknowledged one
        # more file, or the pusher stored one more (while the archiver is
        # away after a killed call, the pusher works ahead).  The load goes
        # on, so progress always comes; the main loop bounds the wait.
        mark=$DONE_COUNT
        stored=$(count_stored)
        while check_acks && ((DONE_COUNT == mark)) && (($(count_stored) == stored)); do
            pause 20
        done
    done
    : >"$T/out/killer.done"
}

# ----------------------------------------------- 2. load and random kills --
rm -f "$T/out/killer.done" "$T/out/early-acks"
killer &
KILLER_PID=$!
t_load=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
# The load goes on until the kills have landed; a bound on progress: no
# kill landing for 300 s is a hang.
landed=0 deadline=$((SECONDS + 300)) runs=0
while [[ ! -e "$T/out/killer.done" ]]; do
    [[ -s "$T/out/early-acks" ]] && break
    n=$(wc -l <"$T/out/kills.log" 2>/dev/null || echo 0)
    ((n == landed)) || { landed=$n; deadline=$((SECONDS + 300)); }
    ((SECONDS < deadline)) || die "no kill landed for 300 s ($landed of $KILLS)"
    # The killer writes killer.done and then ends: between this loop's test
    # and kill -0 it may have done both (seen under ASan on a busy machine).
    kill -0 "$KILLER_PID" 2>/dev/null || [[ -e "$T/out/killer.done" ]] ||
        die "the killer ended early ($landed kills)"
    pgbench_run "$P" -n -c 2 -j 2 -T 2 >>"$T/out/pgbench-run" 2>&1 ||
        { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
    runs=$((runs + 1))
done
if [[ -s "$T/out/early-acks" ]]; then
    stop_killer
    die "acknowledged (.done) before the object was stored: $(head -3 "$T/out/early-acks" | tr '\n' ';')"
fi
wait "$KILLER_PID" || true
KILLER_PID=""
load_secs=$(elapsed "$t_load")
q "$P" "insert into uw_marker values (2, 'after the kills')" >/dev/null
last=$(switch_wal "$P")
kind_summary=$(awk '{ k[$4]++ } END { printf "%d calls, %d pushers, %d pushers mid-write, %d both", k[0], k[1], k[2], k[3] }' "$T/out/kills.log")
killed_calls=$(awk '{ s += $6 } END { print s + 0 }' "$T/out/kills.log")
killed_pushers=$(awk '{ s += $8 } END { print s + 0 }' "$T/out/kills.log")
note "$KILLS kills landed in $load_secs s of load ($runs pgbench runs): $kind_summary; $killed_calls calls and $killed_pushers pushers killed"

# ------------------------------------------- 3. archived, nothing lost --
t0=$(now)
wait_archived "$P" "$last" 180
note "archiving finished $(elapsed "$t0") s after the load"
stats=$(q "$P" "select archived_count, failed_count from pg_stat_archiver")
archived_count=${stats%|*}
failed_count=${stats#*|}
# A call ended by a signal makes the archiver exit (FATAL, restarted at
# once) before it counts the failure: the server log has those.
log_kills=$(grep -c -E 'archive command (was terminated by signal 9|failed with exit code 137)' "$T/src.log" || true)
note "archiver calls: $archived_count archived, $failed_count failed, $log_kills ended by SIGKILL (server log)"

# Every acknowledged file: one object, named for the SHA-256 of the file in
# pg_wal (ue-wal-fetch verifies an object against the SHA-256 in its name,
# and the recovery in step 5 fetches every segment); a sample fetches back
# byte-identical here.  One listing and one hashing pass: forks are slow on
# a loaded machine.
check_acks
[[ ! -s "$T/out/early-acks" ]] || die "acknowledged without a stored object: $(head -3 "$T/out/early-acks" | tr '\n' ';')"
declare -A NOBJ=() OBJ=() SUM=()
while read -r path; do
    base=${path##*/}
    name=${base%-*}
    NOBJ[$name]=$((${NOBJ[$name]:-0} + 1))
    OBJ[$name]=$base
done < <(find "$ADIR" -type f -name '*.zst' ! -name '*.uwtmp.*')
acked=()
for f in "$WAL"/archive_status/*.done; do
    name=${f##*/}
    acked+=("${name%.done}")
done
((${#acked[@]})) || die "no file acknowledged"
while read -r sum name; do SUM[$name]=$sum; done < <(cd "$WAL" && sha256sum -- "${acked[@]}")
for name in "${acked[@]}"; do
    [[ "${NOBJ[$name]:-0}" == 1 ]] || die "$name acknowledged with ${NOBJ[$name]:-0} stored objects"
    [[ "${OBJ[$name]}" == "$name-${SUM[$name]}.zst" ]] ||
        die "$name: the stored object ${OBJ[$name]} is not named for the SHA-256 of pg_wal/$name (${SUM[$name]})"
done
pg_dir "$T/back" 700
sample=("${acked[0]}" "${acked[-1]}")
for i in 1 2 3 4 5 6; do sample+=("${acked[RANDOM % ${#acked[@]}]}"); done
for name in "${sample[@]}"; do
    assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$name" "$T/back/$name"
    cmp -s "$T/back/$name" "$WAL/$name" || die "$name fetches back different from pg_wal/$name"
    rm -f "$T/back/$name"
done
nseg=0
for s in $(seg_range "$start_wal" "$last"); do
    [[ -e "$WAL/archive_status/$s.done" ]] || die "segment $s (between the backup's start and the end) not acknowledged"
    [[ "${NOBJ[$s]:-0}" == 1 ]] || die "segment $s archived ${NOBJ[$s]:-0} times"
    nseg=$((nseg + 1))
done
ok "0 acknowledged early: all ${#acked[@]} acknowledged files stored once, named for their SHA-256 (${#sample[@]} fetched back identical); 0 lost: all $nseg segments $start_wal..$last archived once"

# ------------------------------------------------------------ 4. the sweep --
# Pushers started after a kill swept what the killed ones left.
wait_lock_free "$SPOOL/$STANZA/push" 120
swept_run=$(grep -o 'swept [0-9]* stale temporar' "$T/src.log" | awk '{ s += $2 } END { print s + 0 }')
temps_before=$(repo_temp_files | wc -l)
# One more pusher: a new segment for the archiver.  Its row is the last
# change: the recovery must reach it.
q "$P" "insert into uw_marker values (3, 'the sweep')" >/dev/null
src_sum=$(table_checksum "$P")
extra=$(switch_wal "$P")
wait_archived "$P" "$extra" 120
wait_lock_free "$SPOOL/$STANZA/push" 120
temps_after=$(repo_temp_files | wc -l)
note "temporaries left by the kills: $swept_run swept by later pushers during the run, $temps_before before the last sweep, $temps_after after"
((swept_run + temps_before > 0)) || die "setup: the kills left no temporaries to sweep (no kill landed mid-write)"
((temps_after == 0)) || die "$temps_after temporary files left after the next pusher's sweep: $(repo_temp_files | head -3 | tr '\n' ' ')"
ok "0 temporaries after the next pusher's sweep"

# --------------------------------------------------------- 5. recovery --
t0=$(now)
restore_to r --set "$FULL" --start --port "$P_R"
wait_promoted "$P_R" 180
got=$(table_checksum "$P_R")
[[ "$got" == "$src_sum" ]] || { diff <(echo "$src_sum") <(echo "$got") >&2; die "the recovered tables differ from the source"; }
restored=$(grep -c 'restored log file' "$T/r.log" || true)
((restored >= nseg)) || die "the recovery restored only $restored files from the archive (expected at least $nseg)"
note "recovery of $FULL: $restored files restored from the archive in $(elapsed "$t0") s, promoted"
pg_stop r
ok "archiver calls: $archived_count archived, $failed_count failed, $log_kills killed; $KILLS SIGKILLs ($killed_calls calls, $killed_pushers pushers): 0 acknowledged early, 0 of $nseg segments lost, $((swept_run + temps_before)) temporaries swept to 0, recovery identical ($restored segments replayed)"
