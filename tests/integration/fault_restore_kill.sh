#!/usr/bin/env bash
# fault_restore_kill: interrupted restores and racing pushes (issue 11's
# fault scenarios).
#  1. cluster "src" archiving with ue-wal-push; pgbench -i -s 5 and a full
#     ue-basebackup with process-max 2; more pgbench; pg_switch_wal,
#     archived.  A reference restore gives the expected table checksums and
#     the number of files a restore writes.
#     The cluster archives into two repositories: repo1 posix, repo2 S3
#     (s3rver on UW_PORT_BASE+10); a second full backup goes to repo2.
#  2. `ue-pitr restore` SIGKILLed at three points of its progress (after the
#     first file, at about a third and at about two thirds of the files it
#     writes: the test waits for the count, never for a time), each time
#     into the same data directory, then once more with --delta and --start:
#     it completes, recovers and promotes, and every table's checksum equals
#     the source's.  Twice: from repo1 (posix), then with --repo 2 from S3
#     (the restore's files and the recovery's WAL from s3rver).  Printed:
#     where each kill landed.
#  3. concurrent pushes of one segment into a fresh repository, 10 rounds
#     each: (a) four identical copies pushed at once: every call exits 0 and
#     exactly one object is stored; (b) two different contents under one
#     name pushed at once: exactly one call exits 0, the other exits 7
#     (different content already archived), exactly one object is stored,
#     and it fetches back as the winner's bytes.  No temporary file is left.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_R=$((P + 1))
P_S=$((P + 2))
S3_PORT=$((P + 10))
STANZA=fk$UW_PORT_BASE
BUCKET=uw-fk

# ---------------------------------------------------------------- 1. setup --
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config repo2-type=s3 repo2-path=/fk "repo2-s3-endpoint=http://127.0.0.1:$S3_PORT" repo2-s3-uri-style=path \
    repo2-s3-bucket=$BUCKET repo2-s3-region=us-east-1 repo2-s3-key=S3RVER repo2-s3-key-secret=S3RVER \
    repo2-storage-timeout=20
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 5 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
take_backup --type full --process-max 2
FULL=$BACKUP_ID
take_backup --type full --process-max 2 --repo 2
FULL_S3=$BACKUP_ID
pgbench_run "$P" -n -c 2 -j 2 -t 300 >"$T/out/pgbench-run" 2>&1 ||
    { tail "$T/out/pgbench-run"; die "pgbench run failed"; }
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 120
src_sum=$(table_checksum "$P")
note "backups $FULL (repo1, posix) and $FULL_S3 (repo2, S3); archived up to $last_seg"
# Nothing writes to src from here on: the restores must reach exactly this.

# The file count of a complete restore (without starting it): the kill
# points are fractions of it.
restore_to ref --set "$FULL"
total=$(find "$T/sock/ref" -type f | wc -l)
((total > 100)) || die "the reference restore wrote only $total files"
note "a restore writes $total files"
rm -rf "$T/sock/ref" "$T/ref" "$T/ref.log"

