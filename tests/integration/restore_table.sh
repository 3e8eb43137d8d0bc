#!/usr/bin/env bash
# restore_table: `ue-pitr restore-table` brings back a table dropped after
# the target time, without touching production.
#
#  1. cluster "src" archiving with ue-wal-push: table public.claims (rows
#     1-100) in database postgres, a database "other" with a table of its
#     own; a full backup; rows 101-150; the instant T (a pause of over a
#     second on each side); rows 151-200; then the table is dropped (the
#     accident); WAL switched and archived.
#  2. restore-table --table public.claims --target-time T --out FILE (plain):
#     exit 0; the other database's relation files were left sparse (never
#     read from the repository); the file loads with psql into an empty
#     database and holds exactly rows 1-150 with their values; no scratch
#     directory or process is left; production still has no such table.
#  3. the same with --format custom, loaded with pg_restore.
#  4. the runbook's first way back: load the dump into a side schema of
#     production and insert the rows whose primary key is missing.
#  5. refusals: no target (exit 2), a table that did not exist at the
#     target (pg_dump --strict-names fails, exit 10, the output removed).
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
STANZA=rt$UW_PORT_BASE
SPOOL=$T/spool

psql_db() { # psql_db DB SQL: like q, in database DB
    "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$T/sock" -p "$P" -U postgres -d "$1" -c "$2"
}
rows_of() { psql_db "$1" "select count(*) || ' ' || min(id) || ' ' || max(id) || ' ' || md5(string_agg(id || ':' || v, ',' order by id)) from ${2:-public.claims}"; }
scratch_left() {
    find "$SPOOL/$STANZA" -mindepth 1 -maxdepth 1 -name "$STANZA-*" 2>/dev/null
    grep -l -a -E "$STANZA/$STANZA-table-[0-9]" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
}

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
pg_dir "$T/rep" 755
write_config spool-path="$SPOOL"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
q "$P" "create table claims(id int primary key, v text); insert into claims select g, md5(g::text) from generate_series(1, 100) g" >/dev/null
q "$P" "create database other" >/dev/null
psql_db other "create table big as select g, repeat('x', 200) f from generate_series(1, 20000) g" >/dev/null
take_backup --type full
q "$P" "insert into claims select g, md5(g::text) from generate_series(101, 150) g" >/dev/null
sleep 1.2
T_TIME=$(q "$P" "select now()")
sleep 1.2
q "$P" "insert into claims select g, md5(g::text) from generate_series(151, 200) g" >/dev/null
want=$(rows_of postgres "(select * from claims where id <= 150) s")
q "$P" "drop table claims" >/dev/null
wait_archived "$P" "$(switch_wal "$P")" 60
note "claims had rows 1-150 at '$T_TIME', 200 when it was dropped"

# ------------------------------------------------------------ 2. plain --
t0=$(now)
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore-table --table public.claims \
    --target-time "$T_TIME" --out "$T/rep/claims.sql"
note "restore-table (plain): $(elapsed "$t0") s: $(cat "$LAST_OUT")"
if ! [[ "$(cat "$LAST_OUT")" =~ ([0-9]+)\ of\ other\ databases\ left\ sparse ]] || ((BASH_REMATCH[1] == 0)); then
    die "no relation file of database 'other' was left sparse: $(cat "$LAST_OUT")"
fi
grep -q "restoring database 'postgres' (oid 5) only" "$LAST_ERR" || die "no database restriction: $(cat "$LAST_ERR")"
grep -q "CREATE TABLE public.claims" "$T/rep/claims.sql" || die "no table definition in the dump"
q "$P" "create database load_plain" >/dev/null
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$T/sock" -p "$P" -U postgres -d load_plain -f "$T/rep/claims.sql" \
    >"$T/out/load_plain" 2>&1 || { cat "$T/out/load_plain"; die "the plain dump does not load into an empty database"; }
assert_eq "$want" "$(rows_of load_plain)" "plain dump loaded into an empty database: exactly rows 1-150 as at the target"
[[ -z "$(scratch_left)" ]] || die "left behind: $(scratch_left)"
assert_eq "" "$(q "$P" "select to_regclass('public.claims')")" "production untouched: claims is still dropped"

# ----------------------------------------------------------- 3. custom --
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" restore-table --table '"public"."claims"' \
    --target-time "$T_TIME" --out "$T/rep/claims.dump" --format custom
q "$P" "create database load_custom" >/dev/null
"$PGBIN/pg_restore" -h "$T/sock" -p "$P" -U postgres -d load_custom --exit-on-error "$T/rep/claims.dump" \
    >"$T/out/load_custom" 2>&1 || { cat "$T/out/load_custom"; die "pg_restore of the custom dump failed"; }
assert_eq "$want" "$(rows_of load_custom)" "custom dump through pg_restore: exactly rows 1-150"
[[ -z "$(scratch_left)" ]] || die "left behind: $(scratch_left)"

# ---------------------------- 4. into a side schema, insert what is missing --
q "$P" "create table claims(id int primary key, v text); insert into claims values (1, 'changed'), (300, 'new')" >/dev/null
q "$P" "create schema restored" >/dev/null
sed -e 's/\bpublic\.claims\b/restored.claims/g' "$T/rep/claims.sql" |
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$T/sock" -p "$P" -U postgres -d postgres >"$T/out/side" 2>&1 ||
    { cat "$T/out/side"; die "loading into the side schema failed"; }
q "$P" "insert into public.claims select * from restored.claims r where not exists (select 1 from public.claims c where c.id = r.id); drop schema restored cascade" >/dev/null
assert_eq "151 1 300" "$(q "$P" "select count(*) || ' ' || min(id) || ' ' || max(id) from claims")" "side schema, missing primary keys inserted"
assert_eq "changed" "$(q "$P" "select v from claims where id = 1")" "an existing row is kept"

# --------------------------------------------------------- 5. refusals --
assert_exit_pg 2 "$PITR" --config "$CONF" --stanza "$STANZA" restore-table --table public.claims --out "$T/rep/x.sql"
assert_exit_pg 10 "$PITR" --config "$CONF" --stanza "$STANZA" restore-table --table public.nosuch \
    --target-time "$T_TIME" --out "$T/rep/nosuch.sql"
assert_file_absent "$T/rep/nosuch.sql" "a failed restore-table leaves no output"
[[ -z "$(scratch_left)" ]] || die "left behind after a failure: $(scratch_left)"
ok "refusals: no target (2); a table that did not exist (10), nothing left"
