#!/usr/bin/env bash
# metrics: `ue-pitr metrics` and `ue-pitr info` without --stanza (issue 13,
# "Metrics, alerts, dashboard"), on a real cluster and a real backup.
#
#  1. before any backup: no backup_last_success_timestamp sample at all (a
#     missing state is no sample, not a zero), the repository is up, 0 backups
#  2. after a backup: backup_last_success_timestamp within the backup's run,
#     backup_size_bytes{type="full"} > 0 and equal to the manifest's stored=,
#     failures 0, storage usage at least the backup's size, 1 backup, the
#     newest archived WAL a few seconds old; `promtool check metrics` accepts
#     the exposition
#  3. a backup that fails (wrong pg-port): backup_failures_total 0 -> 1,
#     backup_last_exit_code 10, backup_last_success_timestamp unchanged
#  4. a drill's state gives the verification and RTO samples; a corrupt state
#     file fails the command (exit 4) but the other samples are still written
#  5. the archiver's backlog: with archive_command failing, the .ready files
#     of switched segments show in backup_wal_archive_backlog_files
#  6. without --stanza: every stanza of the config file (a second one that
#     has no stanza in the repository); --textfile writes ue_wal.prom 0644
#     with no temporary left; info prints one line per stanza and exits with
#     the failing stanza's code (6)
#  7. packaging: promtool check rules / test rules, the dashboard is JSON
#     whose panels only use metrics that ue-pitr metrics writes
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
# The backup lock is /tmp/ue-wal-<stanza>.<uid>.<hash>.backup.lock: a stanza
# of our own keeps this test off others' locks.
STANZA=metrics$UW_PORT_BASE
SPOOL=$T/spool
PKG=$UW_SRC_DIR/packaging

if ! command -v promtool >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "promtool not found (apt-get install prometheus)"
    note "installing promtool (Debian package prometheus)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
        >"$T/out/apt.log" 2>&1 || { tail "$T/out/apt.log" >&2; die "apt-get install prometheus failed"; }
fi

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
write_config "spool-path=$SPOOL"
lock_hash=$(printf '%s\n%s' "(posix:$REPO)" "$STANZA" | sha256sum | cut -c1-12)
rm_lock() { rm -f "/tmp/ue-wal-$STANZA.$(id -u "$PGUSER_OS").$lock_hash.backup.lock"; }
at_exit rm_lock
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src

# metrics [CODE] [args...]: ue-pitr metrics as the PostgreSQL user (it owns
# the spool), requiring exit code CODE (default 0); the exposition is $M.
metrics() {
    local code=0
    [[ "${1:-}" =~ ^[0-9]+$ ]] && { code=$1; shift; }
    assert_exit_pg "$code" "$PITR" --config "$CONF" "$@" metrics
    M=$LAST_OUT
}
# mval SERIES: the value of SERIES (name{labels} exactly as written) in $M,
# empty when absent.
mval() { awk -v k="$1" '$1 == k { print $2 }' "$M"; }
# check_metrics FILE: promtool check metrics accepts FILE. Its only
# complaint may be the lint about the runbook's own name
# backup_retention_days (exit code 3: lint, not a parse error), which the
# runbook's dashboards and alerts use as it is.
check_metrics() {
    local rc=0 out=$T/out/promtool-metrics
    promtool check metrics <"$1" >"$out" 2>&1 || rc=$?
    if ((rc == 3)) && [[ "$(cat "$out")" == 'backup_retention_days use base unit "seconds" instead of "days"' ]]; then
        rc=0
    fi
    ((rc == 0)) || { cat "$out" >&2; die "promtool check metrics rejects $1 (exit code $rc)"; }
}
L="stanza=\"$STANZA\",repo=\"1\""
S="stanza=\"$STANZA\""

# ----------------------------------------------------------- 1. no backup --
metrics --stanza "$STANZA"
assert_eq "" "$(mval "backup_last_success_timestamp{$L}")" "no backup yet: no last-success sample"
assert_eq "" "$(mval "backup_failures_total{$L}")" "no backup yet: no failure counter"
assert_eq "" "$(mval "backup_verification_last_success{$S}")" "no verification state: no sample"
assert_eq 1 "$(mval "backup_repo_up{$L}")" "repository listed"
assert_eq 0 "$(mval "backup_repo_backups{$L}")" "no backup in the repository"

