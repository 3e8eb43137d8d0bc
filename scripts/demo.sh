#!/usr/bin/env bash
# ue-wal demo: one command that installs the build dependencies, builds the
# project and shows WAL archiving and point-in-time recovery end to end on a
# throwaway PostgreSQL 15 cluster.
#
#   scripts/demo.sh [REPO_DIR]
#
# 1. installs packages (scripts/setup-deps.sh) and builds into build/
# 2. creates a PostgreSQL 15 cluster (user postgres, temp dir, unix socket
#    only), runs `ue-pitr stanza-create` and archives with ue-wal-push
# 3. takes a base backup with pg_basebackup -X none (its WAL must come from
#    the archive), then loads data with pgbench and archives all of it
# 4. restores the base backup into a second cluster whose restore_command is
#    ue-wal-fetch, recovers to the end of the archive and promotes
# 5. compares row counts and content checksums of all tables
# 6. point-in-time restore: a full backup with ue-basebackup, marker rows
#    written before and after a recorded instant, then `ue-pitr restore
#    --target-time <instant> --start` into a third cluster, which must hold
#    exactly the markers written before the instant
#
# REPO_DIR: where the WAL repository goes (kept afterwards; it must be
# writable by the postgres user, so not under /root).  Default: inside the
# temporary directory, removed at the end.  Exit status 0 when the restored
# cluster matches the source and the point-in-time restore stopped at the
# instant.  All servers are stopped on exit.
#
# Environment: UW_DEMO_PORT (default 25990; the servers listen only on a
# unix socket in the temp dir, so the port never collides with anything),
# UW_DEMO_SCALE (pgbench scale, default 5), UW_DEMO_STANZA (default demo),
# UW_BUILD_DIR (default build), UW_SKIP_SETUP=1, UW_KEEP=1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPO_ARG=${1:-}
SCALE=${UW_DEMO_SCALE:-5}
BUILD=$(realpath -m "${UW_BUILD_DIR:-$ROOT/build}")

echo "==> installing build dependencies"
bash "$ROOT/scripts/setup-deps.sh"
echo "==> building into $BUILD"
cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j2

export UW_BIN_DIR=$BUILD UW_SRC_DIR=$ROOT UW_TEST_NAME=demo
export UW_PORT_BASE=${UW_DEMO_PORT:-25990}
# shellcheck source=../tests/lib.sh
source "$ROOT/tests/lib.sh"
P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
P_PITR=$((P + 2))
STANZA=${UW_DEMO_STANZA:-$STANZA}

