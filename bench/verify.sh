#!/usr/bin/env bash
# bench/verify.sh: `ue-pitr verify --full` throughput as a multiple of the
# repository's plain read speed (README "ue-pitr verify", Performance).
#
#   UW_BIN_DIR=build UW_PORT_BASE=31900 bash bench/verify.sh [SCALE=20]
#
# A PostgreSQL 15 cluster (pgbench -i -s SCALE, then pgbench load) archived
# into a posix repository, one full backup, more WAL; then, with the page
# cache warm (every repository file read once before; nothing is dropped, so
# this measures CPU-bound work, not the disk):
#   read:    `find REPO -type f -exec cat {} + >/dev/null`, the best of 3
#   verify:  `ue-pitr verify --full --process-max N` for N = 1 and 2, best of 3
# and prints repository bytes, both rates, and verify / read.
source "$(dirname "$0")/../tests/lib.sh"
need_basebackup
SCALE=${1:-20}
P=$UW_PORT_BASE
STANZA=vb$UW_PORT_BASE
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "max_wal_size = 1GB"
pg_start src
pg_dir "$T/spool" 700
write_config "spool-path=$T/spool"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 || die "pgbench -i failed"
take_backup
pgbench_run "$P" -n -c 2 -j 2 -t 2000 >"$T/out/pgbench" 2>&1 || die "pgbench failed"
wait_archived "$P" "$(switch_wal "$P")" 120

bytes=$(find "$REPO" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
files=$(find "$REPO" -type f | wc -l)
best() { # best CMD...: the shortest of 3 wall-clock runs, in seconds
    local b="" t s
    for _ in 1 2 3; do
        t=$(now)
        "$@" >/dev/null 2>&1 || true
        s=$(elapsed "$t")
        [[ -z "$b" ]] || awk -v a="$s" -v b="$b" 'BEGIN { exit !(a < b) }' && b=$s
    done
    echo "$b"
}
catall() { find "$REPO" -type f -exec cat {} + >/dev/null; }
catall
t_cat=$(best catall)
for n in 1 2; do
    t_v[n]=$(best as_pg "$PITR" --config "$CONF" --stanza "$STANZA" verify --full --process-max "$n")
done
as_pg "$PITR" --config "$CONF" --stanza "$STANZA" verify --full >"$T/out/verify" 2>&1 ||
    { cat "$T/out/verify"; die "verify failed"; }
mb() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1048576 }'; }
echo "repository: $files files, $bytes bytes; $(grep '^objects:' "$T/out/verify")"
echo "read (cat, warm cache): $t_cat s = $(mb "$t_cat") MiB/s"
for n in 1 2; do
    echo "verify --full --process-max $n: ${t_v[n]} s = $(mb "${t_v[n]}") MiB/s of repository = $(ratio "$t_cat" "${t_v[n]}" 3) x the read speed"
done
