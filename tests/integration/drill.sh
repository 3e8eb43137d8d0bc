#!/usr/bin/env bash
# drill: `ue-pitr drill` (the runbook's verification drill) and `ue-pitr
# restore --archive-mode`, on one cluster.
#
#  1. cluster "src" archiving with ue-wal-push: pgbench -i (4 tables), a
#     schema "app" with a table, a database "shop" with a table; a full
#     backup; WAL switched and archived.
#  2. drill with --check-sql (two checks) and --report: exit 0; the text
#     report has every step's time and the row counts; the JSON report has
#     the same counts as the source (every table, every database), the
#     timings, the recovery point and the backup id; drill.state says
#     result=ok with rto_seconds; the scratch instance promoted (a new
#     timeline) yet nothing new reached the stanza (archive_mode off); no
#     scratch directory and no scratch server process left.
#  3. drill --compare-with the live source: passes within the tolerance.
#  4. one table changed beyond the tolerance (and a check expecting a wrong
#     value): exit 20 naming that table (and the check); the other tables
#     pass; drill.state says result=fail.
#  5. a backup file object with one byte flipped: exit 20, the message names
#     the file; nothing left behind.
#  6. SIGTERM while the drill runs (as soon as its scratch directory
#     exists): exit 20, nothing left behind.
#  7. restore --archive-mode=off --start: promoted, archive_mode off, the
#     stanza's archive unchanged after a WAL switch in the restored cluster;
#     with the default (preserve) the restored cluster keeps archive_mode on
#     and archives its new timeline's history into the stanza.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_OFF=$((P + 1))
P_KEEP=$((P + 2))
STANZA=dr$UW_PORT_BASE
SPOOL=$T/spool

# scratch_left: scratch directories and the processes that run in them.
scratch_left() {
    find "$SPOOL/$STANZA" -mindepth 1 -maxdepth 1 -name "$STANZA-*" 2>/dev/null
    # A regular expression that grep's own command line does not match.
    grep -l -a -E "$STANZA/$STANZA-drill-[0-9]" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
}
assert_clean() {
    local left
    left=$(scratch_left)
    [[ -z "$left" ]] || die "$1: left behind: $left"
    ok "$1: no scratch directory or process left"
}
archive_list() { find "$REPO/$STANZA/archive" -type f ! -name '*.uwtmp.*' -printf '%P\n' | sort; }
drill() { assert_exit_pg "$1" "$PITR" --config "$CONF" --stanza "$STANZA" drill "${@:2}"; }

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
pg_dir "$T/rep" 755
write_config spool-path="$SPOOL"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
q "$P" "create schema app; create table app.claims(id int primary key, status text);
        insert into app.claims select g, case when g % 3 = 0 then 'draft' else 'open' end from generate_series(1, 3000) g" >/dev/null
q "$P" "create database shop" >/dev/null
"$PGBIN/psql" -X -q -h "$T/sock" -p "$P" -U postgres -d shop -v ON_ERROR_STOP=1 \
    -c "create table orders(id int primary key); insert into orders select generate_series(1, 777)" >/dev/null
take_backup --type full
FULL=$BACKUP_ID
# ue-basebackup waited for the WAL up to its end to be archived.
note "backup $FULL of a cluster with pgbench (scale 1), app.claims and database shop"

# ------------------------------------------------------------- 2. a drill --
cat >"$T/checks.sql" <<'EOF'
-- A comment before the first check.
-- check: open claims
-- expect: 2000
select count(*) from app.claims where status <> 'draft';

-- check: branches
-- database: postgres
-- expect: 1
select count(*)
  from pgbench_branches;
EOF
chmod 644 "$T/checks.sql"
before=$(archive_list)
drill 0 --check-sql "$T/checks.sql" --report "$T/rep/drill1.json"
sed 's/^/    | /' "$LAST_OUT"
for w in restore recovery checks total "postgres.public.pgbench_accounts 100000" "shop.public.orders 777" \
    "check 'open claims': ok" "check 'branches': ok"; do
    grep -q -F "$w" "$LAST_OUT" || die "the drill's report lacks '$w'"