if [[ -n "$REPO_ARG" ]]; then
    REPO=$(realpath -m "$REPO_ARG")
    mkdir -p "$REPO"
    [[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$REPO"
    as_pg test -w "$REPO" -a -x "$REPO" ||
        die "repository $REPO is not writable by the '$PGUSER_OS' user (choose a directory outside /root, e.g. /var/tmp/ue-wal-repo)"
    # A stanza belongs to one cluster: a repository reused from an earlier
    # demo gets a new stanza name.
    [[ ! -e "$REPO/$STANZA" ]] || STANZA=demo-$(date +%Y%m%d-%H%M%S)
fi
echo "==> demo directory $T, repository $REPO, stanza $STANZA"

show_stderr() { sed 's/^/      | /' "$LAST_ERR"; }

echo "==> creating source cluster (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $NF}'), port $P)"
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
echo "    config $CONF:"
sed 's/^cipher-pass=.*/cipher-pass=********/; s/^/      /' "$CONF"

echo "==> ue-pitr stanza-create"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
show_stderr
enable_archiving src
echo "    archive_command = $(q "$P" "show archive_command")"
first_seg=$(current_seg "$P")

echo "==> base backup (pg_basebackup -X none: its WAL comes from the archive)"
t0=$(now)
basebackup "$P" restore
echo "    took $(elapsed "$t0") s"

echo "==> generating WAL: pgbench -i -s $SCALE, then pgbench -T 10 -c 2"
t_load=$(now)
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
pgbench_run "$P" -T 10 -c 2 -j 2 -n >"$T/out/pgbench-run" 2>&1 ||
    { tail "$T/out/pgbench-run"; die "pgbench failed"; }
echo "    $(grep -E '^tps' "$T/out/pgbench-run" | head -1)"
last_seg=$(switch_wal "$P")
echo "==> pg_switch_wal; waiting for $last_seg to be archived"
wait_archived "$P" "$last_seg" 120
secs=$(elapsed "$t_load")
nseg=$(($(seg_no "$last_seg") - $(seg_no "$first_seg") + 1))
IFS='|' read -r archived failed <<<"$(q "$P" "select archived_count, failed_count from pg_stat_archiver")"
repo_bytes=$(du -sb "$REPO" | cut -f1)
echo "    archived $nseg segments in $secs s ($archived files, $failed failures," \
    "repository $((repo_bytes / 1024 / 1024)) MiB for $((nseg * 16)) MiB of WAL)"
echo "    e.g. $(find "$REPO" -type f -name "$last_seg-*" | sed "s#^$REPO/##")"

echo "==> restoring the base backup into a second cluster (port $P_RESTORE)"
setup_restore restore "$P_RESTORE"
echo "    restore_command = $(sed -n "s/^restore_command = //p" "$T/restore/postgresql.conf")"
t0=$(now)
pg_start restore
wait_promoted "$P_RESTORE" 300
restore_secs=$(elapsed "$t0")
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$T/restore.log" || true)
echo "    recovered $restored segments from the archive and promoted in $restore_secs s"

echo "==> comparing source and restored cluster"
src_sum=$(table_checksum "$P")
dst_sum=$(table_checksum "$P_RESTORE")
printf '    %-28s %12s %12s  %s\n' table "source rows" "restored" "content"
match=yes
while read -r tbl rows md5; do
    read -r _ drows dmd5 < <(grep -F "$tbl " <<<"$dst_sum" || echo "- missing -")
    same=same
    [[ "$rows" == "$drows" && "$md5" == "$dmd5" ]] || { same=DIFFERENT; match=no; }
    printf '    %-28s %12s %12s  %s\n' "$tbl" "$rows" "${drows:-missing}" "$same"
done <<<"$src_sum"
[[ $(wc -l <<<"$src_sum") == $(wc -l <<<"$dst_sum") ]] || match=no

echo "==> point-in-time restore: ue-basebackup, then marker rows around an instant"
need_basebackup
t0=$(now)
take_backup
backup_id=$BACKUP_ID
echo "    ue-basebackup --stanza $STANZA -> backup $backup_id in $(elapsed "$t0") s" \
    "($(($(manifest_get "$backup_id" stored) / 1024 / 1024)) MiB stored for" \
    "$(($(manifest_get "$backup_id" total-size) / 1024 / 1024)) MiB of data files)"
q "$P" "create table uw_markers(id int primary key, note text, at timestamptz default clock_timestamp())" >/dev/null
q "$P" "insert into uw_markers(id, note) select g, 'before' from generate_series(1, 5) g" >/dev/null
sleep 1
# The instant, from the server's clock (the one commit timestamps use).
pitr_ts=$(q "$P" "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00')")
sleep 1
q "$P" "insert into uw_markers(id, note) select g, 'after' from generate_series(6, 8) g" >/dev/null
echo "    5 markers written before $pitr_ts, 3 after it"
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 60
echo "    pg_switch_wal; $last_seg archived"
echo "==> ue-pitr restore --target-time '$pitr_ts' --start --port $P_PITR (a third cluster)"
t0=$(now)
restore_to pitr --target-time "$pitr_ts" --start --port "$P_PITR"
wait_promoted "$P_PITR" 120
echo "    restored, recovered to the instant and promoted in $(elapsed "$t0") s:"
# (Its hint on how to start the server is moot: --start did.)
sed '/^start the server with:/,+1d; s/^/      | /' "$RESTORE_OUT"
before=$(q "$P_PITR" "select count(*) from uw_markers where note = 'before'")
after=$(q "$P_PITR" "select count(*) from uw_markers where note = 'after'")
pitr_ok=no
[[ "$before" == 5 && "$after" == 0 ]] && pitr_ok=yes

echo
echo "archived $nseg segments in $secs s"
echo "restored cluster matches: $match"
echo "point-in-time restore to $pitr_ts: markers before: $before present, after: $after present"
[[ -n "$REPO_ARG" ]] && echo "repository kept at $REPO (stanza $STANZA)"
[[ "$match" == yes ]] || die "restored cluster differs from the source"
[[ "$pitr_ok" == yes ]] ||
    die "point-in-time restore: expected the 5 markers written before $pitr_ts and none of the 3 after it"
