#!/usr/bin/env bash
# push_kill: temporaries of killed pushes are swept (issue 11, item 2).
#
# A real cluster's WAL segments in a pg_wal-like directory with .ready
# files; synchronous ue-wal-push calls (the archiver's way: .ready becomes
# .done on exit 0 only) are SIGKILLed at random points until at least 50
# kills happened. The point is chosen from progress, never from time: right
# after the process started, when its temporary appears in the repository,
# or when that temporary has grown past a random size. Then:
#   - every .done segment has exactly one object, which fetches back
#     identical to the segment
#   - the kills left temporaries (counted and printed)
#   - after the next sweep (the asynchronous pusher's start) 0 temporaries
#     remain, and the sweep said what it removed (count and bytes)
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
KILLS=${UW_PUSH_KILLS:-50}
seed=${UW_SEED:-$$}
RANDOM=$seed
note "random seed $seed (UW_SEED=$seed reproduces the kill points)"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 512MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
pgbench_run "$P" -i -s 8 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
last=$(switch_wal "$P")
segs=()
for s in $(find "$T/src/pg_wal" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort); do
    [[ "$s" > "$last" ]] || segs+=("$s")
done
((${#segs[@]} >= 4)) || die "setup: only ${#segs[@]} completed segments"
wal_dir_ready "$T/wal" "$T/src/pg_wal" "${segs[@]}"
note "${#segs[@]} segments to push: ${segs[0]} .. $last"

# Each segment gets its share of the kills still to do; a push that ends
# before its kill point is an acknowledged segment (and the share of those
# after it grows). The last segment is killed right after its start only,
# which never ends early.
kills=0 attempts=0 completed_early=0 cur="" cur_kills=0 quota=0
while :; do
    mapfile -t ready < <(find "$T/wal/archive_status" -maxdepth 1 -name '*.ready' -printf '%f\n' | sort)
    ((${#ready[@]})) || break
    next=${ready[0]%.ready}
    if [[ "$next" != "$cur" ]]; then
        cur=$next cur_kills=0
        quota=$(((KILLS - kills + ${#ready[@]} - 1) / ${#ready[@]}))
        ((${#ready[@]} > 1 || kills + quota >= KILLS)) || quota=$((KILLS - kills))
    fi
    attempts=$((attempts + 1))
    # Level 16: a push lasts long enough (a second or more) for every kill
    # point to land on any machine; at level 3 an idle machine finishes a
    # segment before the kill "right after the start" can be sent. Level 19
    # took ~20 s of CPU per segment (16: ~2 s, the same output size class),
    # which made this test one of the suite's heaviest.
    pg_bg "push$attempts" "$PUSH" --config "$CONF" --stanza "$STANZA" --compress-level 16 "$T/wal/$next"
    mode=none
    if ((cur_kills < quota)); then
        mode=$((RANDOM % 3))
        ((${#ready[@]} > 1)) || mode=0
        size=$(((RANDOM % 16) * 32768)) # 0 .. 480 KiB of the temporary
        deadline=$((SECONDS + 120))
        while kill -0 "$BG_PID" 2>/dev/null; do
            case $mode in
            0) break ;;
            1) [[ -n "$(find "$REPO" -name "$next*.uwtmp.*" -print -quit)" ]] && break ;;
            2) [[ -n "$(find "$REPO" -name "$next*.uwtmp.*" -size +$((size / 1024))k -print -quit)" ]] && break ;;
            esac
            ((SECONDS < deadline)) || die "push of $next: no progress within 120 s"
            sleep 0.005
        done
        kill -KILL "$BG_PID" 2>/dev/null || true
    fi
    rc=0
    wait "$BG_JOB" || rc=$?
    echo "attempt $attempts $next mode ${mode:-none} quota $quota kills $cur_kills/$kills rc $rc" >>"$T/out/kills.log"
    if ((rc == 0)); then
        mv "$T/wal/archive_status/$next.ready" "$T/wal/archive_status/$next.done"
        ((cur_kills < quota)) && completed_early=$((completed_early + 1))
    elif ((rc == 128 + 9)) && ((cur_kills < quota)); then
        kills=$((kills + 1)) cur_kills=$((cur_kills + 1))
    else
        cat "$T/out/push$attempts.err" >&2
        die "push of $next failed with exit $rc"
    fi
done
temps=$(repo_temp_files | wc -l)
temp_bytes=$(repo_temp_files | xargs -r du -cb | tail -n 1 | cut -f1)
note "$kills kills in $attempts pushes ($completed_early finished before their kill point): $temps temporaries (${temp_bytes:-0} bytes) left"
((kills >= KILLS)) || die "only $kills kills"
((temps > 0)) || die "setup: the kills left no temporaries to sweep"

# Every acknowledged segment has its object, and it is the segment.
pg_dir "$T/dst" 700
for s in "${segs[@]}"; do
    [[ -f "$T/wal/archive_status/$s.done" ]] || die "$s not acknowledged"
    assert_eq 1 "$(stored_objects "$s" | grep -c .)" "objects for acknowledged $s"
    assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$s" "$T/dst/$s"
    cmp -s "$T/dst/$s" "$T/wal/$s" || die "$s fetches back different"
    rm -f "$T/dst/$s"
done
ok "all ${#segs[@]} acknowledged segments stored once and identical"

# The next sweep: an asynchronous push (its pusher sweeps at start).
pg_dir "$T/spool" 700
extra=$(switch_wal "$P")
wal_dir_ready "$T/wal2" "$T/src/pg_wal" "$extra"
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" --archive-async --spool-path "$T/spool" "$T/wal2/$extra"
# The detached pusher logs to the call's stderr; its last line says it ended.
async_log=$LAST_ERR
deadline=$((SECONDS + 120))
until grep -q "asynchronous pusher: pushed" "$async_log"; do
    ((SECONDS < deadline)) || { cat "$async_log" >&2; die "the asynchronous pusher did not finish within 120 s"; }
    sleep 0.2
done
swept=$(grep -h "swept" "$async_log" | head -1 || true)
[[ -n "$swept" ]] || { cat "$async_log" >&2; die "the pusher did not report what it swept"; }
left=$(repo_temp_files | wc -l)
note "after the sweep: $left temporaries left; $swept"
assert_eq 0 "$left" "temporaries after the next sweep"
ok "$KILLS+ killed pushes: $temps temporaries (${temp_bytes:-0} bytes) swept to 0, every .done segment has its object"
