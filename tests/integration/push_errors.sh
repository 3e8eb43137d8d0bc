#!/usr/bin/env bash
# push_errors: ue-wal-push / ue-pitr refusals and command-line contract.
#
#  (a) re-pushing an archived segment with identical content -> 0, no new object
#  (b) different content under an archived name -> 7, object untouched
#  (c) WAL of another cluster -> 8, nothing stored
#  (d) encrypted stanza, fetch with the wrong passphrase (env overrides the
#      file) -> 151 and "passphrase" on stderr; right passphrase -> 0
#  (e) unknown option -> 2 and one stderr line naming it
#  (f) --cipher-pass on the command line is refused -> 2
#  (g) --help / --version -> 0 for all three binaries
#  (h) stanza-create twice -> 0; against another cluster -> 6
#  (i) log lines carry a UTC timestamp and the pid; log-path writes
#      <stanza>-<command>.log (0600, appended); a backup and a restore off a
#      terminal log their progress (detail)
#  (j) help per subcommand, "did you mean" for commands and options, -h
#  (k) as root: commands that write to a postgres-owned repository refuse,
#      naming the owner, and leave nothing root-owned in it
#  (l) a missing default configuration file is named in the error
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
P_OTHER=$((P + 2))

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
for i in 1 2; do
    q "$P" "create table t$i as select g from generate_series(1, 1000) g" >/dev/null
    last_seg=$(switch_wal "$P")
done
wait_archived "$P" "$last_seg"
note "archived up to $last_seg"
pg_dir "$T/wal" 700
pg_dir "$T/dst" 700

# A full segment written by pgbench -i (well past the first pages).
seg=$(seg_add "$last_seg" -2)
obj=$(objects "$seg")
[[ $(grep -c . <<<"$obj") == 1 ]] || die "setup: expected one object for $seg, found: $obj"
obj_sha=$(sha "$obj")
nobj=$(find "$REPO" -type f | wc -l)

# (a) same content again
cp "$T/src/pg_wal/$seg" "$T/wal/$seg"
chown "$PGUSER_OS:" "$T/wal/$seg" 2>/dev/null || true
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$seg"
assert_eq 1 "$(object_count "$seg")" "(a) objects for $seg after identical re-push"
assert_eq "$obj_sha" "$(sha "$obj")" "(a) stored object unchanged"
# PostgreSQL's own way: relative path from the data directory
assert_exit_pg 0 bash -c "cd '$T/src' && exec '$PUSH' --config '$CONF' --stanza '$STANZA' 'pg_wal/$seg'"
assert_eq 1 "$(object_count "$seg")" "(a) re-push with the relative path pg_wal/$seg (exit 0)"

# (b) different content, same name
flip_byte "$T/wal/$seg" 1000000
assert_exit_pg 7 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$seg"
note "(b) stderr: $(head -c 300 "$LAST_ERR" | tr '\n' ' ')"
TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z \[[0-9]+\] '
grep -qE "${TS_RE}ue-wal-push: ERROR: \[7 " "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(i) the error line has no timestamp and pid"; }
assert_eq "$obj_sha" "$(sha "$obj")" "(b) stored object unchanged after the conflicting push"
assert_eq 1 "$(object_count "$seg")" "(b) no second object for $seg"
assert_eq "$nobj" "$(find "$REPO" -type f | wc -l)" "(b) repository file count unchanged"
# ... and the archived content is still the original
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
cmp -s "$T/dst/$seg" "$T/src/pg_wal/$seg" || die "(b) archived $seg no longer fetches as the original"
rm -f "$T/dst/$seg"
ok "(b) conflicting content refused with exit 7, archive intact"

# A second, unrelated cluster (also used by (h)).
pg_init other "$P_OTHER"
pg_conf other "wal_keep_size = 256MB"
pg_start other
# Give it a completed segment whose name the demo stanza has not archived
# yet, so that only its system identifier is wrong.
target=$(($(seg_no "$last_seg") + 2))
while (($(seg_no "$(current_seg "$P_OTHER")") <= target)); do
    q "$P_OTHER" "create table if not exists x(i int); insert into x values (1)" >/dev/null
    switch_wal "$P_OTHER" >/dev/null
done
oseg=$(seg_name 00000001 "$target")
[[ -f "$T/other/pg_wal/$oseg" ]] || die "setup: $oseg missing from the other cluster's pg_wal"
assert_eq 0 "$(object_count "$oseg")" "setup: $oseg not yet in the demo archive"
cp "$T/other/pg_wal/$oseg" "$T/wal/$oseg"
chown "$PGUSER_OS:" "$T/wal/$oseg" 2>/dev/null || true
sys_src=$(q "$P" "select system_identifier from pg_control_system()")
sys_other=$(q "$P_OTHER" "select system_identifier from pg_control_system()")
assert_ne "$sys_src" "$sys_other" "setup: the two clusters have different system identifiers"

