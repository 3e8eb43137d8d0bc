#!/usr/bin/env bash
# repo_links: the repository is untrusted input (issue 10, items 1 and 7).
#
#  (a) a symbolic link planted inside an unfinished backup folder: the next
#      ue-basebackup's cleanup must not delete what the link points to; it
#      warns naming the link, and the new backup is still taken
#  (b) a link in place of a repository object: ue-wal-fetch refuses it
#      (exit 154, naming it: above 125, so recovery stops) and never reads through it
#  (c) a FIFO where a file is expected never hangs a tool (each call runs
#      under a generous `timeout 60`; a hang is exit 124, a failure):
#      the configuration file -> 3, the file to push -> 11,
#      stanza.info -> 16, a repository object -> 154 (ue-wal-fetch)
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE

pg_init src "$P"
# ue-basebackup's lock: /tmp/ue-wal-<stanza>.<uid>.<12 hex of the repository>.backup.lock
lock_hash=$(printf '%s\n%s' "(posix:$REPO)" "$STANZA" | sha256sum | cut -c1-12)
rm_lock() { rm -f "/tmp/ue-wal-$STANZA.$(id -u "$PGUSER_OS").$lock_hash.backup.lock"; }
at_exit rm_lock
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
q "$P" "create table t as select g from generate_series(1, 10000) g" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg"

# (a) the victim: files the PostgreSQL user could delete, outside the repository
victim=$T/victim
pg_dir "$victim" 700
pg_dir "$victim/sub" 700
for f in a b sub/c; do echo "precious $f" >"$victim/$f"; done
[[ $(id -u) -ne 0 ]] || chown -R "$PGUSER_OS:" "$victim"
leftover=$REPO/$STANZA/backup/20200101-000000F
pg_dir "$REPO/$STANZA/backup" 750
pg_dir "$leftover" 750
pg_dir "$leftover/pg_data" 750
ln -s "$victim" "$leftover/pg_data/base"
[[ $(id -u) -ne 0 ]] || chown -h "$PGUSER_OS:" "$leftover/pg_data/base"
take_backup
for f in a b sub/c; do
    [[ -f "$victim/$f" ]] || die "(a) $victim/$f was deleted through the planted link"
done
grep -q "symbolic link" "$BACKUP_LOG" || { cat "$BACKUP_LOG" >&2; die "(a) no warning about the link"; }
grep -q "$leftover/pg_data/base" "$BACKUP_LOG" || { cat "$BACKUP_LOG" >&2; die "(a) the warning does not name the link"; }
[[ -L "$leftover/pg_data/base" ]] || die "(a) the link itself should stay for the operator to see"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" info
grep -q "$BACKUP_ID" "$LAST_OUT" || die "(a) new backup $BACKUP_ID not listed"
if grep -qE '^ +20200101-000000F +(full|incr)' "$LAST_OUT"; then die "(a) the leftover is listed as a backup"; fi
ok "(a) planted link in an unfinished backup: target intact, warning names it, backup $BACKUP_ID taken"

# (b) a link in place of an archived object
obj=$(stored_objects "$seg")
[[ $(grep -c . <<<"$obj") == 1 ]] || die "setup: expected one object for $seg: $obj"
outside=$T/outside-object
cp "$obj" "$outside"
chmod 644 "$outside"
mv "$obj" "$obj.moved"
ln -s "$outside" "$obj"
pg_dir "$T/dst" 700
assert_exit_pg 154 timeout 60 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
grep -q "symbolic link" "$LAST_ERR" || die "(b) stderr does not say why: $(cat "$LAST_ERR")"
[[ ! -e "$T/dst/$seg" ]] || die "(b) a segment was delivered through the link"
rm "$obj"
mv "$obj.moved" "$obj"
ok "(b) object replaced by a link: exit 154 (never \"not archived\"), nothing delivered"

# (c) FIFOs where files are expected
mkfifo "$T/fifo.conf"
chmod 666 "$T/fifo.conf"
assert_exit_pg 3 timeout 60 "$PUSH" --config "$T/fifo.conf" --stanza "$STANZA" "$T/src/pg_wal/$seg"
note "(c) config FIFO: $(head -c 200 "$LAST_ERR")"
pg_dir "$T/wal" 700
next=$(seg_add "$(current_seg "$P")" 5)
as_pg mkfifo "$T/wal/$next"
assert_exit_pg 11 timeout 60 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$next"
grep -q "not a regular file" "$LAST_ERR" || die "(c) push FIFO: $(cat "$LAST_ERR")"
assert_eq 0 "$(object_count "$next")" "(c) nothing stored for the FIFO"
mv "$obj" "$obj.moved"
as_pg mkfifo "$obj"
assert_exit_pg 154 timeout 60 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
grep -q "not a regular file" "$LAST_ERR" || die "(c) object FIFO: $(cat "$LAST_ERR")"
rm "$obj"
mv "$obj.moved" "$obj"
info=$REPO/$STANZA/stanza.info
mv "$info" "$info.moved"
as_pg mkfifo "$info"
assert_exit_pg 16 timeout 60 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
grep -q "not a regular file" "$LAST_ERR" || die "(c) stanza.info FIFO: $(cat "$LAST_ERR")"
rm "$info"
mv "$info.moved" "$info"
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$seg" "$T/dst/$seg"
cmp -s "$T/dst/$seg" "$T/src/pg_wal/$seg" || die "(c) fetch after repair differs"
ok "(c) FIFOs refused at once: config 3, file to push 11, object 16, stanza.info 16"
