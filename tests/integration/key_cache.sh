#!/usr/bin/env bash
# The derived-key cache of ue-wal-push/ue-wal-fetch (common/repo/keycache.h):
# an encrypted stanza costs one scrypt per configuration, not per segment,
# and the cache is never trusted beyond what the configuration file is.
#
#  1. the first encrypted push writes <spool>/<stanza>/key/<salt>.key, 0600
#     in a 0700 directory, holding neither the passphrase nor anything
#     readable by others; later pushes and fetches use it (debug log);
#  2. editing the configuration file invalidates it (derived again);
#  3. a cache entry with a wrong key, another owner's mode (0644) or a
#     symbolic link is not used: the push still succeeds with a fresh
#     derivation, and a wrong passphrase still fails even when a
#     valid entry for the old file exists (exit 9);
#  4. a passphrase from the environment is never cached;
#  5. a missing spool-path is created (0700) by the first push or fetch,
#     which caches at once; a call as root writes nothing into the spool;
#  6. throughput (printed, not asserted): pushes and fetches of the same
#     segments unencrypted, encrypted with the cache, encrypted without.
source "$(dirname "$0")/../lib.sh"

P=$UW_PORT_BASE
PASS="key cache passphrase $$ $RANDOM"
SPOOL=$T/spool
NSEG=10

pg_init src "$P"
pg_conf src "archive_mode = off" "wal_keep_size = 1GB"
pg_start src
pg_dir "$SPOOL" 700
# Segments to push: complete ones from pg_wal.
q "$P" "create table t(id int, v text)" >/dev/null
for ((i = 0; i <= NSEG; i++)); do
    q "$P" "insert into t select g, md5(g::text) from generate_series(1, 2000) g" >/dev/null
    switch_wal "$P" >/dev/null
done
pg_dir "$T/wal" 700
n=0
cur=$(current_seg "$P")
for f in $(wal_segments "$T/src/pg_wal"); do
    [[ "$f" < "$cur" ]] || continue
    cp "$T/src/pg_wal/$f" "$T/wal/$f"
    n=$((n + 1))
    ((n < NSEG)) || break
done
chown -R "$PGUSER_OS:" "$T/wal" 2>/dev/null || true
((n >= 8)) || die "only $n complete segments in pg_wal (want >= 8)"
segs=$(ls "$T/wal")

cfg_enc() { write_config -f "$1" -s "$2" -r "$3" cipher-type=aes-256-gcm cipher-pass="$PASS" spool-path="$SPOOL" log-level=debug; }
cfg_enc "$CONF" "$STANZA" "$REPO"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
first=$(head -1 <<<"$segs")

# ------------------------------------------------------------------ 1. --
keydir=$SPOOL/$STANZA/key
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$first"
entry=$(find "$keydir" -name '*.key' -type f)
[[ $(wc -l <<<"$entry") == 1 && -n "$entry" ]] || die "expected one key cache entry in $keydir, found: $entry"
assert_eq 700 "$(stat -c %a "$keydir")" "mode of $keydir"
assert_eq 600 "$(stat -c %a "$entry")" "mode of $entry"
assert_eq "$PGUSER_OS" "$(stat -c %U "$entry")" "owner of $entry"
! grep -qF "$PASS" "$entry" || die "the key cache holds the passphrase"
ok "first push wrote the key cache entry (0600 in 0700, no passphrase)"
second=$(sed -n 2p <<<"$segs")
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$second"
grep -q 'from the key cache' "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "second push did not use the key cache"; }
pg_dir "$T/fetched" 700
assert_exit_pg 0 "$FETCH" --config "$CONF" --stanza "$STANZA" "$first" "$T/fetched/$first"
grep -q 'from the key cache' "$LAST_ERR" || die "fetch did not use the key cache"
cmp -s "$T/wal/$first" "$T/fetched/$first" || die "fetched $first differs"
ok "later pushes and fetches take the key from the cache"

