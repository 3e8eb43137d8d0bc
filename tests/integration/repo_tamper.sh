#!/usr/bin/env bash
# repo_tamper: someone who can write to the repository, but does not know the
# passphrase, must not be able to make a fetch or a restore deliver anything
# but what the cluster archived (issue 10, items 2, 3, 5 and 6).
#
#  (2) stanza.info of an encrypted stanza rewritten to cipher-type=none (with a
#      valid keyless checksum) and a plain object put in place of a segment:
#      ue-wal-fetch exits 151, nothing at %p
#  (5) segment N's object copied over segment N+1's name: exit 150, nothing
#      at %p (and PostgreSQL would abort recovery)
#  (3) the manifest of an encrypted backup reveals no path or hash; two files'
#      objects swapped (and, if the manifest is readable, their entries too):
#      the restore refuses
#  (6) a plain stanza's object replaced by a ~33 KB zstd bomb (1 GiB of
#      zeros) with the real header and trailer: fetch fails with 150 while
#      writing no more than a segment (run under a 32 MiB file size limit)
#  format versions: stanza.info and object header of another version -> 153
# Each case has a positive control on the intact repository. A case that
# fails is reported and the others still run (the test fails at the end), so
# that one run against older code shows every weakness at once.
source "$(dirname "$0")/../lib.sh"

FAILS=()
soft_fail() {
    note "FAILED: $*"
    FAILS+=("$*")
}
# expect_exit CODE CMD...: like assert_exit, but a mismatch is recorded.
expect_exit() {
    local want=$1
    shift
    run "$@"
    [[ "$LAST_RC" == "$want" ]] ||
        soft_fail "expected exit $want, got $LAST_RC: ${*: -2}: $(head -c 300 "$LAST_ERR" | tr '\n' ' ')"
}
# expect_absent FILE MSG: FILE must not exist (removed if it does).
expect_absent() {
    if [[ -e "$1" ]]; then
        soft_fail "$2: $1 exists ($(stat -c %s "$1") bytes)"
        rm -f "$1"
    fi
}

P=$UW_PORT_BASE
PASS="repo tamper test passphrase"

pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 256MB"
pg_start src
write_config cipher-type=aes-256-gcm "cipher-pass=$PASS"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
pgbench_run "$P" -i -s 1 -q >"$T/out/pgbench-init" 2>&1 || die "pgbench -i failed"
first=$(switch_wal "$P")
for i in 1 2 3; do
    q "$P" "select 1 from pg_switch_wal()" >/dev/null
    q "$P" "create table t$i as select g from generate_series(1, 1000) g" >/dev/null
done
last=$(switch_wal "$P")
wait_archived "$P" "$last"
segN=$(seg_add "$first" 1)
segN1=$(seg_add "$first" 2)
note "segments $segN and $segN1 archived"
pg_dir "$T/dst" 700
DST=$T/dst

# Controls.
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$segN1" "$DST/ok"
cmp -s "$DST/ok" "$T/src/pg_wal/$segN1" || die "control: fetched $segN1 differs from pg_wal"
rm -f "$DST/ok"
ok "control: $segN1 fetches intact"

# A plain stanza of the same cluster in another repository: its objects are
# what an attacker without the passphrase can produce.
PCONF=$T/plain.conf
write_config -f "$PCONF" -r "$T/plainrepo" cipher-type=none
assert_exit_pg 0 "$PITR" --config "$PCONF" --stanza "$STANZA" stanza-create
assert_exit_pg 0 "$PUSH" --config "$PCONF" --stanza "$STANZA" "$T/src/pg_wal/$segN1"
plain_obj=$(objects "$segN1" "$T/plainrepo")
[[ -f "$plain_obj" ]] || die "setup: no plain object for $segN1"

# ---- (2) downgrade -------------------------------------------------------
INFO=$REPO/$STANZA/stanza.info
cp -p "$INFO" "$T/stanza.info.saved"
python3 - "$INFO" <<'EOF'
import hashlib, sys
p = sys.argv[1]
lines = [l for l in open(p).read().split("\n") if l]
keep = []
for l in lines:
    k = l.split("=", 1)[0]
    if k in ("kdf-salt", "kdf-n", "kdf-r", "kdf-p", "key-check", "mac", "checksum"):
        continue
    keep.append("cipher-type=none" if k == "cipher-type" else l)
