#!/usr/bin/env bash
# secrets: a whole archive / backup / restore cycle with every secret set,
# and no secret anywhere but in the configuration file (issue 10); the
# modes of everything the tools create (0600 files, 0700 directories)
# whatever umask they are started with.
#
#  1. Random secrets: cipher-pass, S3 secret key and session token (s3rver
#     on UW_PORT_BASE+10 accepts a key pair of the test's own, given to it
#     through its environment), an Azure account key (Azurite on +11, an
#     account of the test's own) and a container SAS signed with that key.
#     Four repositories, encrypted: repo1 posix, repo2 S3, repo3 Azure with
#     the key, repo4 Azure with the SAS. Every secret is in the
#     configuration file only (mode 0600); the tools' environment holds
#     none.
#  2. Cluster "src" archives asynchronously (archive-async: the detached
#     pusher) with archive_command run under `umask 000`; pgbench;
#     ue-basebackup (umask 000) into the four repositories; more pgbench.
#  3. ue-pitr restore (umask 000) --start: recovery with prefetch on (the
#     prefetcher), promoted, tables identical to the source's; one segment
#     fetched from each repository by --repo N (each credential reads).
#  4. From stanza-create to the end of the recovery a sampler reads
#     /proc/*/cmdline of every process on the machine and /proc/PID/environ
#     of each of the test's ue-wal processes, repeatedly: no secret (nor its
#     base64 or URL-encoded form) may appear; it must have seen the
#     asynchronous pusher and the prefetcher (holders of their spool locks).
#  5. Every file under the test directory but the configuration file (server
#     logs, captured stderr, spool, state, posix repository objects, S3 and
#     Azure objects as the servers store them, the restored data directory
#     and its postgresql.auto.conf) is grepped for the same forms: none.
#  6. Modes: the posix repository, the spool and the state files are 0600
#     files / 0700 directories; the restored data directory is what
#     PostgreSQL 15 requires of a cluster initdb'd without group access
#     (0700 / 0600). Printed: samples taken, processes sampled, files
#     grepped, entries whose modes were checked.
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
S3_PORT=$((P + 10))
AZ_PORT=$((P + 11))
STANZA=sec$UW_PORT_BASE
BUCKET=uw-secrets
CONTAINER=uw-secrets
ACCOUNT=uwsecret$((RANDOM % 1000))
SPOOL=$T/own/spool
PATS=$T/secret.patterns

# ------------------------------------------------------------ 1. secrets --
# Random, unexported: nothing the test starts inherits them, and none is
# ever on a command line (bash builtins only; files read by grep -f).
rnd() { head -c "$1" /dev/urandom | base64 -w0; }
CIPHER_PASS="uw-pass $(rnd 24)"
S3_KEY_ID=UWKEY$((RANDOM % 100000))
S3_SECRET="uw/s3+$(rnd 30)"
S3_TOKEN="uw/tok+$(rnd 48)="
AZ_KEY=$(rnd 64)
pg_file "$PATS" 600

