#!/usr/bin/env bash
# restore_confine: a manifest cannot make `ue-pitr restore` write outside
# --pgdata and its tablespace locations, nor restore set-id bits; tablespace
# locations can be moved with --tablespace-map / --tablespace-map-all.
#
#  1. cluster "src" archiving with ue-wal-push, a tablespace ($T/ts1) holding
#     a table of its own, a full ue-basebackup; the source is stopped and its
#     tablespace moved away (the recorded location is free for the restores).
#  2. the manifest, hand-edited (checksum recomputed as an attacker with
#     write access to the repository would): a link entry base/evil ->
#     $T/outside and a file entry base/evil/payload (the content of
#     PG_VERSION, its object copied to where the entry says it is stored).
#     The restore, as root, is refused with exit 16 naming the entry, before
#     anything is written: nothing appears in $T/outside nor in the data
#     directory. (Before: exit 0 and $T/outside/payload written.)
#  3. the manifest with PG_VERSION at mode 4755 and base at 2777: the
#     restore, as root into a root-owned directory, succeeds with a warning
#     naming PG_VERSION, and no file or directory of the data directory or
#     the tablespace has a set-id, sticky or group/world-writable bit.
#     (Before: a root-owned setuid PG_VERSION.)
#  4. --tablespace-map: a location holding content the restore did not write
#     is refused (exit 14); a map for a tablespace the backup does not have
#     (exit 14) and a malformed map (exit 2) are refused; then restores with
#     --tablespace-map OID=DIR and with --tablespace-map-all DIR (DIR/<oid>)
#     started to the end of the backup (--target immediate, paused): the link
#     points to the new location, the tables match the source, and the
#     recorded location was never written.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_MAP=$((P + 1))
P_ALL=$((P + 2))
TS=$T/ts1
# The backup lock is per stanza (/tmp/ue-wal-<stanza>.backup.lock).
STANZA=rc$UW_PORT_BASE

# ---------------------------------------------------------------- 1. setup --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pg_dir "$TS" 700
q "$P" "create tablespace ts1 location '$TS'" >/dev/null
q "$P" "create table uw_ts(id int primary key, v text) tablespace ts1" >/dev/null
q "$P" "insert into uw_ts select g, md5(g::text) from generate_series(1, 2000) g" >/dev/null
q "$P" "create table uw_main as select g id, repeat('x', 100) v from generate_series(1, 2000) g" >/dev/null
src_sum=$(table_checksum "$P")
# ue-basebackup waits until the WAL that makes it consistent is archived:
# enough for the restores to the end of the backup below.
take_backup --type full
FULL=$BACKUP_ID
ts_oid=$(q "$P" "select oid from pg_tablespace where spcname = 'ts1'")
pg_stop src
mv "$TS" "$T/ts1.src"
note "backup $FULL of a cluster with tablespace $ts_oid at $TS"

MF=$REPO/$STANZA/backup/$FULL/manifest
cp "$MF" "$T/manifest.orig"
grep -q -P "^pg_tblspc/$ts_oid\tl\t" "$MF" || die "the manifest has no link entry for the tablespace"

# manifest_edit AWK-PROGRAM: rewrite the [files] entries of the backup's
# manifest (fields tab-separated: path type mode size mtime sha256 ref stored
# ext link base) from the original, then recompute its checksum line as
# anyone who can write to the repository can.
manifest_edit() {
    # shellcheck disable=SC2016 # $1 is an awk program
    awk -F'\t' -v OFS='\t' "$1" "$T/manifest.orig" | grep -v '^checksum=' >"$T/manifest.new"
    printf 'checksum=%s\n' "$(sha256sum "$T/manifest.new" | cut -d' ' -f1)" >>"$T/manifest.new"
    cat "$T/manifest.new" >"$MF"
}
# restore_root NAME ARGS...: restore as root into $T/NAME, a new directory
# owned by root (so that nothing is chowned to the PostgreSQL user).
restore_root() {
    local name=$1
    shift
    mkdir -m 700 "$T/$name"
    run "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/$name" "$@"
}
# ts_free: the recorded tablespace location, empty again.
ts_free() {
    rm -rf "$TS"
}

# ------------------------------------------------ 2. a link outside pg_tblspc --
OUT=$T/outside
# shellcheck disable=SC2016 # awk's $1, not the shell's
manifest_edit '
    { print }
    $1 == "PG_VERSION" && $2 == "f" { $1 = "base/evil/payload"; payload = $0 }
    $1 == "base" && $2 == "d" { mtime = $5 }
    END {
        print "base/evil", "l", "0777", "0", mtime, "-", "-", "0", "-", "'"$OUT"'", "-"
        print payload
    }'
if ! grep -q -P "^base/evil\tl\t" "$MF" || ! grep -q -P "^base/evil/payload\tf\t" "$MF"; then
    die "self-check: the edited manifest lacks the link or the file entry"
fi
# The payload's object, where the manifest entry says it is stored.
BDIR=$REPO/$STANZA/backup/$FULL/pg_data
mkdir -p "$BDIR/base/evil"
for f in "$BDIR"/PG_VERSION*; do cp "$f" "$BDIR/base/evil/payload${f#"$BDIR"/PG_VERSION}"; done
restore_root r_link
if [[ "$LAST_RC" != 16 ]]; then
    find "$OUT" -maxdepth 1 2>&1 | head -5 >&2
    die "restore of a manifest with a link outside pg_tblspc: exit $LAST_RC, expected 16 ($(tail -3 "$LAST_ERR"))"
