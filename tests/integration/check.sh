#!/usr/bin/env bash
# ue-pitr check (issue 12) on a real PostgreSQL 15 cluster archiving into two
# posix repositories through ue-wal-push:
#
#  1. wired: exit 0, the switched segment reached both repositories, and
#     check.state says result=ok with that segment;
#  2. archive_command empty: exit 19 naming archive_command and the fix;
#  3. archive_command pushing to another stanza: exit 19 naming both stanzas;
#  4. archive_command not calling ue-wal-push: exit 19;
#  5. the second repository not writable for the archiver (the stanza is
#     there, pushes fail): exit 12 naming repo2, not repo1, within
#     archive-timeout; check.state says result=fail;
#  6. a third repository without the stanza: exit 6 naming repo3 and
#     stanza-create.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
STANZA=ck$UW_PORT_BASE
SPOOL=$T/spool
REPO2=$T/repo2

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
pg_dir "$SPOOL" 700
pg_dir "$REPO2" 750
write_config "spool-path=$SPOOL" "repo2-type=posix" "repo2-path=$REPO2"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
WIRED="$PUSH --config $CONF --stanza $STANZA %p"
set_archive_command src "$WIRED"

check() { run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" check "$@"; }
# expect CODE PATTERN WHAT: the last check exited CODE with stderr (or
# stdout for 0) matching PATTERN.
expect() {
    local f=$LAST_ERR
    [[ "$1" == 0 ]] && f=$LAST_OUT
    if [[ "$LAST_RC" != "$1" ]] || ! grep -Eq -- "$2" "$f"; then
        echo "----- stdout -----" >&2; cat "$LAST_OUT" >&2
        echo "----- stderr -----" >&2; cat "$LAST_ERR" >&2
        die "$3: expected exit $1 and '$2' (exit $LAST_RC)"
    fi
    ok "$3: $(grep -E -m1 -- "$2" "$f" | cut -c1-220)"
}
state() { grep -E "^$1=" "$SPOOL/$STANZA/state/check.state" | cut -d= -f2-; }

# ------------------------------------------------------------- 1. wired --
check
expect 0 "^check: ok" "wired cluster"
seg=$(sed -nE 's/^WAL segment ([0-9A-F]{24}) reached repo2.*/\1/p' "$LAST_OUT")
[[ -n "$seg" ]] || { cat "$LAST_OUT"; die "no segment reported for repo2"; }
[[ -n "$(objects "$seg" "$REPO")" && -n "$(objects "$seg" "$REPO2")" ]] || die "$seg is not in both repositories"
ok "the switched segment $seg is in both repositories"
assert_eq ok "$(state result)" "check.state result"
assert_eq "$seg" "$(state wal)" "check.state wal"
# Twice in a row: the second switch must find something to switch too.
check
expect 0 "^check: ok" "second check right after the first"

# ------------------------------------------------ 2-4. archive_command --
set_archive_command src ""
check
expect 19 "archive_command is empty: set archive_command = 'ue-wal-push --stanza $STANZA %p'" "empty archive_command"
set_archive_command src "$PUSH --config $CONF --stanza other$STANZA %p"
check
expect 19 "pushes to stanza 'other$STANZA', not '$STANZA'" "archive_command for another stanza"
set_archive_command src "cp %p /nonexistent/%f"
check
expect 19 "does not call ue-wal-push" "archive_command without ue-wal-push"
set_archive_command src "$WIRED"

# ----------------------------------------- 5. repo2 refuses the pushes --
find "$REPO2/$STANZA/archive" -type d -exec chmod 555 {} +
check --archive-timeout=5
expect 12 "did not reach repo2 \(posix:$REPO2\) within archive-timeout \(5 s\)" "unwritable second repository"
grep -q "repo1 (" "$LAST_ERR" && die "the message names repo1: $(cat "$LAST_ERR")"
assert_eq fail "$(state result)" "check.state result after the failure"
assert_eq 12 "$(state code)" "check.state code"
find "$REPO2/$STANZA/archive" -type d -exec chmod 750 {} +
check
expect 0 "^check: ok" "repo2 writable again"

# ---------------------------------------- 6. a repository without stanza --
pg_dir "$T/repo3" 750
run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" --repo3-type=posix --repo3-path="$T/repo3" check
expect 6 "stanza '$STANZA' does not exist in repo3 .*stanza-create" "repository without the stanza"