# ------------------------------------------------------------------ 2. --
before=$(sha "$entry")
echo "# edited" >>"$CONF"
third=$(sed -n 3p <<<"$segs")
assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$third"
! grep -q 'from the key cache' "$LAST_ERR" || die "push used a cache entry of the configuration before its edit"
[[ "$(sha "$entry")" != "$before" ]] || die "the entry was not renewed after the configuration changed"
ok "an edited configuration file invalidates the entry"

# ------------------------------------------------------------------ 3. --
push_fresh() { # push_fresh SEG WHAT: must succeed without using the cache
    assert_exit_pg 0 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$1"
    ! grep -q 'from the key cache' "$LAST_ERR" || die "push used a $2 key cache entry"
}
# A wrong key (one hex digit of the master changed).
c=$(sed -n 's/^master \(.\).*/\1/p' "$entry")
[[ "$c" == 0 ]] && c=1 || c=0
as_pg sed -i "s/^master ./master $c/" "$entry"
assert_eq 600 "$(stat -c %a "$entry")" "mode of the edited entry"
push_fresh "$(sed -n 4p <<<"$segs")" "wrong"
# Readable by others.
chmod 644 "$entry"
push_fresh "$(sed -n 5p <<<"$segs")" "world-readable"
assert_eq 600 "$(stat -c %a "$entry")" "mode of the rewritten entry"
# A symbolic link in place of the entry.
cp "$entry" "$T/elsewhere.key"
chown "$PGUSER_OS:" "$T/elsewhere.key" 2>/dev/null || true
rm -f "$entry"
ln -s "$T/elsewhere.key" "$entry"
push_fresh "$(sed -n 6p <<<"$segs")" "symlinked"
[[ -f "$entry" && ! -L "$entry" ]] || die "the symlinked entry was not replaced by a file"
# A wrong passphrase in an edited file fails, whatever the cache holds (ue-wal-push
# reports it as misconfiguration, 9).
sed -i "s/^cipher-pass=.*/cipher-pass=not the passphrase/" "$CONF"
assert_exit_pg 9 "$PUSH" --config "$CONF" --stanza "$STANZA" "$T/wal/$(sed -n 7p <<<"$segs")"
cfg_enc "$CONF" "$STANZA" "$REPO"
ok "wrong, world-readable and symlinked entries are not used; a wrong passphrase still fails (9)"

# ------------------------------------------------------------------ 4. --
ENVCONF=$T/env.conf
write_config -f "$ENVCONF" -r "$REPO" cipher-type=aes-256-gcm spool-path="$SPOOL" log-level=debug
rm -rf "$keydir"
run as_pg env UE_WAL_CIPHER_PASS="$PASS" "$PUSH" --config "$ENVCONF" --stanza "$STANZA" "$T/wal/$(sed -n 7p <<<"$segs")"
assert_eq 0 "$LAST_RC" "push with the passphrase from the environment ($(head -c 300 "$LAST_ERR"))"
[[ ! -e "$keydir" ]] || die "a passphrase from the environment was cached in $keydir"
ok "a passphrase from the environment is never cached"

# ------------------------------------------------------------------ 5. --
# A spool-path that does not exist yet (a source install, a restore host):
# the first push makes it (0700) and caches at once; so does a fetch with a
# fresh spool of its own. A call as root writes nothing into the spool.
pg_dir "$T/sp" 700
cfg_new() { write_config -f "$1" -r "$REPO" cipher-type=aes-256-gcm cipher-pass="$PASS" spool-path="$2" log-level=debug; }
cfg_new "$T/new.conf" "$T/sp/spool"
eighth=$(sed -n 8p <<<"$segs")
assert_exit_pg 0 "$PUSH" --config "$T/new.conf" --stanza "$STANZA" "$T/wal/$eighth"
assert_eq 700 "$(stat -c %a "$T/sp/spool")" "mode of the spool the push created"
[[ -n $(find "$T/sp/spool/$STANZA/key" -name '*.key' -type f 2>/dev/null) ]] ||
    die "the first push into a missing spool-path wrote no key cache entry"