fi
grep -q "link 'base/evil' -> '$OUT' is refused" "$LAST_ERR" ||
    { cat "$LAST_ERR" >&2; die "the refusal does not name the manifest entry"; }
assert_file_absent "$OUT" "restore followed a manifest link outside the data directory"
written=$(find "$T/r_link" -mindepth 1 | head -5)
[[ -z "$written" ]] || die "the refused restore wrote into the data directory: $written"
assert_file_absent "$TS" "the refused restore created the tablespace location"
ok "link outside pg_tblspc refused (16): $(grep -m1 ERROR "$LAST_ERR" | cut -c1-200)"

# ------------------------------------------------------ 3. set-id modes --
# shellcheck disable=SC2016 # awk's $1, not the shell's
manifest_edit '
    $1 == "PG_VERSION" && $2 == "f" { $3 = "4755" }
    $1 == "base" && $2 == "d" { $3 = "2777" }
    { print }'
grep -q -P "^PG_VERSION\tf\t4755\t" "$MF" || die "self-check: the edited manifest lacks the setuid mode"
restore_root r_mode
[[ "$LAST_RC" == 0 ]] || { cat "$LAST_ERR" >&2; die "restore with unusual modes: exit $LAST_RC"; }
bad=$(find "$T/r_mode" "$TS" -perm /7022 ! -type l -printf '%m %u %p\n' | head -5)
[[ -z "$bad" ]] || die "set-id, sticky or writable modes restored from the manifest: $bad"
grep -q "'PG_VERSION' has mode 04755, restored as 0640" "$LAST_ERR" ||
    { cat "$LAST_ERR" >&2; die "no warning naming PG_VERSION's mode"; }
assert_eq 640 "$(stat -c %a "$T/r_mode/PG_VERSION")" "PG_VERSION's mode"
assert_eq 750 "$(stat -c %a "$T/r_mode/base")" "base's mode"
ok "set-id, sticky and writable bits are not restored"
rm -rf "$T/r_mode"
ts_free
cp "$T/manifest.orig" "$MF"

# ----------------------------------------------------- 4. tablespace maps --
pg_dir "$T/r_refused" 700
# refuse CODE PATTERN RESTORE-ARGS...: exit CODE and a message matching PATTERN.
refuse() {
    local code=$1 pattern=$2
    shift 2
    assert_exit_pg "$code" "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/r_refused" "$@"
    grep -q -E -- "$pattern" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "message does not match /$pattern/"; }
    ok "refused ($code): $(grep -m1 ERROR "$LAST_ERR" | cut -c1-200)"
}
pg_dir "$T/ts_busy" 700
echo "not the restore's" >"$T/ts_busy/someone-elses"
refuse 14 "tablespace location '$T/ts_busy' \(pg_tblspc/$ts_oid\) is not empty" \
    --tablespace-map "$ts_oid=$T/ts_busy"
refuse 14 "has no tablespace 99999 \(its tablespaces: $ts_oid\)" \
    --tablespace-map "$ts_oid=$T/ts_map" --tablespace-map "99999=$T/ts_x"
refuse 2 "option 'tablespace-map': 'ts1=$T/ts_map' is not OID=DIR" --tablespace-map "ts1=$T/ts_map"
refuse 2 "option 'tablespace-map-all': 'relative/dir' is not an absolute directory" \
    --tablespace-map-all relative/dir
assert_eq "not the restore's" "$(cat "$T/ts_busy/someone-elses")" "the busy location is untouched"
[[ -z "$(find "$T/r_refused" -mindepth 1)" ]] || die "a refused restore wrote into the data directory"

# check_restored NAME PORT LOCATION: the link, the data, and the recorded
# location left alone.
check_restored() {
    assert_eq "$3" "$(readlink "$T/$1/pg_tblspc/$ts_oid")" "$1: tablespace link"
    compgen -G "$3/PG_15_*" >/dev/null || die "$1: nothing restored into $3"
    assert_eq "$src_sum" "$(table_checksum "$2")" "$1: tables match the source"
    assert_file_absent "$TS" "$1: the recorded tablespace location was written"
}

pg_dir "$T/ts_map" 700
restore_to r_map --tablespace-map "$ts_oid=$T/ts_map" --target immediate --target-action pause \
    --start --port "$P_MAP"
grep -q "tablespace $ts_oid ('$TS'): restoring into '$T/ts_map'" "$RESTORE_LOG" ||
    { cat "$RESTORE_LOG" >&2; die "the remapping is not logged"; }
check_restored r_map "$P_MAP" "$T/ts_map"
pg_stop r_map immediate

pg_dir "$T/ts_all" 700
restore_to r_all --tablespace-map-all "$T/ts_all" --target immediate --target-action pause \
    --start --port "$P_ALL"
check_restored r_all "$P_ALL" "$T/ts_all/$ts_oid"
pg_stop r_all immediate
ok "tablespaces restored where --tablespace-map and --tablespace-map-all say"