# (c) WAL from the other cluster
nobj=$(find "$REPO" -type f | wc -l)
assert_exit_pg 8 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$oseg"
note "(c) stderr: $(head -c 300 "$LAST_ERR" | tr '\n' ' ')"
assert_eq 0 "$(object_count "$oseg")" "(c) nothing stored for $oseg"
assert_eq "$nobj" "$(find "$REPO" -type f | wc -l)" "(c) repository file count unchanged"

# (d) wrong passphrase
ECONF=$T/enc.conf
EREPO=$T/repo-enc
PASS_A="passphrase-A-$RANDOM$RANDOM"
PASS_B="passphrase-B-$RANDOM$RANDOM"
write_config -f "$ECONF" -r "$EREPO" cipher-type=aes-256-gcm cipher-pass="$PASS_A"
assert_exit_pg 0 "$PITR" --config "$ECONF" --stanza "$STANZA" stanza-create
cp "$T/src/pg_wal/$seg" "$T/wal/$seg"
assert_exit_pg 0 "$PUSH" --config "$ECONF" --stanza "$STANZA" "$T/wal/$seg"
assert_eq 1 "$(object_count "$seg" "$EREPO")" "(d) segment pushed into the encrypted repository"
eobj=$(objects "$seg" "$EREPO")
[[ "$eobj" == *.enc ]] || die "(d) encrypted object name does not end in .enc: $eobj"
assert_exit_pg 151 env UE_WAL_CIPHER_PASS="$PASS_B" "$FETCH" --config "$ECONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
grep -qi passphrase "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(d) stderr does not mention the passphrase"; }
assert_file_absent "$T/dst/$seg" "(d) wrong passphrase left a destination file"
if grep -qF -- "$PASS_B" "$LAST_ERR"; then die "(d) stderr reveals the passphrase"; fi
ok "(d) wrong passphrase: exit 151 ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
assert_exit_pg 0 env UE_WAL_CIPHER_PASS="$PASS_A" "$FETCH" --config "$ECONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
cmp -s "$T/dst/$seg" "$T/src/pg_wal/$seg" || die "(d) fetched $seg (right passphrase) differs"
rm -f "$T/dst/$seg"
assert_exit_pg 0 "$FETCH" --config "$ECONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
cmp -s "$T/dst/$seg" "$T/src/pg_wal/$seg" || die "(d) fetched $seg (passphrase from the file) differs"
ok "(d) control: right passphrase from env or file fetches the original"
# pushing with the wrong passphrase must not add a second object either
cp "$T/src/pg_wal/$seg" "$T/wal/$seg"
run as_pg env UE_WAL_CIPHER_PASS="$PASS_B" "$PUSH" --config "$ECONF" --stanza "$STANZA" "$T/wal/$seg"
note "(d) push with the wrong passphrase: exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
assert_ne 0 "$LAST_RC" "(d) push of an archived segment with the wrong passphrase fails"
assert_eq 1 "$(object_count "$seg" "$EREPO")" "(d) still one object after a push with the wrong passphrase"
# a segment not archived yet: a wrong passphrase must not store an object
# that the right passphrase could never decrypt
seg_new=$(seg_add "$seg" 1)
cp "$T/src/pg_wal/$seg_new" "$T/wal/$seg_new"
chown "$PGUSER_OS:" "$T/wal/$seg_new" 2>/dev/null || true
run as_pg env UE_WAL_CIPHER_PASS="$PASS_B" "$PUSH" --config "$ECONF" --stanza "$STANZA" "$T/wal/$seg_new"
assert_ne 0 "$LAST_RC" "(d) push of a new segment with the wrong passphrase fails ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
assert_eq 0 "$(object_count "$seg_new" "$EREPO")" "(d) nothing stored for $seg_new with the wrong passphrase"
assert_exit_pg 0 "$PUSH" --config "$ECONF" --stanza "$STANZA" "$T/wal/$seg_new"
ok "(d) control: the same push with the passphrase from the file exits 0"
if grep -rqF -- "$PASS_A" "$T"/*.log "$T"/out/*.err 2>/dev/null; then die "passphrase A appears in a log or stderr"; fi

# (e) unknown option
for b in "$PUSH" "$FETCH" "$PITR"; do
    n=$(basename "$b")
    case $n in
    ue-wal-push) args=("$T/wal/$seg") ;;
    ue-wal-fetch) args=("$seg" "$T/dst/x") ;;
    ue-pitr) args=(stanza-create) ;;
    esac
    assert_exit_pg 2 "$b" --bogus-option=1 --config "$CONF" --stanza "$STANZA" "${args[@]}"
    grep -q 'bogus-option' "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(e) $n: stderr does not name bogus-option"; }
    lines=$(wc -l <"$LAST_ERR")
    [[ "$lines" -le 1 ]] || { cat "$LAST_ERR" >&2; die "(e) $n: expected one stderr line, got $lines"; }
    ok "(e) $n --bogus-option=1: exit 2, '$(head -1 "$LAST_ERR")'"
done
assert_file_absent "$T/dst/x"

# (f) the passphrase is not accepted on the command line (ps would show it)
assert_exit_pg 2 "$PUSH" --config "$ECONF" --stanza "$STANZA" --cipher-pass=x "$T/wal/$seg"
ok "(f) ue-wal-push --cipher-pass=x: exit 2 ($(head -1 "$LAST_ERR"))"
assert_exit_pg 2 "$FETCH" --config "$ECONF" --stanza "$STANZA" --cipher-pass x "$seg" "$T/dst/x"
assert_file_absent "$T/dst/x"
ok "(f) ue-wal-fetch --cipher-pass x: exit 2"

# (g) --help / --version
for b in "$PUSH" "$FETCH" "$PITR"; do
    n=$(basename "$b")
    assert_exit 0 "$b" --help
    [[ -s "$LAST_OUT" || -s "$LAST_ERR" ]] || die "(g) $n --help printed nothing"
    assert_exit 0 "$b" --version
    grep -qE '[0-9]+\.[0-9]+' "$LAST_OUT" "$LAST_ERR" || die "(g) $n --version prints no version number"
    ok "(g) $n --help and --version: exit 0 ($(cat "$LAST_OUT" "$LAST_ERR" | head -1))"
done

# (h) stanza-create is idempotent, and refuses another cluster
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
ok "(h) stanza-create again (twice): exit 0"
OCONF=$T/other.conf
write_config -f "$OCONF" -n other
before=$(find "$REPO/$STANZA" -type f -not -path '*/archive/*/*' -exec sha256sum {} + | sort)
assert_exit_pg 6 "$PITR" --config "$OCONF" --stanza "$STANZA" stanza-create
note "(h) stderr: $(head -c 300 "$LAST_ERR" | tr '\n' ' ')"
after=$(find "$REPO/$STANZA" -type f -not -path '*/archive/*/*' -exec sha256sum {} + | sort)
[[ "$before" == "$after" ]] || die "(h) stanza metadata changed by the refused stanza-create"
ok "(h) stanza-create for another cluster on the same stanza: exit 6, metadata unchanged"
# and the archive still works for the original cluster
q "$P" "insert into t1 values (0)" >/dev/null
s=$(switch_wal "$P")
wait_archived "$P" "$s"
assert_eq 0 "$(q "$P" "select failed_count from pg_stat_archiver")" "archiver failed_count at the end"

# (i) log-path and progress
pg_dir "$T/logs" 700
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" --log-path="$T/logs" "$T/src/pg_wal/$seg"
# stderr at warn, the file at info (log-level-file's default)
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" --log-path="$T/logs" --log-level=warn "$T/src/pg_wal/$seg"
if grep -q INFO "$LAST_ERR"; then die "(i) --log-level=warn printed INFO lines"; fi
LOGF=$T/logs/$STANZA-wal-push.log
[[ -f "$LOGF" ]] || die "(i) no log file $LOGF: $(ls "$T/logs")"
assert_eq 600 "$(stat -c %a "$LOGF")" "(i) mode of $LOGF"
grep -qE "${TS_RE}ue-wal-push: INFO: $seg already archived" "$LOGF" || { cat "$LOGF" >&2; die "(i) no timestamped line in $LOGF"; }
[[ $(grep -oE '\[[0-9]+\] ue-wal-push' "$LOGF" | sort -u | wc -l) -ge 2 ]] || { cat "$LOGF" >&2; die "(i) $LOGF does not hold both runs (appended)"; }
ok "(i) log-path: $LOGF (0600, both runs): $(head -1 "$LOGF" | cut -c1-120)"
take_backup --log-level=detail --log-path="$T/logs"
grep -qE "${TS_RE}ue-basebackup: DETAIL: backup: .* of .* \(100%\), ([0-9]+) of \1 files" "$BACKUP_LOG" ||
    { cat "$BACKUP_LOG" >&2; die "(i) no final progress line in the backup's log"; }
grep -q "ue-basebackup: INFO: " "$T/logs/$STANZA-basebackup.log" || die "(i) no $STANZA-basebackup.log"
ok "(i) backup progress: $(grep -m1 'DETAIL: backup: ' "$BACKUP_LOG" | sed 's/.*DETAIL: //')"
restore_to r1 --log-level=detail --log-path="$T/logs"
grep -qE "ue-pitr: DETAIL: restore: .* \(100%\), ([0-9]+) of \1 files" "$RESTORE_LOG" ||
    { cat "$RESTORE_LOG" >&2; die "(i) no final progress line in the restore's log"; }
[[ -f "$T/logs/$STANZA-restore.log" ]] || die "(i) no $STANZA-restore.log: $(ls "$T/logs")"
# incremental: cheap, the switch is what is checked
assert_exit_pg 0 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" --type=incr --log-level=detail --progress=n
if grep -q "DETAIL: backup: " "$LAST_ERR"; then die "(i) --progress=n still logged progress"; fi
ok "(i) restore progress: $(grep -m1 'DETAIL: restore: ' "$RESTORE_LOG" | sed 's/.*DETAIL: //'); --progress=n: none"

# (j) help and suggestions
assert_exit 0 "$PITR" restore --help
grep -q -- '--target-time=TIMESTAMP' "$LAST_OUT" || die "(j) restore --help lacks --target-time"
if grep -q -- '--output=' "$LAST_OUT"; then die "(j) restore --help lists info's --output"; fi
assert_exit 0 "$PITR" --help info
grep -q -- '--output=text|json' "$LAST_OUT" || die "(j) --help info lacks --output=text|json"
if grep -q -- '--target-time' "$LAST_OUT"; then die "(j) --help info lists --target-time"; fi
assert_exit 0 "$PUSH" -h
grep -qE -- '--repoN-type=[a-z0-9|]*s3' "$LAST_OUT" || die "(j) ue-wal-push -h lacks the repository types"
if grep -q -- '--pg-port' "$LAST_OUT"; then die "(j) ue-wal-push -h lists PostgreSQL options"; fi
assert_exit 2 "$PITR" --config "$CONF" --stanza "$STANZA" restor
grep -q "unknown command 'restor' (did you mean 'restore'?)" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(j) no suggestion for restor"; }
assert_exit 2 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" --pg-prot=1
grep -q "unknown option '--pg-prot' (did you mean '--pg-port'?)" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(j) no suggestion for --pg-prot"; }
ok "(j) per-command help, -h, and: $(sed 's/.*ERROR: //' "$LAST_ERR")"

# (k) root and a repository that postgres owns
if [[ $(id -u) -eq 0 && "$PGUSER_OS" != root ]]; then
    [[ $(stat -c %U "$REPO") == "$PGUSER_OS" ]] || die "(k) setup: $REPO is not owned by $PGUSER_OS"
    assert_exit 2 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/src/pg_wal/$seg"
    grep -q "refusing to run as root: repository repo1 '$REPO' belongs to '$PGUSER_OS'; run as that user (sudo -u $PGUSER_OS" "$LAST_ERR" ||
        { cat "$LAST_ERR" >&2; die "(k) ue-wal-push as root: not refused as expected"; }
    assert_exit 2 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
    assert_exit 2 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA"
    grep -q "belongs to '$PGUSER_OS'" "$LAST_ERR" || die "(k) ue-basebackup as root: not refused"
    rootowned=$(find "$REPO" -user root | head -3)
    [[ -z "$rootowned" ]] || die "(k) root-owned files in the repository: $rootowned"
    ok "(k) as root: push, stanza-create and backup refused: $(sed 's/.*ERROR: //' "$LAST_ERR")"
else
    note "(k) skipped: not root"
fi

# (l) the default configuration file, missing
if [[ ! -e /etc/ue-wal/ue-wal.conf ]]; then
    assert_exit_pg 2 "$PUSH" --stanza "$STANZA" "$T/src/pg_wal/$seg"
    grep -q "the configuration file /etc/ue-wal/ue-wal.conf does not exist" "$LAST_ERR" ||
        { cat "$LAST_ERR" >&2; die "(l) the missing default configuration file is not named"; }
    ok "(l) $(sed 's/.*ERROR: //' "$LAST_ERR")"
else
    note "(l) skipped: /etc/ue-wal/ue-wal.conf exists here"
fi
