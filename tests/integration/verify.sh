#!/usr/bin/env bash
# ue-pitr verify on a posix repository (issue 12).
#
# A real PostgreSQL 15 cluster archived through ue-wal-push, a full and an
# incremental ue-basebackup with WAL archived before, between and after, then:
#
#  1. verify passes: every object read, both backups restorable; a second
#     run reads no object (all unchanged since verified, from the cache in
#     spool-path), --full reads them all again.
#  2. each damage, undone before the next, gives its own message and exit
#     code 18:
#     - a WAL segment between the two backups removed: "gap", naming the
#       segment, and the full backup "can only reach" the point before it
#       while the incremental stays restorable;
#     - a flipped byte in a backup file object: "corrupt" naming the object,
#       and both backups (the incremental shares the file) not restorable;
#       after the undo, the next run reads exactly that one object again;
#     - a flipped byte in a WAL object: "corrupt" naming it;
#     - a missing manifest: "missing-manifest" naming the backup;
#  3. a restored copy is promoted onto timeline 2, archiving into the same
#     stanza: verify passes and reports the fork; with 00000002.history
#     removed from the repository: "missing-history" for timeline 2.
#  4. verify.state records the outcome and counts.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_TL2=$((P + 1))
STANZA=vf$UW_PORT_BASE
SPOOL=$T/spool

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
write_config "spool-path=$SPOOL" "process-max=2"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
take_backup
FULL=$BACKUP_ID
pgbench_run "$P" -n -t 200 >"$T/out/pgbench-1" 2>&1 || die "pgbench failed"
# Segments between the backups: one of them is the gap of step 2.
for _ in 1 2 3; do
    q "$P" "create table if not exists uw_t(x int); insert into uw_t select generate_series(1, 1000)" >/dev/null
    switch_wal "$P" >/dev/null
done
take_backup --type incr
INCR=$BACKUP_ID
pgbench_run "$P" -n -t 200 >"$T/out/pgbench-2" 2>&1 || die "pgbench failed"
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 60
note "backups $FULL and $INCR, WAL archived up to $seg"