done
python3 - "$T/rep/drill1.json" "$FULL" <<'EOF' || die "JSON report: $(cat "$T/rep/drill1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "ok" and d["set"] == sys.argv[2] and d["failures"] == [], d
rows = {(t["database"], t["schema"], t["table"]): t["rows"] for t in d["table_rows"]}
want = {("postgres", "public", "pgbench_accounts"): 100000, ("postgres", "public", "pgbench_branches"): 1,
        ("postgres", "public", "pgbench_tellers"): 10, ("postgres", "public", "pgbench_history"): 0,
        ("postgres", "app", "claims"): 3000, ("shop", "public", "orders"): 777}
assert rows == want, rows
assert d["tables"] == 6 and d["rows"] == sum(want.values()) and d["databases"] == 2, d
for k in ("restore_seconds", "recovery_seconds", "checks_seconds", "rto_seconds"):
    assert d[k] > 0, k
assert d["rto_seconds"] >= d["restore_seconds"] + d["recovery_seconds"] + d["checks_seconds"] - 0.01, d
assert d["recovery_point"]["lsn"], d
assert [c["ok"] for c in d["checks"]] == [True, True], d["checks"]
EOF
ok "drill of $FULL: $(grep -E '^  total' "$LAST_OUT" | tr -s ' '), 6 tables, counts equal the source's"
state=$SPOOL/$STANZA/state/drill.state
grep -qx "result=ok" "$state" || die "drill.state: $(cat "$state")"
for k in "set=$FULL" "tables=6" "rto_seconds=[0-9.]*" "recovery_point=.*"; do
    grep -qx "$k" "$state" || die "drill.state lacks $k: $(cat "$state")"
done
ok "drill.state: $(grep -E '^(result|rto_seconds|rows)=' "$state" | tr '\n' ' ')"
assert_eq "$before" "$(archive_list)" "the promoted scratch instance archived nothing into the stanza"
assert_clean "drill"

# ----------------------------------------------------- 3. against production --
SRC_CONNINFO="host=$T/sock port=$P user=postgres dbname=postgres"
drill 0 --compare-with "$SRC_CONNINFO" --tolerance 1
grep -q "postgres.public.pgbench_accounts 100000 (production 100000)" "$LAST_OUT" ||
    die "no comparison in the report: $(cat "$LAST_OUT")"
ok "drill --compare-with the source: every table within 1 %"

# -------------------------------------------- 4. a table beyond tolerance --
q "$P" "delete from app.claims where id > 2000" >/dev/null
q "$P" "insert into pgbench_history select 1, 1, 1, 1, now() from generate_series(1, 1)" >/dev/null
printf -- '-- check: wrong\n-- expect: 1\nselect 2;\n' >"$T/bad.sql"
chmod 644 "$T/bad.sql"
drill 20 --compare-with "$SRC_CONNINFO" --tolerance 5 --check-sql "$T/bad.sql" --report "$T/rep/drill4.json"
grep -q "table postgres.app.claims: 3000 rows restored, 2000 in production" "$LAST_ERR" ||
    die "exit 20 but the message does not name app.claims: $(cat "$LAST_ERR")"
python3 - "$T/rep/drill4.json" <<'EOF' || die "JSON report: $(cat "$T/rep/drill4.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "fail", d
f = d["failures"]
assert any("check 'wrong'" in x and "got '2', expected '1'" in x for x in f), f
assert any("postgres.app.claims" in x for x in f), f
# pgbench_history: 0 restored, 1 in production: beyond any percentage too.
assert any("pgbench_history" in x for x in f), f
assert not any("pgbench_accounts" in x or "orders" in x for x in f), f
EOF
grep -qx "result=fail" "$state" || die "drill.state after a failed drill: $(cat "$state")"
ok "a table changed beyond the tolerance: exit 20: $(grep -m1 ERROR "$LAST_ERR" | cut -c1-160)"
assert_clean "failed drill"

