#!/usr/bin/env bash
# hostile_codes: exit codes on hostile or damaged repository content must say
# what is wrong, never "not there" (issue 10, item 8).
#
#  1. cluster "src" archiving with ue-wal-push, a full ue-basebackup, more
#     WAL after it.
#  2. a corrupt manifest (one byte flipped, and truncated): `ue-pitr restore
#     --set ID` exits 16 naming the manifest, with one repository, and so does
#     a restore without --set (not 14 "does not exist"); control: with the
#     manifest repaired the same restore succeeds.
#  3. a WAL object that is listed but cannot be opened, as the PostgreSQL
#     user: a dangling symbolic link in its place, and the object made
#     unreadable (mode 000): ue-wal-fetch exits 154 (above 125: PostgreSQL
#     stops recovery instead of taking it for the end of the archive), names
#     the object, and leaves no file at %p; with the prefetcher on, too.
#     Control: a segment that is not archived still exits 1, and the repaired
#     object fetches (exit 0).
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
STANZA=hc$UW_PORT_BASE
at_exit kill_own_processes

# ------------------------------------------------------------ 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
take_backup
ID=$BACKUP_ID
for i in 1 2 3; do
    q "$P" "insert into pgbench_history(tid, bid, aid, delta, mtime) values ($i, 1, 1, 0, now())" >/dev/null
    last_seg=$(switch_wal "$P")
done
wait_archived "$P" "$last_seg"
note "backup $ID taken; archived up to $last_seg"

# --------------------------------------------------- 2. corrupt manifest --
MF=$REPO/$STANZA/backup/$ID/manifest
cp -p "$MF" "$T/manifest.saved"
pg_dir "$T/dst" 700
restore_into() { # restore_into CODE DIR [args...]: ue-pitr restore, expecting CODE
    local code=$1 dir=$2
    shift 2
    rm -rf "$dir"
    pg_dir "$dir" 700
    assert_exit_pg "$code" "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$dir" "$@"
}
flip_byte "$MF" $(($(stat -c %s "$MF") / 2))
restore_into 16 "$T/dst/a" --set "$ID"
grep -q "backup/$ID/manifest" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(2) the error does not name the manifest"; }
grep -q "does not exist" "$LAST_ERR" && { cat "$LAST_ERR" >&2; die "(2) a corrupt manifest reported as a missing backup"; }
ok "(2) flipped byte, --set $ID: exit 16 ($(grep -o '[^ ]*manifest[^;]*' "$LAST_ERR" | head -1))"
restore_into 16 "$T/dst/a"
grep -q "backup/$ID/manifest" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(2) the error does not name the manifest"; }
ok "(2) flipped byte, newest backup: exit 16"
cp -p "$T/manifest.saved" "$MF"
truncate -s $(($(stat -c %s "$MF") / 3)) "$MF"
restore_into 16 "$T/dst/a" --set "$ID"
grep -q "backup/$ID/manifest" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(2) the error does not name the manifest"; }
ok "(2) truncated manifest, --set $ID: exit 16"
cp -p "$T/manifest.saved" "$MF"
restore_into 0 "$T/dst/a" --set "$ID"
ok "(2) control: with the manifest repaired, restore --set $ID exits 0"

# -------------------------------------------- 3. listed but unreadable --
victim=$(seg_add "$last_seg" -1)
obj=$(stored_objects "$victim")
[[ $(grep -c . <<<"$obj") == 1 ]] || die "setup: expected one object for $victim, found: $obj"
cp -p "$obj" "$T/object.saved"
F=("$FETCH" --config "$CONF" --stanza "$STANZA")
assert_exit_pg 0 "${F[@]}" "$victim" "$T/dst/ok"
rm -f "$T/dst/ok"
ok "(3) control: $victim fetches (exit 0)"

# fetch_code CODE WHAT [extra args]: fetch the victim, expect CODE and no file.
fetch_code() {
    local code=$1 what=$2
    shift 2
    assert_exit_pg "$code" "${F[@]}" "$@" "$victim" "$T/dst/x"
    assert_file_absent "$T/dst/x" "(3) $what left a file at %p"
    if ((code != 0)); then
        grep -q "$(basename "$obj")" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "(3) $what: the error does not name the object"; }
    fi
}
rm "$obj"
ln -s "$T/nowhere/$(basename "$obj")" "$obj"
fetch_code 154 "a dangling link"
ok "(3) dangling link in place of the object: exit 154 ($(head -c 300 "$LAST_ERR" | tr '\n' ' '))"
pg_dir "$T/spool" 700
fetch_code 154 "a dangling link (prefetch on)" --archive-get-queue-max=64MiB --spool-path "$T/spool"
ok "(3) dangling link with the prefetcher on: exit 154"
rm "$obj"
cp -p "$T/object.saved" "$obj"
chmod 000 "$obj"
fetch_code 154 "an unreadable object"
ok "(3) object of mode 000 (read as $PGUSER_OS): exit 154 ($(head -c 300 "$LAST_ERR" | tr '\n' ' '))"
chmod 640 "$obj"
assert_exit_pg 1 "${F[@]}" 0000000100000099000000FF "$T/dst/x"
assert_file_absent "$T/dst/x"
ok "(3) control: a segment that is not archived still exits 1"
assert_exit_pg 0 "${F[@]}" "$victim" "$T/dst/x"
cmp -s "$T/dst/x" "$T/src/pg_wal/$victim" || die "(3) repaired $victim differs from pg_wal/$victim"
ok "(3) control: the repaired object fetches (exit 0) and equals pg_wal/$victim"