# ------------------------------------------------------ 2. killed restores --
# kill_restores NAME PORT WHERE [restore args...]: three killed restores into
# $T/sock/NAME, then --delta --start on PORT; identical data.  Sets KILLS.
kill_restores() {
    local name=$1 port=$2 where=$3 frac want n deadline
    shift 3
    local -a delta
    pg_dir "$T/sock/$name" 700
    ln -s "sock/$name" "$T/$name"
    ln -sfn "$name/log/ue-wal-restore.log" "$T/$name.log"
    KILLS=()
    for frac in 0 33 66; do
        want=$((total * frac / 100 + 1))
        delta=()
        # The first run finds an empty directory; later runs find the previous
        # run's leftovers, which only --delta accepts.
        ((${#KILLS[@]} == 0)) || delta=(--delta)
        pg_bg "restore-$name-$frac" "$PITR" --config "$CONF" --stanza "$STANZA" restore \
            --pgdata "$T/sock/$name" "$@" "${delta[@]}"
        deadline=$((SECONDS + 300))
        n=0
        while kill -0 "$BG_PID" 2>/dev/null; do
            n=$(find "$T/sock/$name" -type f 2>/dev/null | wc -l)
            ((n < want)) || break
            ((SECONDS < deadline)) || die "$where: restore made no progress to $want files in 300 s (at $n)"
            sleep 0.01
        done
        if kill -KILL "$BG_PID" 2>/dev/null; then
            wait "$BG_JOB" 2>/dev/null || true
            n=$(find "$T/sock/$name" -type f | wc -l)
            KILLS+=("killed at $n/$total files")
        else
            wait "$BG_JOB" || true
            KILLS+=("finished before the kill ($frac %)")
        fi
    done
    note "$where: restores: ${KILLS[*]}"

    pg_adopt "$name" "$port"
    local t0
    t0=$(now)
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/sock/$name" \
        "$@" --delta --start --port "$port"
    wait_promoted "$port" 300
    note "$where: --delta rerun restored and recovered in $(elapsed "$t0") s"
    assert_eq "$src_sum" "$(table_checksum "$port")" "$where: table checksums after three killed restores and a --delta rerun"
    ok "$where: three killed restores, then --delta: identical data (${KILLS[*]})"
    pg_stop "$name"
}
kill_restores r "$P_R" "posix (repo1)" --set "$FULL"
kill_restores rs "$P_S" "S3 (repo2)" --set "$FULL_S3" --repo 2
# The S3 recovery's WAL came from repo2 too: its restore_command names it.
grep -q -- "--repo=2" "$T/sock/rs/postgresql.auto.conf" ||
    die "the restore with --repo 2 wrote a restore_command without --repo=2"

# ------------------------------------------------------ 3. racing pushes --
# A real segment, as archived (pg_wal may hold recycled files by then).
seg=$last_seg
pg_dir "$T/race" 755
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/race/a"
cp "$T/race/a" "$T/race/b"
# Another content under the same name: one byte of record data changed, the
# page headers (cluster, timeline, address) untouched.
flip_byte "$T/race/b" 100000
chown -R "$PGUSER_OS:" "$T/race" 2>/dev/null || true

# race_round KIND ROUND: one round into a fresh repository, every push
# started at once, each from a directory of its own holding its content
# under the segment's name; prints the exit codes, sorted.
race_round() {
    local kind=$1 round=$2 i d repo
    repo=$T/race-repo-$kind-$round
    cp -a "$T/race-template" "$repo"
    write_config -f "$T/race-$kind-$round.conf" -r "$repo"
    local -a jobs=() srcs
    if [[ $kind == same ]]; then srcs=(a a a a); else srcs=(a b); fi
    for i in "${!srcs[@]}"; do
        d=$T/race/$kind-$round-$i
        pg_dir "$d" 755
        cp "$T/race/${srcs[$i]}" "$d/$seg"
        chown "$PGUSER_OS:" "$d/$seg" 2>/dev/null || true
    done
    for i in "${!srcs[@]}"; do
        d=$T/race/$kind-$round-$i
        as_pg "$PUSH" --config "$T/race-$kind-$round.conf" --stanza "$STANZA" "$d/$seg" \
            >/dev/null 2>"$d.err" &
        jobs+=($!)
    done
    local rcs=()
    for i in "${!jobs[@]}"; do
        if wait "${jobs[$i]}"; then rcs+=(0); else rcs+=($?); fi
    done
    local objs
    objs=$(stored_objects "$seg" "$repo" | wc -l)
    [[ $objs == 1 ]] || die "round $round ($kind): $objs objects stored for $seg (exit codes ${rcs[*]})"
    [[ -z "$(repo_temp_files "$repo")" ]] || die "round $round ($kind): temporary files left: $(repo_temp_files "$repo")"
    if [[ $kind == diff ]]; then
        local winner=""
        for i in "${!rcs[@]}"; do [[ ${rcs[$i]} == 0 ]] && winner=${srcs[$i]}; done
        if [[ -n "$winner" ]]; then
            assert_exit_pg 0 "$FETCH" --config "$T/race-$kind-$round.conf" --stanza "$STANZA" "$seg" \
                "$T/race/fetched-$round"
            cmp -s "$T/race/fetched-$round" "$T/race/$winner" ||
                die "round $round: the stored object is not the winner's content"
        fi
    fi
    printf '%s\n' "${rcs[@]}" | sort -n | tr '\n' ' '
}
# A fresh repository per round: a copy of one with the stanza created.
write_config -f "$T/race-template.conf" -r "$T/race-template"
assert_exit_pg 0 "$PITR" --config "$T/race-template.conf" --stanza "$STANZA" stanza-create
same_ok=0
diff_ok=0
for r in $(seq 10); do
    out=$(race_round same "$r")
    [[ "$out" == "0 0 0 0 " ]] || die "identical concurrent pushes, round $r: exit codes $out (want all 0)"
    same_ok=$((same_ok + 1))
    out=$(race_round diff "$r")
    [[ "$out" == "0 7 " ]] || die "different concurrent pushes, round $r: exit codes $out (want one 0 and one 7)"
    diff_ok=$((diff_ok + 1))
done
ok "concurrent pushes of one segment: $same_ok/10 identical rounds all 0, $diff_ok/10 different rounds one 0 and one 7, one object each"