assert_exit_pg 0 "$FETCH" --config "$T/new.conf" --stanza "$STANZA" "$eighth" "$T/fetched/$eighth"
grep -q 'from the key cache' "$LAST_ERR" || die "the call after the first did not use the key cache"
cmp -s "$T/wal/$eighth" "$T/fetched/$eighth" || die "fetched $eighth differs"
cfg_new "$T/fetch.conf" "$T/sp/fetch-spool"
for i in 1 2; do
    rm -f "$T/fetched/$first"
    assert_exit_pg 0 "$FETCH" --config "$T/fetch.conf" --stanza "$STANZA" "$first" "$T/fetched/$first"
    cmp -s "$T/wal/$first" "$T/fetched/$first" || die "fetched $first differs"
done
grep -q 'from the key cache' "$LAST_ERR" || die "a restore host's second fetch did not use the key cache"
assert_eq 700 "$(stat -c %a "$T/sp/fetch-spool")" "mode of the spool the fetch created"
ok "a missing spool-path is created (0700) by the first push or fetch, which caches the key"
if [[ $(id -u) -eq 0 ]]; then
    # A repository of root's own (the tools refuse root on the archiver's).
    mkdir -m 700 "$T/repo-root"
    write_config -f "$T/root.conf" -s rootst -r "$T/repo-root" cipher-type=aes-256-gcm cipher-pass="$PASS" \
        spool-path="$SPOOL" log-level=debug
    assert_exit 0 "$PITR" --config "$T/root.conf" --stanza rootst stanza-create
    assert_exit 0 "$PUSH" --config "$T/root.conf" --stanza rootst "$T/wal/$eighth"
    [[ ! -e $SPOOL/rootst ]] || die "a push as root created $SPOOL/rootst ($(stat -c '%U %a' "$SPOOL/rootst"))"
    ok "a push as root leaves the archiver's spool alone"
fi

# ------------------------------------------------------------------ 6. --
bench() { # bench LABEL CONF STANZA REPO: push then fetch every segment
    local label=$1 conf=$2 stanza=$3 t0 push_s fetch_s s
    assert_exit_pg 0 "$PITR" --config "$conf" --stanza "$stanza" stanza-create
    t0=$(now)
    for s in $segs; do assert_exit_pg 0 "$PUSH" --config "$conf" --stanza "$stanza" "$T/wal/$s"; done
    push_s=$(elapsed "$t0")
    rm -rf "$T/fetched" && pg_dir "$T/fetched" 700
    t0=$(now)
    for s in $segs; do assert_exit_pg 0 "$FETCH" --config "$conf" --stanza "$stanza" "$s" "$T/fetched/$s"; done
    fetch_s=$(elapsed "$t0")
    for s in $segs; do cmp -s "$T/wal/$s" "$T/fetched/$s" || die "$label: fetched $s differs"; done
    note "$label: push $(ratio "$n" "$push_s") segs/s, fetch $(ratio "$n" "$fetch_s") segs/s ($n segments)"
}
write_config -f "$T/plain.conf" -s plain -r "$T/repo-plain" spool-path="$SPOOL"
bench "unencrypted" "$T/plain.conf" plain "$T/repo-plain"
cfg_enc "$T/cached.conf" cached "$T/repo-cached"
sed -i 's/^log-level=debug/log-level=info/' "$T/cached.conf"
bench "encrypted, key cache" "$T/cached.conf" cached "$T/repo-cached"
cfg_enc "$T/nocache.conf" nocache "$T/repo-nocache"
sed -i 's/^log-level=debug/log-level=info/; $a cipher-key-cache=n' "$T/nocache.conf"
bench "encrypted, no key cache" "$T/nocache.conf" nocache "$T/repo-nocache"
[[ ! -e "$SPOOL/nocache/key" ]] || die "cipher-key-cache=n wrote a key cache"
ok "derived-key cache"
