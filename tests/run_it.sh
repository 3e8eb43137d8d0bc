#!/usr/bin/env bash
# Run one integration test and measure the CPU it burns, load-independently.
#
#   tests/run_it.sh NAME SCRIPT [ARG...]
#
# Wall time under contention does not tell which test costs the suite its
# time; CPU seconds do. The test and every descendant (daemonized postgres,
# object-store emulators, detached pushers) run in a cgroup of their own:
# cpuacct on cgroup v1, cpu.stat on cgroup v2. A process that leaves its
# parent still stays in the cgroup, which a process-tree walk would miss.
# At the end one line goes to stdout and to <UW_BIN_DIR>/it-cpu.tsv:
#
#   [NAME] cpu: X s (user Y s, system Z s), wall W s
#
# it-cpu.tsv columns: UTC time, name, cpu s, user s, system s, wall s, exit code.
#
# Where no cgroup can be created (not root, no cpuacct) the test runs without
# accounting. The test's exit code passes through unchanged (77 = skip).
set -u

name=${1:?usage: run_it.sh NAME SCRIPT [ARG...]}
shift
[[ $# -gt 0 ]] || {
    echo "usage: run_it.sh NAME SCRIPT [ARG...]" >&2
    exit 2
}

cg=""      # our cgroup directory, empty = no accounting
cg_ver=""  # 1 or 2
parent=""  # the cgroup the stragglers go back to

# The current cgroup of this process for controller $1 (v1) or the unified
# hierarchy ($1 empty), from /proc/self/cgroup.
_cg_self_path() {
    local want=$1 id ctrls path
    while IFS=: read -r id ctrls path; do
        if [[ -z "$want" && "$id" == 0 && -z "$ctrls" ]]; then
            echo "$path"
            return 0
        fi
        if [[ -n "$want" && ",$ctrls," == *",$want,"* ]]; then
            echo "$path"
            return 0
        fi
    done </proc/self/cgroup
    return 1
}

_cg_setup() {
    local rel mnt dir
    # cgroup v1 cpuacct (possibly co-mounted as cpu,cpuacct).
    if rel=$(_cg_self_path cpuacct); then
        for mnt in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpuacct,cpu; do
            if [[ -f "$mnt/cpuacct.stat" ]]; then
                parent=$mnt${rel%/}
                [[ "$rel" == / ]] && parent=$mnt
                dir=$parent/uw-it-$name-$$
                if mkdir "$dir" 2>/dev/null; then
                    cg=$dir
                    cg_ver=1
                    return 0
                fi
                break
            fi
        done
    fi
    # cgroup v2: /sys/fs/cgroup itself, or the hybrid layout's unified tree.
    if rel=$(_cg_self_path ""); then
        for mnt in /sys/fs/cgroup /sys/fs/cgroup/unified; do
            if [[ "$(stat -f -c %T "$mnt" 2>/dev/null)" == cgroup2fs ]]; then
                parent=$mnt${rel%/}
                [[ "$rel" == / ]] && parent=$mnt
                dir=$parent/uw-it-$name-$$
                if mkdir "$dir" 2>/dev/null; then
                    if [[ -f "$dir/cpu.stat" ]]; then
                        cg=$dir
                        cg_ver=2
                        return 0
                    fi
                    rmdir "$dir" 2>/dev/null
                fi
                break
            fi
        done
    fi
    return 1
}

# Prints "total_s user_s system_s" of our cgroup.
_cg_usage() {
    if [[ "$cg_ver" == 1 ]]; then
        local ns hz k v user=0 sys=0
        ns=$(cat "$cg/cpuacct.usage")
        hz=$(getconf CLK_TCK)
        while read -r k v; do
            case $k in
            user) user=$v ;;
            system) sys=$v ;;
            esac
        done <"$cg/cpuacct.stat"
        awk -v ns="$ns" -v u="$user" -v s="$sys" -v hz="$hz" \
            'BEGIN { printf "%.1f %.1f %.1f", ns / 1e9, u / hz, s / hz }'
    else
        local k v tot=0 user=0 sys=0
        while read -r k v; do
            case $k in
            usage_usec) tot=$v ;;
            user_usec) user=$v ;;
            system_usec) sys=$v ;;
            esac
        done <"$cg/cpu.stat"
        awk -v t="$tot" -v u="$user" -v s="$sys" \
            'BEGIN { printf "%.1f %.1f %.1f", t / 1e6, u / 1e6, s / 1e6 }'
    fi
}

# Moves what is left in our cgroup back to the parent and removes the cgroup.
# Bounded: a process forking while we move it gets a few more rounds, after
# that the cgroup stays (with a warning) rather than blocking the suite.
_cg_remove() {
    [[ -n "$cg" ]] || return 0
    local round pid
    for round in 1 2 3 4 5 6 7 8 9 10; do
        rmdir "$cg" 2>/dev/null && {
            cg=""
            return 0
        }
        while read -r pid; do
            [[ -n "$pid" ]] && echo "$pid" >"$parent/cgroup.procs" 2>/dev/null
        done <"$cg/cgroup.procs"
        [[ $round -gt 5 ]] && sleep 0.1
    done
    echo "run_it.sh: unable to remove cgroup '$cg': processes remain" >&2
    cg=""
}

# ctest's timeout (or ^C) reaches this shell: hand it on to the test, whose
# own cleanup stops its servers, then report and remove the cgroup.
child=""
for sig in TERM INT HUP; do
    # shellcheck disable=SC2064 # $sig now, $child when the signal comes
    trap "[[ -n \$child ]] && kill -s $sig \$child 2>/dev/null" "$sig"
done
trap '_cg_remove' EXIT

_cg_setup || true
start=$EPOCHREALTIME

if [[ -n "$cg" ]]; then
    # The child joins the cgroup before it execs the test, so that nothing of
    # the test runs outside it.
    CG_PROCS="$cg/cgroup.procs" bash -c 'echo $$ >"$CG_PROCS" && unset CG_PROCS && exec "$@"' run_it "$@" &
else
    "$@" &
fi
child=$!
# wait returns early (>128) when a trapped signal arrives: wait again until
# the child is really gone so that its code passes through.
while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
done

wall=$(awk -v a="$EPOCHREALTIME" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
if [[ -n "$cg" ]]; then
    read -r total user sys <<<"$(_cg_usage)"
    line="[$name] cpu: $total s (user $user s, system $sys s), wall $wall s"
    echo "$line"
    if [[ -n "${UW_BIN_DIR:-}" && -d "${UW_BIN_DIR}" ]]; then
        # One short write with O_APPEND: lines of tests run side by side do
        # not interleave.
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$total" "$user" "$sys" \
            "$wall" "$rc" >>"$UW_BIN_DIR/it-cpu.tsv"
    fi
else
    echo "[$name] cpu: not measured (no writable cgroup), wall $wall s"
fi
_cg_remove
trap - EXIT
exit "$rc"
