#!/usr/bin/env bash
# fault_prefetch_kill: the prefetcher SIGKILLed again and again during a
# recovery, and a damaged object in the middle of a prefetching recovery
# (issue 11's fault scenarios).
#  1. cluster "src" archives through ue-wal-push; pg_basebackup -X none;
#     pgbench load and WAL switches: at least 16 segments after the backup.
#  2. recovery of the base backup with the prefetching restore_command
#     (archive-get-queue-max, process-max 2), paced by a gate: the
#     restore_command waits for the test to open the gate of each file it is
#     asked for, so the kills land at chosen points whatever the machine's
#     speed.  Before the gate of every second segment opens, the running
#     prefetcher (the only ue-wal-fetch process at that point) is SIGKILLed, at least 6
#     times in all.  Recovery completes, promotes, and every table's
#     checksum equals the source's; no delivery came from a dead
#     prefetcher's half-written file (the tables prove it); printed: kills
#     and segments delivered from the queue.
#  3. one archived segment in the middle of the range gets a flipped byte;
#     another copy of the base backup recovers with the prefetching
#     restore_command: PostgreSQL stops (FATAL) at that segment with the
#     fetch's exit code above 125 and never promotes.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_REC=$((P + 1))
P_BAD=$((P + 2))
STANZA=fp$UW_PORT_BASE
QUEUE="--archive-get-queue-max=128MiB --process-max=2"
at_exit kill_own_processes

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 2 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
basebackup "$P" base
first=$(current_seg "$P")
for i in $(seq 16); do
    pgbench_run "$P" -n -c 2 -j 2 -t 200 >"$T/out/pgbench-$i" 2>&1 ||
        { tail "$T/out/pgbench-$i"; die "pgbench run $i failed"; }
    last=$(switch_wal "$P")
done
wait_archived "$P" "$last" 120
src_sum=$(table_checksum "$P")
pg_stop src
note "archived $first .. $last after the base backup"

# ------------------------------------------------ 2. killed prefetchers --
# gated_fetch: the restore_command, waiting at a gate per file.
GATE=$T/gate
pg_dir "$GATE" 777
cat >"$T/gated_fetch" <<EOF
#!/bin/sh
# Announce the request, then wait until the test opens its gate.
: >"$GATE/req.\$1.\$\$"
while [ ! -e "$GATE/open.\$1" ] && [ ! -e "$GATE/open.all" ]; do sleep 0.02; done
exec "$FETCH" --config "$CONF" --stanza "$STANZA" $QUEUE "\$1" "\$2"
EOF
chmod 755 "$T/gated_fetch"

cp -a "$T/base" "$T/rec"
setup_restore rec "$P_REC"
pg_conf rec "restore_command = '$T/gated_fetch %f %p'"
pg_start_nowait rec

kills=0
opened=0
segs_seen=0
deadline=$((SECONDS + 600))
while ! [[ -e "$GATE/open.all" ]]; do
    ((SECONDS < deadline)) || die "recovery made no progress (gates opened: $opened, kills: $kills)"
    req=$(find "$GATE" -maxdepth 1 -name 'req.*' -printf '%f\n' | head -1)
    if [[ -z "$req" ]]; then
        pg_running rec || die "the recovering server stopped (see $T/rec.log)"
        sleep 0.02
        continue
    fi
    name=${req#req.}
    name=${name%.*}
    if [[ "$name" =~ ^[0-9A-F]{24}$ ]]; then
        segs_seen=$((segs_seen + 1))
        # Every second segment: kill the prefetcher first (when one runs;
        # the first fetch of a recovery starts it).
        if ((segs_seen % 2 == 0)); then
            # While the gate holds the next call back, the only ue-wal-fetch
            # process is the prefetcher (PostgreSQL waits for each
            # restore_command to exit).
            holders=$(own_pids ue-wal-fetch)
            if [[ -n "$holders" ]]; then
                # shellcheck disable=SC2086 # one pid per word
                kill -KILL $holders 2>/dev/null && kills=$((kills + 1))
            fi
        fi
    fi
    rm -f "$GATE/$req"
    : >"$GATE/open.$name"
    opened=$((opened + 1))
    # Past the last archived segment nothing is left to kill for.
    if [[ "$name" =~ ^[0-9A-F]{24}$ ]] && [[ "$name" > "$last" ]]; then
        : >"$GATE/open.all"
    fi
done
wait_promoted "$P_REC" 300
((kills >= 6)) || die "only $kills prefetchers were killed ($segs_seen segments asked for)"
delivered=$(grep -c 'delivered [0-9A-F]\{24\} from the prefetch queue' "$T/rec.log" || true)
got=$(table_checksum "$P_REC")
if [[ "$got" != "$src_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$got") >&2 || true
    die "recovered data differs from the source's"
fi
ok "recovery with $kills prefetchers SIGKILLed: promoted, identical data ($segs_seen segments asked for, $delivered deliveries from the prefetch queue)"
pg_stop rec
# The last prefetcher would linger for its idle time: not needed any more.
pids=$(own_pids ue-wal-fetch)
# shellcheck disable=SC2086 # one pid per word
[[ -z "$pids" ]] || kill -KILL $pids 2>/dev/null || true

# ------------------------------------- 3. damaged object mid-recovery --
mid=$(seg_add "$first" 5)
obj=$(stored_objects "$mid" | head -1)
[[ -n "$obj" ]] || die "no object stored for $mid"
size=$(stat -c %s "$obj")
flip_byte "$obj" $((size / 2))
cp -a "$T/base" "$T/bad"
setup_restore bad "$P_BAD"
pg_conf bad "restore_command = '$FETCH --config $CONF --stanza $STANZA $QUEUE %f %p'"
pg_start_nowait bad
# pg_ctl returns before the postmaster writes its pid file: wait for it, or
# the loop below would end before the server ever ran.
deadline=$((SECONDS + 120))
until [[ -e "$T/bad/postmaster.pid" ]] || grep -q FATAL "$T/bad.log" 2>/dev/null; do
    ((SECONDS < deadline)) || die "the server for the damaged-object recovery did not start in 120 s"
    sleep 0.05
done
deadline=$((SECONDS + 300))
while pg_running bad; do
    ((SECONDS < deadline)) || die "recovery through the damaged $mid neither stopped nor finished in 300 s"
    if q_try "$P_BAD" "select 1" >/dev/null 2>&1 && [[ "$(q_try "$P_BAD" "select pg_is_in_recovery()" 2>/dev/null)" == f ]]; then
        die "the server promoted past the damaged segment $mid"
    fi
    sleep 0.1
done
grep -q "FATAL" "$T/bad.log" || die "the server stopped without a FATAL line (see $T/bad.log)"
grep -Eq "restore_command.*(exit code 1[5-9][0-9]|exited with exit code 1[5-9][0-9])|could not restore file \"$mid\"" "$T/bad.log" ||
    grep -Eq "\[15[0-3] " "$T/bad.log" ||
    die "the server log does not show the fetch of $mid failing above 125 (see $T/bad.log)"
! grep -q "database system is ready to accept connections" "$T/bad.log" ||
    die "the server accepted connections (promoted) despite the damaged $mid"
ok "damaged $mid in a prefetching recovery: the server stopped with FATAL and never promoted"