# ------------------------------------------------------------- 2. backup --
q "$P" "create table t as select g, md5(g::text) from generate_series(1, 50000) g" >/dev/null
t0=$(date +%s)
take_backup
t1=$(date +%s)
tm=$(now)
metrics --stanza "$STANZA"
note "ue-pitr metrics: $(elapsed "$tm") s (state files and one walk of the repository)"
cp "$M" "$T/out/after-backup.prom"
last=$(mval "backup_last_success_timestamp{$L}")
((last >= t0 && last <= t1)) || die "backup_last_success_timestamp $last not within the backup's run $t0..$t1"
ok "backup_last_success_timestamp $last within $t0..$t1"
size=$(mval "backup_size_bytes{$L,type=\"full\"}")
assert_eq "$(manifest_get "$BACKUP_ID" stored)" "$size" "backup_size_bytes is the manifest's stored bytes"
((size > 0)) || die "backup_size_bytes $size"
db=$(mval "backup_database_size_bytes{$L,type=\"full\"}")
((db > size)) || die "backup_database_size_bytes $db not above the compressed size $size"
assert_eq 0 "$(mval "backup_failures_total{$L}")" "no failure yet"
assert_eq 0 "$(mval "backup_last_exit_code{$L}")" "last run succeeded"
assert_eq 1 "$(mval "backup_repo_backups{$L}")" "one complete backup"
usage=$(mval "backup_storage_usage_bytes{$L}")
du_repo=$(find "$REPO/$STANZA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
assert_eq "$du_repo" "$usage" "backup_storage_usage_bytes is the sum of the repository's files"
dur=$(mval "backup_duration_seconds{$L,type=\"full\"}")
awk -v d="$dur" -v m="$((t1 - t0 + 1))" 'BEGIN { exit !(d > 0 && d <= m) }' ||
    die "backup_duration_seconds $dur not within 0..$((t1 - t0 + 1))"
age=$(mval "backup_wal_archive_age_seconds{$S}")
{ [[ -n "$age" ]] && ((age <= $(date +%s) - t0 + 1)); } || die "backup_wal_archive_age_seconds '$age': WAL archived during the backup"
ok "newest WAL archived ${age}s ago"
[[ -n "$(mval "backup_wal_archive_backlog_files{$S,source=\"pg_wal\"}")" ]] ||
    die "no pg_wal backlog sample although pg-path is readable"
check_metrics "$M"
ok "promtool check metrics accepts $(grep -vc '^#' "$M") samples"

# ----------------------------------------------------- 3. failing backup --
assert_exit_pg 10 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" --pg-port 1
metrics --stanza "$STANZA"
assert_eq 1 "$(mval "backup_failures_total{$L}")" "a failed backup counts"
assert_eq 10 "$(mval "backup_last_exit_code{$L}")" "its exit code"
assert_eq "$last" "$(mval "backup_last_success_timestamp{$L}")" "the last success stays"
assert_eq "$size" "$(mval "backup_size_bytes{$L,type=\"full\"}")" "the last success's size stays"

# ----------------------------------------- 4. other commands' state files --
STATE=$SPOOL/$STANZA/state
drill_end=$(($(date +%s) - 3600))
printf 'result=ok\ncode=0\nstart=%d\nend=%d\nlast_success_end=%d\nrto_seconds=42.5\nmessage=\n' \
    $((drill_end - 60)) "$drill_end" "$drill_end" >"$STATE/drill.state"
printf 'result=ok\ncode=0\nend=%d\nnot a key value line\n' "$drill_end" >"$STATE/verify.state"
[[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$STATE"/*.state
metrics 4 --stanza "$STANZA"
grep -q "verify.state" "$LAST_ERR" || die "the corrupt state file is not named: $(cat "$LAST_ERR")"
assert_eq 42.5 "$(mval "backup_drill_rto_seconds{$S}")" "drill RTO"
assert_eq "$drill_end" "$(mval "backup_verification_last_success{$S}")" "verification from the drill"
assert_eq 0 "$(mval "backup_command_last_exit_code{$S,command=\"drill\"}")" "drill passed"
assert_eq "$last" "$(mval "backup_last_success_timestamp{$L}")" "other samples still written"
rm -f "$STATE/verify.state"

# ------------------------------------------------------------ 5. backlog --
# Three segments with data, switched once archive_command fails: the
# archiver may still take the first with the old command before it reloads,
# never the others.
set_archive_command src "false"
for i in 1 2 3; do
    q "$P" "insert into t select g, 'x' from generate_series(1, 1000) g" >/dev/null
    seg=$(switch_wal "$P")
done
metrics --stanza "$STANZA"
backlog=$(mval "backup_wal_archive_backlog_files{$S,source=\"pg_wal\"}")
((backlog >= 2)) || die "backlog $backlog with three segments switched while archiving fails"
ok "archiver backlog $backlog while archive_command fails"
enable_archiving src
wait_archived "$P" "$seg" 120

# ------------------------------------------------ 6. every stanza, files --
printf '\n[ghost%s]\npg-port=1\n' "$UW_PORT_BASE" >>"$CONF"
GHOST=ghost$UW_PORT_BASE
pg_dir "$T/textfile" 755
metrics --textfile "$T/textfile"
[[ ! -s "$LAST_OUT" ]] || die "--textfile also printed to stdout"
M=$T/textfile/ue_wal.prom
assert_eq 644 "$(stat -c %a "$M")" "ue_wal.prom readable by the collector"
assert_eq "ue_wal.prom" "$(ls "$T/textfile")" "no temporary file left"
[[ -n "$(mval "backup_last_success_timestamp{$L}")" ]] || die "stanza $STANZA missing from $M"
assert_eq 0 "$(mval "backup_repo_backups{stanza=\"$GHOST\",repo=\"1\"}")" "the second stanza has its samples"
check_metrics "$M"
ok "promtool check metrics accepts the two stanzas' file"

assert_exit_pg 6 "$PITR" --config "$CONF" info
grep -E "^$STANZA: ok, last backup $BACKUP_ID ended [0-9]+[smhd].* ago, newest WAL [0-9A-F]{24} \(archived [0-9]+[smhd].* ago\)$" "$LAST_OUT" >/dev/null ||
    die "info line of $STANZA: $(cat "$LAST_OUT")"
grep -E "^$GHOST: error 6 \(stanza\): " "$LAST_OUT" >/dev/null || die "info line of $GHOST: $(cat "$LAST_OUT")"
assert_eq 2 "$(wc -l <"$LAST_OUT")" "one line per stanza"
note "info: $(tr '\n' '|' <"$LAST_OUT")"
assert_exit_pg 6 "$PITR" --config "$CONF" --output json info
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = {x["stanza"]: x for x in d["stanzas"]}
a, g = s[sys.argv[2]], s[sys.argv[3]]
assert a["status"] == "ok" and a["last_backup"]["id"] == sys.argv[4], a
assert a["newest_wal"]["time_source"] == "archived" and a["newest_wal"]["age_seconds"] >= 0, a
assert g["status"] == "error" and g["error"]["code"] == 6, g
' "$LAST_OUT" "$STANZA" "$GHOST" "$BACKUP_ID" || die "info --output json: $(cat "$LAST_OUT")"
ok "info --output json without --stanza"

# ---------------------------------------------------------- 7. packaging --
promtool check rules "$PKG/prometheus/ue-wal.rules.yml" >"$T/out/rules" 2>&1 ||
    { cat "$T/out/rules" >&2; die "promtool check rules"; }
(cd "$PKG/prometheus" && promtool test rules ue-wal.rules.test.yml) >"$T/out/rules-test" 2>&1 ||
    { cat "$T/out/rules-test" >&2; die "promtool test rules"; }
ok "alert rules: $(grep -o '[0-9]* rules found' "$T/out/rules"), unit tests pass"
python3 -m json.tool "$PKG/grafana/ue-wal-dashboard.json" >/dev/null || die "dashboard is not JSON"
# Every metric the rules and the dashboard use is one that metrics wrote here
# (the textfile went out with step 4's drill state in place).
used=$(grep -ohE '\bbackup_[a-z_]+' "$PKG/grafana/ue-wal-dashboard.json" "$PKG/prometheus/ue-wal.rules.yml" | sort -u)
written=$(cat "$T/out/after-backup.prom" "$T/textfile/ue_wal.prom" | awk '/^# TYPE/ { print $3 }' | sort -u)
missing=$(comm -23 <(echo "$used") <(echo "$written"))
[[ -z "$missing" ]] || die "used by the rules or the dashboard but never written: $missing"
ok "the dashboard and the rules use only written metrics"