UW_S3_KEY_PAIR="$S3_KEY_ID:$S3_SECRET" objstore_start "$T/objstore-s3" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
AZURITE_ACCOUNTS="$ACCOUNT:$AZ_KEY" objstore_start "$T/objstore-az" azure UW_AZURE_PORT="$AZ_PORT"
aztool() { AZ_ENDPOINT=http://127.0.0.1:$AZ_PORT AZ_ACCOUNT=$ACCOUNT AZ_KEY=$AZ_KEY python3 "$UW_SRC_DIR/tests/azure_tool.py" "$@"; }
aztool create-container "$CONTAINER" || die "could not create container $CONTAINER with the test's account"
SAS=$(aztool sas "$CONTAINER" racwdl)
[[ "$SAS" =~ (^|&)sig=([^&]+) ]] || die "no sig in the SAS token"
SAS_SIG_ENC=${BASH_REMATCH[2]}
# Every form a secret could leak in: as is, base64, URL-encoded (and the
# SAS signature decoded from its URL form).
printf '%s\n' "$CIPHER_PASS" "$S3_SECRET" "$S3_TOKEN" "$AZ_KEY" "$SAS" "$SAS_SIG_ENC" >"$PATS.raw"
python3 -c '
import base64, sys, urllib.parse
for s in sys.stdin.read().splitlines():
    for f in (s, base64.b64encode(s.encode()).decode(), urllib.parse.quote(s, safe=""),
              urllib.parse.quote_plus(s), urllib.parse.unquote(s)):
        if len(f) >= 16:
            print(f)
' <"$PATS.raw" | sort -u >"$PATS"
rm -f "$PATS.raw"
if (($(wc -l <"$PATS") < 18)) || grep -q -x -E ".{0,15}" "$PATS"; then
    die "secret patterns not generated: $(wc -l <"$PATS") lines"
fi

# -------------------------------------------------------------- 2. config --
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
az_common=(azure-account="$ACCOUNT" azure-container="$CONTAINER" azure-endpoint=http://127.0.0.1
    storage-port="$AZ_PORT" azure-uri-style=path azure-block-size=1MiB storage-timeout=20)
pg_dir "$T/own" 755
write_config -r "$T/own/repo" cipher-type=aes-256-gcm "cipher-pass=$CIPHER_PASS" \
    repo2-type=s3 repo2-path=/uw repo2-s3-endpoint="http://127.0.0.1:$S3_PORT" repo2-s3-uri-style=path \
    repo2-s3-bucket=$BUCKET repo2-s3-region=us-east-1 "repo2-s3-key=$S3_KEY_ID" \
    "repo2-s3-key-secret=$S3_SECRET" "repo2-s3-token=$S3_TOKEN" repo2-storage-timeout=20 \
    repo3-type=azure repo3-path=/key "${az_common[@]/#/repo3-}" "repo3-azure-key=$AZ_KEY" \
    repo4-type=azure repo4-path=/sas "${az_common[@]/#/repo4-}" "repo4-azure-sas=$SAS" \
    archive-async=y "spool-path=$SPOOL" process-max=2 archive-get-queue-max=64MiB log-level=debug
# The tools create the repository directory themselves (its mode is theirs).
rmdir "$T/own/repo"
grep -q -F -f "$PATS" "$CONF" || die "the configuration file does not hold the secrets (test error)"

# ------------------------------------------------------------ 4. sampler --
# One pass: every process's command line, our processes' environments, and
# who holds the pusher's and the prefetcher's spool locks.
SAMPLES=$T/sampler
mkdir -p "$SAMPLES"
sampler() {
    local n=0 p pids=() envs=() fds=() push_lock=$SPOOL/$STANZA/push/lock fetch_lock=$SPOOL/$STANZA/fetch/lock
    set +e +o pipefail
    while [[ ! -e "$SAMPLES/stop" ]]; do
        n=$((n + 1))
        # One grep over every process's command line, naming the process
        # (never the secret) of each hit.
        grep -a -l -F -f "$PATS" /proc/[0-9]*/cmdline 2>/dev/null | while read -r f; do
            echo "pid $(cut -d/ -f3 <<<"$f") ($(cat "${f%cmdline}comm" 2>/dev/null))"
        done >>"$SAMPLES/cmdline.hits"
        mapfile -t pids < <(own_pids ue-wal-push ue-wal-fetch ue-basebackup ue-pitr)
        if ((${#pids[@]})); then
            printf '%s\n' "${pids[@]}" >>"$SAMPLES/pids"
            envs=() fds=()
            for p in "${pids[@]}"; do envs+=("/proc/$p/environ") fds+=("/proc/$p/fd"); done
            grep -a -l -F -f "$PATS" "${envs[@]}" 2>/dev/null >>"$SAMPLES/environ.hits"
            find "${fds[@]}" -mindepth 1 -maxdepth 1 \( -lname "$push_lock" \
                -printf 'pusher %h\n' -o -lname "$fetch_lock" -printf 'prefetcher %h\n' \) 2>/dev/null >>"$SAMPLES/holders"
        fi
        echo "$n" >"$SAMPLES/count"
        sleep 0.05
    done
}
: >"$SAMPLES/cmdline.hits"
: >"$SAMPLES/environ.hits"
: >"$SAMPLES/pids"
: >"$SAMPLES/holders"
sampler &
SAMPLER=$!
bg_register "$SAMPLER"
at_exit kill_own_processes

# umask000 CMD...: CMD as the PostgreSQL user with umask 000: every mode the
# tools give what they create must be explicit.
umask000() { as_pg sh -c 'umask 000 && exec "$@"' sh "$@"; }

# --------------------------------------------------- 2. archive, backup --
assert_exit 0 umask000 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
set_archive_command src "umask 000 && exec $PUSH --config $CONF --stanza $STANZA %p"
pgbench_run "$P" -i -s 2 -q >"$T/out/pgbench-init" 2>&1 || { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
assert_exit 0 umask000 "$BASEBACKUP" --config "$CONF" --stanza "$STANZA" --type full
cp "$LAST_ERR" "$T/out/basebackup.err"
FULL=$(tail -n 1 "$LAST_OUT")
pgbench_run "$P" -n -c 2 -T 4 >"$T/out/pgbench" 2>&1 || { tail "$T/out/pgbench"; die "pgbench failed"; }
last=$(switch_wal "$P")
wait_archived "$P" "$last" 120
want=$(table_checksum "$P")
grep -q "archived asynchronously" "$T/src.log" || die "no push was asynchronous"
note "backup $FULL in 4 repositories, WAL up to $last archived asynchronously"

# ------------------------------------------------------------ 3. restore --
pg_stop src
restore_to r1 --start --port "$P_RESTORE"
wait_promoted "$P_RESTORE" 180
assert_eq "$want" "$(table_checksum "$P_RESTORE")" "restored tables equal the source's"
for r in 1 2 3 4; do
    assert_exit 0 umask000 "$FETCH" --config "$CONF" --stanza "$STANZA" --repo "$r" "$last" "$T/own/fetched-$r"
    cmp -s "$T/own/fetched-$r" "$T/src/pg_wal/$last" || die "repo $r: $last fetched differs from pg_wal's"
done
ok "$last fetched from each of the 4 repositories (posix, S3, Azure key, Azure SAS)"
pg_stop r1
wait_lock_free "$SPOOL/$STANZA/push" 120
touch "$SAMPLES/stop"
wait "$SAMPLER" 2>/dev/null || true
# The prefetcher may linger (up to 30 s): it has been sampled; stop it so
# that the files grepped below no longer change.
kill_own_processes
# ------------------------------------------------- 4. what processes showed --
samples=$(cat "$SAMPLES/count")
nproc_seen=$(sort -u "$SAMPLES/pids" | grep -c . || true)
pushers=$(awk '$1 == "pusher" { print $2 }' "$SAMPLES/holders" | sort -u | grep -c . || true)
prefetchers=$(awk '$1 == "prefetcher" { print $2 }' "$SAMPLES/holders" | sort -u | grep -c . || true)
((pushers > 0)) || die "the sampler never saw an asynchronous pusher ($samples samples)"
((prefetchers > 0)) || die "the sampler never saw a prefetcher ($samples samples)"
[[ ! -s "$SAMPLES/cmdline.hits" ]] || die "a secret on a command line of: $(sort -u "$SAMPLES/cmdline.hits" | head -5 | tr '\n' ' ')"
[[ ! -s "$SAMPLES/environ.hits" ]] || die "a secret in the environment of: $(sort -u "$SAMPLES/environ.hits" | head -5 | tr '\n' ' ')"
ok "$samples samples of /proc/*/cmdline and of the environment of $nproc_seen ue-wal processes ($pushers pushers, $prefetchers prefetchers among them): no secret"

# ---------------------------------------------------- 5. files and logs --
nfiles=$(find "$T" -type f ! -path "$CONF" ! -path "$PATS" ! -path "$SAMPLES/*" | grep -c .)
leaks=$(find "$T" -type f ! -path "$CONF" ! -path "$PATS" ! -path "$SAMPLES/*" -print0 |
    xargs -0 grep -l -a -F -f "$PATS" 2>/dev/null || true)
[[ -z "$leaks" ]] || die "secrets found in: $(head -5 <<<"$leaks" | tr '\n' ' ')"
for f in "$T/src.log" "$T/r1/postgresql.auto.conf" "$T/out/basebackup.err"; do
    [[ -s "$f" ]] || die "$f is empty or missing: nothing was grepped there"
done
nobj=$(find "$T/objstore-s3/s3" "$T/objstore-az/azurite" "$T/own/repo" -type f | grep -c .)
grep -q 'restore_command' "$T/r1/postgresql.auto.conf" || die "no restore_command in the restored postgresql.auto.conf"
ok "$nfiles files grepped (server logs, stderr captures, spool, $nobj repository and object-store files, the restored data directory): no secret in any form"

# --------------------------------------------------------------- 6. modes --
# Created by the tools: the posix repository, the spool (push, fetch,
# state). Directories 0700, files 0600.
loose=$(find "$T/own/repo" "$SPOOL" \( -type d ! -perm 700 -o -type f ! -perm 600 -o ! -type d ! -type f \) \
    -printf '%m %y %p\n' | head -5)
[[ -z "$loose" ]] || die "tool-created entries not 0700/0600: $loose"
n1=$(find "$T/own/repo" "$SPOOL" | grep -c .)
nstate=$(find "$SPOOL" -path '*/state/*.state' | grep -c . || true)
# The restored data directory, as PostgreSQL 15 wants a cluster without
# group access (the source was initdb'd without -g).
loose=$(find -L "$T/r1" \( -type d ! -perm 700 -o -type f ! -perm 600 \) ! -name '*.pid' -printf '%m %y %p\n' | head -5)
[[ -z "$loose" ]] || die "restored data directory entries not 0700/0600: $loose"
n2=$(find -L "$T/r1" | grep -c .)
ok "modes with umask 000: $n1 repository/spool entries ($nstate state files) 0600/0700, $n2 restored data directory entries 0700/0600"
