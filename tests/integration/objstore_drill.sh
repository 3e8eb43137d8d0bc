#!/usr/bin/env bash
# objstore_drill: `ue-pitr drill` and `restore-table` from object stores: one
# cluster archives into S3 (s3rver, repo1) and Azure (Azurite, repo2) at
# once (tests/objstore.sh), a backup is taken into each, and
#
#  1. drill --repo 1 (S3) and drill --repo 2 (Azure), each --compare-with
#     the live source: exit 0, the backup of that repository, the source's
#     row counts, WAL fetched from that store by the scratch instance; no
#     scratch directory left; nothing new archived into either store by the
#     promoted scratch instances;
#  2. restore-table --repo 2 of a table dropped after the target time: the
#     dump holds exactly the rows at the target.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
S3_PORT=$((P + 10))
AZ_PORT=$((P + 11))
STANZA=od$UW_PORT_BASE
BUCKET=uw-drill
CONTAINER=uw-drill
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$KEY
SPOOL=$T/spool

scratch_left() {
    find "$SPOOL/$STANZA" -mindepth 1 -maxdepth 1 -name "$STANZA-*" 2>/dev/null
    grep -l -a -E "$STANZA/$STANZA-(drill|table)-[0-9]" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
}
# objects: every object of the stanza in both stores, sorted.
objects() {
    "${S3TOOL[@]}" list "s3/$STANZA/archive/" | awk '{ print "s3 " $2 }'
    python3 "$UW_SRC_DIR/tests/azure_tool.py" list "$CONTAINER" "az/$STANZA/archive/" | awk '{ print "az " $2 }'
}

t0=$(now)
objstore_start "$T/os_s3" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
objstore_start "$T/os_az" azure UW_AZURE_PORT="$AZ_PORT"
python3 "$UW_SRC_DIR/tests/azure_tool.py" create-container "$CONTAINER" || die "could not create container $CONTAINER"
s3_tool_init "http://127.0.0.1:$S3_PORT" "$BUCKET"
note "s3rver on $S3_PORT, Azurite on $AZ_PORT ($(elapsed "$t0") s)"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
pg_dir "$T/rep" 755
write_config spool-path="$SPOOL" repo1-type=s3 repo1-path=/s3 repo1-s3-endpoint="http://127.0.0.1:$S3_PORT" \
    repo1-s3-uri-style=path repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER \
    repo1-s3-key-secret=S3RVER repo1-storage-timeout=20 \
    repo2-type=azure "repo2-azure-account=$ACCOUNT" "repo2-azure-container=$CONTAINER" \
    repo2-azure-endpoint=http://127.0.0.1 "repo2-storage-port=$AZ_PORT" repo2-azure-uri-style=path \
    repo2-path=/az repo2-storage-timeout=20 "repo2-azure-key=$KEY"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
q "$P" "create table claims(id int primary key, v text); insert into claims select g, md5(g::text) from generate_series(1, 5000) g" >/dev/null
q "$P" "create table events as select g id from generate_series(1, 1234) g" >/dev/null
take_backup --repo 1
B_S3=$BACKUP_ID
take_backup --repo 2
B_AZ=$BACKUP_ID
note "backups $B_S3 (s3) and $B_AZ (azure)"

# ---------------------------------------------------------------- drills --
SRC_CONNINFO="host=$T/sock port=$P user=postgres dbname=postgres"
before=$(objects)
for r in 1 2; do
    want=$B_S3
    ((r == 1)) || want=$B_AZ
    t0=$(now)
    assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" --repo "$r" drill \
        --compare-with "$SRC_CONNINFO" --tolerance 0 --report "$T/rep/drill$r.json"
    python3 - "$T/rep/drill$r.json" "$want" <<'EOF' || die "repo$r: JSON report: $(cat "$T/rep/drill$r.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "ok" and d["set"] == sys.argv[2], d
rows = {t["table"]: (t["rows"], t["production_rows"]) for t in d["table_rows"]}
assert rows == {"claims": (5000, 5000), "events": (1234, 1234)}, rows
EOF
    [[ -z "$(scratch_left)" ]] || die "repo$r: left behind: $(scratch_left)"
    ok "drill from repo$r: backup $want, counts equal production's, $(elapsed "$t0") s: $(grep -E '^  total' "$LAST_OUT" | tr -s ' ')"
done
assert_eq "$before" "$(objects)" "the promoted scratch instances archived nothing into either store"

# ------------------------------------------------------- restore-table --
q "$P" "insert into claims select g, md5(g::text) from generate_series(5001, 5100) g" >/dev/null
sleep 1.2
T_TIME=$(q "$P" "select now()")
sleep 1.2
q "$P" "delete from claims where id <= 10; drop table claims" >/dev/null
wait_archived "$P" "$(switch_wal "$P")" 60
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" --repo 2 restore-table --table public.claims \
    --target-time "$T_TIME" --out "$T/rep/claims.sql"
grep -q -F "$B_AZ" "$LAST_OUT" || die "restore-table --repo 2 did not use $B_AZ: $(cat "$LAST_OUT")"
q "$P" "create database load" >/dev/null
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$T/sock" -p "$P" -U postgres -d load -f "$T/rep/claims.sql" \
    >"$T/out/load" 2>&1 || { cat "$T/out/load"; die "the dump does not load"; }
assert_eq "5100 1 5100" "$("$PGBIN/psql" -X -A -t -h "$T/sock" -p "$P" -U postgres -d load \
    -c "select count(*) || ' ' || min(id) || ' ' || max(id) from claims")" "restore-table from azure: the rows at the target"
[[ -z "$(scratch_left)" ]] || die "left behind: $(scratch_left)"