body = "\n".join(keep) + "\n"
open(p, "w").write(body + "checksum=" + hashlib.sha256(body.encode()).hexdigest() + "\n")
EOF
enc_obj=$(objects "$segN1")
cp -p "$enc_obj" "$T/enc_obj.saved"
rm -f "$enc_obj"
cp "$plain_obj" "$(dirname "$enc_obj")/$(basename "$plain_obj")"
chown --reference="$T/enc_obj.saved" "$(dirname "$enc_obj")/$(basename "$plain_obj")"
expect_exit 151 as_pg "$FETCH" --config "$CONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "(2) downgraded stanza delivered a file"
note "(2) stanza.info downgraded to cipher-type=none: exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
# the same with only the passphrase configured (cipher-type left to the stanza)
DCONF=$T/pass-only.conf
write_config -f "$DCONF" "cipher-pass=$PASS"
expect_exit 151 as_pg "$FETCH" --config "$DCONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "(2) downgraded stanza delivered a file (only cipher-pass configured)"
note "(2) with only cipher-pass configured: exit $LAST_RC"
cp -p "$T/stanza.info.saved" "$INFO"
rm -f "$(dirname "$enc_obj")/$(basename "$plain_obj")"
cp -p "$T/enc_obj.saved" "$enc_obj"
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$segN1" "$DST/ok"
rm -f "$DST/ok"
ok "control: restored stanza.info and object fetch again"

# ---- format versions -------------------------------------------------------
# Another stanza.info format (self-consistent checksum) and another object
# format version byte: exit 153, nothing at %p.
python3 - "$INFO" <<'EOF'
import hashlib, re, sys
p = sys.argv[1]
text = open(p).read()
body = re.sub(r"(?m)^format=\d+$", "format=9", text[: text.index("checksum=")])
open(p, "w").write(body + "checksum=" + hashlib.sha256(body.encode()).hexdigest() + "\n")
EOF
expect_exit 153 as_pg "$FETCH" --config "$CONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "stanza.info of another format delivered a file"
note "stanza.info format=9: exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
cp -p "$T/stanza.info.saved" "$INFO"
pobj=$(objects "$segN1" "$T/plainrepo")
cp -p "$pobj" "$T/pobj.saved"
printf '9' | dd of="$pobj" bs=1 seek=11 conv=notrunc status=none
expect_exit 153 as_pg "$FETCH" --config "$PCONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "object of another format version delivered a file"
note "object format version '9': exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
cp -p "$T/pobj.saved" "$pobj"

# ---- (5) substitution of a segment ----------------------------------------
objN=$(objects "$segN")
objN1=$(objects "$segN1")
cp -p "$objN1" "$T/objN1.saved"
rm -f "$objN1"
# N's object under N+1's name (its content id kept: only the name changes).
sub="$(dirname "$objN1")/$segN1-${objN#*"$segN"-}"
cp -p "$objN" "$sub"
expect_exit 150 as_pg "$FETCH" --config "$CONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "(5) substituted segment delivered"
note "(5) $segN's object renamed to $segN1: exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
rm -f "$sub"
cp -p "$T/objN1.saved" "$objN1"
# The same in the plain stanza: the header names the segment, and the WAL
# page header inside must match the name.
pobjN=$(objects "$segN" "$T/plainrepo" || true)
[[ -n "$pobjN" ]] || assert_exit_pg 0 "$PUSH" --config "$PCONF" --stanza "$STANZA" "$T/src/pg_wal/$segN"
pobjN=$(objects "$segN" "$T/plainrepo")
pobjN1=$(objects "$segN1" "$T/plainrepo")
cp -p "$pobjN1" "$T/pobjN1.saved"
rm -f "$pobjN1"
psub="$(dirname "$pobjN1")/$segN1-${pobjN#*"$segN"-}"
cp -p "$pobjN" "$psub"
expect_exit 150 as_pg "$FETCH" --config "$PCONF" --stanza "$STANZA" "$segN1" "$DST/x"
expect_absent "$DST/x" "(5) substituted plain segment delivered"
note "(5) plain stanza, $segN's object renamed to $segN1: exit $LAST_RC ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
rm -f "$psub"
cp -p "$T/pobjN1.saved" "$pobjN1"

# ---- (3) manifest ---------------------------------------------------------
take_backup
bdir=$REPO/$STANZA/backup/$BACKUP_ID
if grep -aq "PG_VERSION" "$bdir/manifest"; then
    manifest_plain=1
else
    manifest_plain=0
fi
a=$(find "$bdir/pg_data" -maxdepth 1 -name 'PG_VERSION*' -type f)
b=$(find "$bdir/pg_data" -maxdepth 1 -name 'postgresql.auto.conf*' -type f)
[[ -f "$a" && -f "$b" ]] || die "setup: PG_VERSION or postgresql.auto.conf not in the backup"
mv "$a" "$T/swap"
mv "$b" "$a"
mv "$T/swap" "$b"
if ((manifest_plain)); then
    # Swap everything but the path of the two entries, and re-checksum.
    python3 - "$bdir/manifest" <<'EOF'
