#!/usr/bin/env bash
# Non-default WAL segment sizes (initdb --wal-segsize): 1 MiB and 64 MiB.
#
# For each size, one cluster archives through ue-wal-push, is backed up with
# ue-basebackup, gets more data (several segments of WAL after the backup),
# and is restored with ue-pitr restore (recovery through ue-wal-fetch and its
# prefetcher to the end of the archive, promotion).  Checks:
#  1. the archive holds every segment PostgreSQL archived, named for that
#     size (1 MiB: 4096 segments per log id; 64 MiB: 64), once each;
#  2. ue-pitr info reads the archive with the cluster's segment size;
#  3. the restored cluster has exactly the source's table contents
#     (table_checksum), and it replayed segments from the archive (not only
#     the backup's own WAL).
source "$(dirname "$0")/../lib.sh"
need_basebackup

run_size() {
    local mib=$1 port=$2 rport=$3
    local name=seg$mib stanza=segsize${mib}_$UW_PORT_BASE
    local conf=$T/seg$mib.conf repo=$T/repo$mib
    local per_id=$((4096 / mib))
    note "--- wal_segment_size = $mib MiB ($per_id segments per log id)"
    pg_init "$name" "$port" --wal-segsize="$mib"
    # min_wal_size must hold two segments.
    pg_conf "$name" "archive_mode = on" "archive_command = ''" \
        "min_wal_size = $((mib * 4))MB" "max_wal_size = $((mib * 16 > 64 ? mib * 16 : 64))MB"
    pg_start "$name"
    assert_eq $((mib * 1024 * 1024)) "$(q "$port" "select setting::bigint * 1 from pg_settings where name = 'wal_segment_size'")" \
        "wal_segment_size of $name"
    write_config -f "$conf" -s "$stanza" -n "$name" -r "$repo"
    local CONF=$conf STANZA=$stanza REPO=$repo
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
    enable_archiving "$name" "$CONF" "$STANZA"
    local first
    first=$(current_seg "$port")

    q "$port" "create table t_before(id int primary key, v text)" >/dev/null
    q "$port" "insert into t_before select g, md5(g::text) from generate_series(1, 2000) g" >/dev/null
    take_backup --type full
    local full=$BACKUP_ID
    # WAL after the backup: several segments of either size (about 3 MiB for
    # 1 MiB segments; for 64 MiB segments the switches make the segments).
    pgbench_run "$port" -i -s 2 -q >"$T/out/pgbench-$mib" 2>&1 ||
        { tail "$T/out/pgbench-$mib"; die "pgbench -i failed"; }
    local i last
    for i in 1 2 3; do
        q "$port" "create table t_after_$i as select g id, repeat(md5(g::text), 4) v from generate_series(1, 5000) g" >/dev/null
        last=$(switch_wal "$port")
    done
    wait_archived "$port" "$last" 120
    local row failed
    row=$(q "$port" "select failed_count from pg_stat_archiver")
    failed=$row
    assert_eq 0 "$failed" "archiver failed_count ($mib MiB)"

    # 1. Every segment from the first to the last, named for this size.
    local tli=${first:0:8} lo hi n=0 s seg
    lo=$((16#${first:8:8} * per_id + 16#${first:16:8}))
    hi=$((16#${last:8:8} * per_id + 16#${last:16:8}))
    ((hi - lo >= 3)) || die "only $((hi - lo + 1)) segments from $first to $last"
    for ((s = lo; s <= hi; s++)); do
        seg=$(printf '%s%08X%08X' "$tli" $((s / per_id)) $((s % per_id)))
        [[ $(object_count "$seg" "$repo") == 1 ]] || die "segment $seg ($mib MiB) not archived exactly once"
        n=$((n + 1))
    done
    ok "$mib MiB: all $n segments $first..$last archived once each"

    # 2. info reads the archive with this segment size.
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
    grep -q "$full" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "info does not list backup $full"; }
    ok "$mib MiB: ue-pitr info lists backup $full"

    local want
    want=$(table_checksum "$port")
    # 3. Restore to the end of the archive.
    restore_to "r$mib" --start --port "$rport"
    wait_promoted "$rport" 180
    local got
    got=$(table_checksum "$rport")
    [[ "$got" == "$want" ]] || { diff <(echo "$want") <(echo "$got") >&2; die "$mib MiB: restored tables differ"; }
    local restored
    restored=$(grep -c 'restored log file' "$T/r$mib.log" || true)
    ((restored >= 3)) || die "$mib MiB: recovery restored only $restored segments from the archive"
    ok "$mib MiB: restored cluster identical to the source ($restored segments replayed from the archive)"
    pg_stop "r$mib"
    pg_stop "$name"
}

run_size 1 "$UW_PORT_BASE" $((UW_PORT_BASE + 1))
run_size 64 $((UW_PORT_BASE + 2)) $((UW_PORT_BASE + 3))
ok "archive and recovery with 1 MiB and 64 MiB WAL segments"