# ------------------------------------------------ 5. a damaged backup file --
victim=$(find "$REPO/$STANZA/backup/$FULL/pg_data/base" -type f -size +100k | sort | head -1)
[[ -n "$victim" ]] || die "no backup file object over 100 kB"
rel=${victim#"$REPO/$STANZA/backup/$FULL/pg_data/"}
rel=${rel%.zst}
cp "$victim" "$T/out/victim.orig"
flip_byte "$victim" $(($(stat -c %s "$victim") / 2))
drill 20
grep -q "restore.*$rel" "$LAST_ERR" || die "exit 20 but the message does not name $rel: $(cat "$LAST_ERR")"
ok "damaged $rel: exit 20: $(grep -m1 ERROR "$LAST_ERR" | cut -c1-200)"
assert_clean "drill of a damaged backup"
cp "$T/out/victim.orig" "$victim"

# ------------------------------------------------------------ 6. SIGTERM --
pg_bg sigterm "$PITR" --config "$CONF" --stanza "$STANZA" drill
deadline=$((SECONDS + 120))
until [[ -n "$(find "$SPOOL/$STANZA" -mindepth 1 -maxdepth 1 -name "$STANZA-drill-*" 2>/dev/null)" ]]; do
    kill -0 "$BG_JOB" 2>/dev/null || die "the drill ended before its scratch directory appeared: $(cat "$T/out/sigterm.err")"
    ((SECONDS < deadline)) || die "no scratch directory after 120 s"
    sleep 0.02
done
kill -TERM "$BG_PID"
set +e
wait "$BG_JOB"
rc=$?
set -e
assert_eq 20 "$rc" "drill killed with SIGTERM: exit code"
grep -q "interrupted by a signal" "$T/out/sigterm.err" || die "no interruption named: $(cat "$T/out/sigterm.err")"
ok "SIGTERM: $(grep -m1 ERROR "$T/out/sigterm.err" | cut -c1-160)"
assert_clean "drill killed with SIGTERM"

# -------------------------------------------------- 7. --archive-mode --
pg_stop src
before=$(archive_list)
restore_to r_off --archive-mode=off --start --port "$P_OFF"
wait_promoted "$P_OFF" 60
grep -q "^archive_mode = 'off'$" "$T/r_off/postgresql.auto.conf" || die "no archive_mode = 'off' in postgresql.auto.conf"
assert_eq off "$(q "$P_OFF" "show archive_mode")" "restore --archive-mode=off: archive_mode"
q "$P_OFF" "create table after_restore as select 1 x" >/dev/null
switch_wal "$P_OFF" >/dev/null
q "$P_OFF" "checkpoint" >/dev/null
assert_eq "$before" "$(archive_list)" "restore --archive-mode=off, promoted, WAL switched: the stanza's archive is unchanged"
pg_stop r_off

restore_to r_keep --start --port "$P_KEEP"
wait_promoted "$P_KEEP" 60
assert_eq on "$(q "$P_KEEP" "show archive_mode")" "restore (preserve): archive_mode"
grep -q "archive_mode" "$T/r_keep/postgresql.auto.conf" && die "preserve wrote archive_mode into postgresql.auto.conf"
tli=$(q "$P_KEEP" "select lpad(upper(to_hex(timeline_id)), 8, '0') from pg_control_checkpoint()")
deadline=$((SECONDS + 60))
until archive_list | grep -q "^history/$tli.history-"; do
    ((SECONDS < deadline)) || die "restore (preserve): $tli.history not archived: $(archive_list | tail -3)"
    sleep 0.2
done
ok "restore (preserve): the promoted cluster archives its timeline $tli into the stanza"
pg_stop r_keep