import hashlib, sys
p = sys.argv[1]
text = open(p).read()
body = text[: text.index("\nchecksum=") + 1]
lines = body.split("\n")
ia = [i for i, l in enumerate(lines) if l.startswith("PG_VERSION\t")][0]
ib = [i for i, l in enumerate(lines) if l.startswith("postgresql.auto.conf\t")][0]
fa, fb = lines[ia].split("\t"), lines[ib].split("\t")
lines[ia] = "\t".join([fa[0]] + fb[1:])
lines[ib] = "\t".join([fb[0]] + fa[1:])
body = "\n".join(lines)
open(p, "w").write(body + "checksum=" + hashlib.sha256(body.encode()).hexdigest() + "\n")
EOF
fi
pg_dir "$T/restored" 700
run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/restored" --set "$BACKUP_ID"
if [[ "$LAST_RC" == 150 || "$LAST_RC" == 151 || "$LAST_RC" == 16 ]]; then
    note "(3) swapped files refused by the restore: exit $LAST_RC ($(grep -m1 -i 'another name\|fail\|tamper' "$LAST_ERR" | head -c 200))"
else
    soft_fail "(3) restore with two swapped files exited $LAST_RC, expected 150/151/16: $(head -c 300 "$LAST_ERR")"
fi
((manifest_plain == 0)) || soft_fail "(3) the encrypted backup's manifest is stored in clear"
! grep -aq "base/1\|pg_control\|checksum=" "$bdir/manifest" || soft_fail "(3) the manifest reveals paths"
# Editing the encrypted manifest: refused as tampered.
mv "$a" "$T/swap"
mv "$b" "$a"
mv "$T/swap" "$b"
cp -p "$bdir/manifest" "$T/manifest.saved"
flip_byte "$bdir/manifest" $(($(stat -c %s "$bdir/manifest") / 2))
rm -rf "$T/restored"
pg_dir "$T/restored" 700
run as_pg "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/restored" --set "$BACKUP_ID"
[[ "$LAST_RC" != 0 ]] || soft_fail "(3) restore with an edited manifest succeeded"
note "(3) edited manifest refused: exit $LAST_RC"
cp -p "$T/manifest.saved" "$bdir/manifest"

# ---- (6) decompression bomb ----------------------------------------------
pobj=$(objects "$segN1" "$T/plainrepo")
cp -p "$pobj" "$T/pobj.saved"
python3 - "$pobj" "$T/bomb.zst" <<'EOF'
import struct, subprocess, sys
p, bomb = sys.argv[1], sys.argv[2]
data = open(p, "rb").read()
hlen = struct.unpack("<I", data[4:8])[0] + 8   # the header is one skippable frame
trailer = data[-60:]
z = subprocess.run("head -c 1073741824 /dev/zero | zstd -q -c", shell=True,
                   stdout=subprocess.PIPE, check=True).stdout
open(bomb, "wb").write(z)
open(p, "wb").write(data[:hlen] + z + trailer)
EOF
note "bomb object: $(stat -c %s "$pobj") bytes expanding to 1 GiB"
# Under a file size limit of 32 MiB: an unbounded fetch is killed (SIGXFSZ)
# instead of filling the disk; a bounded one fails with 150 first.
t0=$(now)
run as_pg bash -c 'ulimit -f 32768; exec "$@"' _ "$FETCH" --config "$PCONF" --stanza "$STANZA" "$segN1" "$DST/bomb"
[[ "$LAST_RC" == 150 ]] ||
    soft_fail "(6) bomb fetch exited $LAST_RC, expected 150: $(head -c 300 "$LAST_ERR")"
expect_absent "$DST/bomb" "(6) bomb left a file"
[[ -z "$(ls -A "$DST")" ]] || soft_fail "(6) bomb left files in $DST: $(ls -A "$DST")"
note "(6) decompression bomb: exit $LAST_RC in $(elapsed "$t0") s ($(head -c 200 "$LAST_ERR" | tr '\n' ' '))"
rm -f "$DST"/*
cp -p "$T/pobj.saved" "$pobj"
assert_exit_pg 0 "$FETCH" --config "$PCONF" --stanza "$STANZA" "$segN1" "$DST/ok"
ok "control: intact plain object fetches"

if ((${#FAILS[@]})); then
    printf '  - %s\n' "${FAILS[@]}" >&2
    die "${#FAILS[@]} tampering case(s) not refused"
fi
ok "every tampering case refused"