verify() { run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" verify "$@"; }
# expect_fail PATTERN WHAT: the last run exited 18 with a line matching PATTERN.
expect_fail() {
    if [[ "$LAST_RC" != 18 ]] || ! grep -Eq -- "$1" "$LAST_OUT"; then
        echo "----- stdout -----" >&2; cat "$LAST_OUT" >&2
        echo "----- stderr -----" >&2; cat "$LAST_ERR" >&2
        die "$2: expected exit 18 and a line matching '$1' (exit $LAST_RC)"
    fi
    ok "$2: $(grep -E -m1 -- "$1" "$LAST_OUT" | cut -c1-200)"
}
expect_ok() {
    if [[ "$LAST_RC" != 0 ]]; then
        echo "----- stdout -----" >&2; cat "$LAST_OUT" >&2
        echo "----- stderr -----" >&2; cat "$LAST_ERR" >&2
        die "$1: expected exit 0, got $LAST_RC"
    fi
    ok "$1"
}
# counts: "R S" objects read and skipped by the last run.
counts() { sed -nE 's/^objects: ([0-9]+) read .*, ([0-9]+) skipped.*/\1 \2/p' "$LAST_OUT"; }

# ------------------------------------------------------------ 1. sound --
t0=$(now)
verify
expect_ok "verify of a sound repository"
note "first verify: $(elapsed "$t0") s: $(grep '^objects:' "$LAST_OUT")"
grep -q "^backups: 2 restorable of 2" "$LAST_OUT" || { cat "$LAST_OUT"; die "not both backups restorable"; }
read -r read1 skip1 <<<"$(counts)"
((read1 > 20)) || die "first run read only $read1 objects"
assert_eq 0 "$skip1" "objects skipped by the first run"
total=$read1
[[ "$(stat -c %a "$SPOOL/$STANZA/verify")" == 700 ]] || die "cache directory mode"
[[ "$(stat -c %a "$SPOOL/$STANZA/verify/cache")" == 600 ]] || die "cache file mode"

verify
expect_ok "second verify"
assert_eq "0 $total" "$(counts)" "second run: objects read and skipped (nothing changed)"
verify --full
expect_ok "verify --full"
assert_eq "$total 0" "$(counts)" "--full: objects read and skipped"
verify --output json
expect_ok "verify --output json"
python3 - "$LAST_OUT" "$FULL" "$INCR" <<'EOF' || die "json output"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True and d["problems"] == [], d
ids = {b["id"]: b for b in d["backups"]}
assert ids[sys.argv[2]]["restorable"] and ids[sys.argv[3]]["restorable"], d["backups"]
assert d["objects_skipped"] == d["objects_read"] + d["objects_skipped"] > 0
EOF
ok "json: both backups restorable, no problems"

# ----------------------------------------------------- 2a. removed WAL --
stop_full=$(manifest_get "$FULL" stop-wal)
gap=$(seg_add "$stop_full" 1)
obj=$(objects "$gap")
[[ -n "$obj" ]] || die "no object for $gap"
mv "$obj" "$T/held"
verify
expect_fail "^gap: .*$gap" "removed WAL segment"
expect_fail "^gap: .*backup $FULL: $gap is missing, so it can only reach" "the full backup's reach"
grep -Eq "backup $INCR .*: restorable" "$LAST_OUT" || { cat "$LAST_OUT"; die "the incremental should stay restorable"; }
ok "the incremental (started after the gap) stays restorable"
mv "$T/held" "$obj"

# -------------------------------------------------- 2b. backup file byte --
file_obj=$(find "$REPO/$STANZA/backup/$FULL/pg_data/base" -type f -size +100k | head -1)
[[ -n "$file_obj" ]] || die "no large backup file object"
cp -p "$file_obj" "$T/held"
flip_byte "$file_obj" $(($(stat -c %s "$file_obj") / 2))
verify
expect_fail "^corrupt: .*${file_obj#"$REPO/"}" "flipped byte in a backup file"
expect_fail "^not-restorable: .*backup $FULL" "the damaged full backup"
cp -p "$T/held" "$file_obj"
verify
expect_ok "after the undo"
assert_eq "1 $((total - 1))" "$(counts)" "after the undo: only the rewritten object is read again"

# ------------------------------------------------------ 2c. WAL object --
wal_obj=$(objects "$(seg_add "$stop_full" 2)")
cp -p "$wal_obj" "$T/held"
flip_byte "$wal_obj" $(($(stat -c %s "$wal_obj") / 2))
verify
expect_fail "^corrupt: .*${wal_obj#"$REPO/"}" "flipped byte in a WAL object"
cp -p "$T/held" "$wal_obj"

# ------------------------------------------------ 2d. missing manifest --
mv "$REPO/$STANZA/backup/$INCR/manifest" "$T/held"
verify
expect_fail "^missing-manifest: .*backup/$INCR/manifest" "missing manifest"
mv "$T/held" "$REPO/$STANZA/backup/$INCR/manifest"
verify
expect_ok "all damage undone"

# ------------------------------------------- 3. timeline 2, its history --
restore_to tl2 --target-action promote --start --port "$P_TL2"
wait_promoted "$P_TL2" 120
seg2=$(switch_wal "$P_TL2")
[[ "$seg2" == 00000002* ]] || die "switched segment $seg2 is not on timeline 2"
wait_archived "$P_TL2" "$seg2" 60
pg_stop tl2
hist=$(objects 00000002.history)
[[ -n "$hist" ]] || die "00000002.history not archived"
verify
expect_ok "verify with timeline 2"
grep -q "timeline 2 forks from timeline 1" "$LAST_OUT" || { cat "$LAST_OUT"; die "no fork reported"; }
mv "$hist" "$T/held"
verify
expect_fail "^missing-history: .*00000002.history" "missing history file"
mv "$T/held" "$hist"

# ------------------------------------------------------- 4. verify.state --
verify
expect_ok "final verify"
state=$SPOOL/$STANZA/state/verify.state
grep -qx "result=ok" "$state" || { cat "$state"; die "verify.state result"; }
grep -qx "backups_restorable=2" "$state" || { cat "$state"; die "verify.state backups_restorable"; }
grep -Eqx "objects_read=[0-9]+" "$state" || { cat "$state"; die "verify.state objects_read"; }
ok "verify.state: $(tr '\n' ' ' <"$state" | cut -c1-200)"
