#!/usr/bin/env bash
# s3_outage: the S3 server goes away and comes back, answers 503, refuses.
#
#  1. s3rver on UW_PORT_BASE+10 (data under $T/objstore); cluster "src"
#     archives into it with ue-wal-push; pgbench -i -s 3; a full
#     ue-basebackup into the bucket.
#  2. pgbench runs; s3rver is stopped in the middle of it: pushes fail,
#     pg_stat_archiver.failed_count grows, the segments completed during the
#     outage (pg_switch_wal) stay in pg_wal with their .ready files, and
#     none of them is marked .done.
#  3. s3rver restarted on the same data (the objects from before the outage
#     are still listed): archiving catches up by itself; boto3 lists every
#     segment from the first to the last archived exactly once, no gap; the
#     archiver's log shows each pushed once, in increasing order, and the
#     objects' Last-Modified times do not go backwards along the segments;
#     every WAL object fetched through ue-wal-fetch is byte-identical to
#     pg_wal.
#  4. ue-pitr restore of the backup from s3 to the end of the archive,
#     --start: every table's checksum equals the source's.
#  5. a fault-injecting HTTP proxy (UW_PORT_BASE+12) in front of s3rver
#     answers 503 to the first requests (the first with Retry-After: 1) and
#     forwards the rest untouched: ue-wal-push and ue-wal-fetch succeed,
#     log the retries, waited for the Retry-After; an upload answered 503
#     twice is sent again and stored intact; a server that keeps answering
#     503 makes ue-wal-push fail after its retries with an exit code
#     PostgreSQL retries (1..125).  (tests/unit/test_http.c covers the same
#     at the HTTP layer with a scripted server; this is end to end.)
#  6. clear refusals, exit 17 at once, one ERROR line, no secret in the
#     output: a wrong secret, a missing bucket, and TLS verification failure
#     (s3rver over HTTPS with a self-signed certificate on UW_PORT_BASE+11).
source "$(dirname "$0")/../lib.sh"
need_basebackup

P=$UW_PORT_BASE
P_RESTORE=$((P + 1))
S3_PORT=$((P + 10))
S3_TLS_PORT=$((P + 11))
PROXY_PORT=$((P + 12))
STANZA=s3o$UW_PORT_BASE
BUCKET=uw-outage
PREFIX=outage
SCALE=${UW_OUTAGE_SCALE:-3}
ENDPOINT=http://127.0.0.1:$S3_PORT

# s3_conf FILE ENDPOINT [key=value...]
s3_conf() {
    local file=$1 endpoint=$2
    shift 2
    write_config -f "$file" repo1-type=s3 repo1-path=/$PREFIX repo1-s3-endpoint="$endpoint" \
        repo1-s3-uri-style=path repo1-s3-bucket=$BUCKET repo1-s3-region=us-east-1 repo1-s3-key=S3RVER \
        repo1-s3-key-secret=S3RVER repo1-storage-timeout=10 "$@"
}
archiver() { q "$P" "select archived_count, failed_count, coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') from pg_stat_archiver"; }
ready_files() { find "$T/src/pg_wal/archive_status" -maxdepth 1 -printf '%f\n' | sed -n 's/^\([0-9A-F]\{24\}\)\.ready$/\1/p' | sort; }

# -------------------------------------------------------------- 1. setup --
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
s3_tool_init "$ENDPOINT" "$BUCKET"
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''" "wal_keep_size = 1GB"
pg_start src
s3_conf "$CONF" "$ENDPOINT"
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
first_seg=$(current_seg "$P")
pgbench_run "$P" -i -s "$SCALE" -q >"$T/out/pgbench-init" 2>&1 ||
    { tail "$T/out/pgbench-init"; die "pgbench -i failed"; }
take_backup --type full --process-max 2
FULL=$BACKUP_ID
q "$P" "create table uw_marker(id int primary key, note text)" >/dev/null
q "$P" "insert into uw_marker values (1, 'before the outage')" >/dev/null
pre_seg=$(switch_wal "$P")
wait_archived "$P" "$pre_seg" 60
note "backup $FULL and WAL up to $pre_seg in s3"

# ------------------------------------------------------------- 2. outage --
# Rate-limited: the WAL of the test stays well within wal_keep_size.
pgbench_run "$P" -n -c 2 -j 2 -T 24 -R "${UW_OUTAGE_TPS:-400}" >"$T/out/pgbench-outage" 2>&1 &
bench_pid=$!
sleep 3
IFS='|' read -r archived0 failed0 _ _ <<<"$(archiver)"
objstore_stop "$T/objstore"
t_down=$(now)
note "s3rver stopped during pgbench (archived_count $archived0, failed_count $failed0)"
q "$P" "insert into uw_marker values (2, 'during the outage')" >/dev/null
outage_segs=()
for i in 1 2 3; do
    sleep 2
    outage_segs+=("$(switch_wal "$P")")
done
deadline=$((SECONDS + 60))
while :; do
    IFS="|" read -r archived1 failed1 _ lastfail1 <<<"$(archiver)"
    ((failed1 >= failed0 + 2)) && break
    ((SECONDS < deadline)) || die "failed_count stayed at $failed1 with the server down"
    sleep 0.5
done
grep -q 'archive command failed with exit code' "$T/src.log" ||
    die "the server log does not show the failing archive_command"
push_err=$(grep -m1 -E "ue-wal-push: ERROR: .*127\.0\.0\.1 port $S3_PORT.*connect" "$T/src.log") ||
    die "ue-wal-push's connection error is not in the server log"
ok "pushes fail while s3rver is down: failed_count $failed0 -> $failed1 (last failed $lastfail1): $(cut -c1-200 <<<"$push_err")"
mapfile -t ready < <(ready_files)
for s in "${outage_segs[@]}"; do
    [[ " ${ready[*]} " == *" $s "* ]] || die "$s (completed during the outage) has no .ready file: ${ready[*]}"
    [[ -f "$T/src/pg_wal/$s" ]] || die "$s is no longer in pg_wal"
    [[ ! -e "$T/src/pg_wal/archive_status/$s.done" ]] || die "$s is marked .done while s3rver is down"
done
ok "${#ready[@]} segments wait as .ready in pg_wal/archive_status (${ready[0]}..${ready[-1]}); archived_count $archived0 -> $archived1"
while (($(awk -v s="$(elapsed "$t_down")" 'BEGIN { print (s < 10) }'))); do sleep 0.5; done
mapfile -t ready < <(ready_files)

# --------------------------------------------------------- 3. catch-up ----
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
note "s3rver restarted after $(elapsed "$t_down") s of outage, ${#ready[@]} segments waiting"
"${S3TOOL[@]}" list "$PREFIX/$STANZA/" >"$T/out/s3.relist"
grep -q " $PREFIX/$STANZA/archive/${pre_seg:0:16}/$pre_seg-" "$T/out/s3.relist" ||
    die "the objects from before the outage are gone after the restart"
grep -q " $PREFIX/$STANZA/backup/$FULL/manifest " "$T/out/s3.relist" || die "the backup is gone after the restart"
t0=$(now)
wait "$bench_pid" || { tail "$T/out/pgbench-outage"; die "pgbench failed during the outage"; }
q "$P" "insert into uw_marker values (3, 'after the outage')" >/dev/null
last_seg=$(switch_wal "$P")
wait_archived "$P" "$last_seg" 150
IFS='|' read -r archived2 failed2 last2 _ <<<"$(archiver)"
[[ "$last2" =~ ^[0-9A-F]{24}$ && "$last2" > "$last_seg" ]] && last_seg=$last2
note "archiving caught up $(elapsed "$t0") s after the restart (archived_count $archived2, failed_count $failed2)"
left=$(ready_files | awk -v l="$last_seg" '$1 <= l')
[[ -z "$left" ]] || die "still .ready after the catch-up: $left"

"${S3TOOL[@]}" list "$PREFIX/$STANZA/archive/" >"$T/out/s3.list"
prev_ms=0
prev_seg=""
nseg=0
for seg in $(seg_range "$first_seg" "$last_seg"); do
    lines=$(awk -v p="$PREFIX/$STANZA/archive/${seg:0:16}/$seg-" 'index($2, p) == 1' "$T/out/s3.list")
    n=$(grep -c . <<<"$lines" || true)
    [[ "$n" == 1 ]] || die "segment $seg: boto3 lists $n objects"
    read -r _ key _ ms <<<"$lines"
    [[ "$(basename "$key")" =~ ^$seg-[0-9a-f]{64}\.zst$ ]] || die "segment $seg: bad object name $key"
    ((ms >= prev_ms)) || die "segment $seg was stored before $prev_seg (Last-Modified $ms < $prev_ms)"
    prev_ms=$ms
    prev_seg=$seg
    nseg=$((nseg + 1))
done
ok "boto3: all $nseg segments $first_seg..$last_seg present exactly once, Last-Modified in segment order"
grep -o "pushed [0-9A-F]\{24\} to" "$T/src.log" | awk '{ print $2 }' >"$T/out/pushed.order"
sort -c "$T/out/pushed.order" 2>/dev/null || die "segments were pushed out of order: $(sort -C "$T/out/pushed.order" 2>&1 | head -3)"
dups=$(uniq -d "$T/out/pushed.order")
[[ -z "$dups" ]] || die "segments pushed twice: $dups"
for s in "${ready[@]}"; do
    grep -q -x "$s" "$T/out/pushed.order" || die "$s (waiting during the outage) was never pushed"
done
ok "the archiver pushed $(grep -c . "$T/out/pushed.order") segments once each, in increasing order, the ${#ready[@]} of the outage included"
awk '{ print $1, $2 }' "$T/out/s3.list" >"$T/out/s3.list2"
check_wal_objects "$T/out/s3.list2" "$T/src/pg_wal"
ok "all $WAL_OBJECTS WAL objects fetch back through ue-wal-fetch ($WAL_COMPARED byte-identical to pg_wal)"

# ------------------------------------------------------------ 4. recover --
src_sum=$(table_checksum "$P")
t0=$(now)
restore_to restored --start --port "$P_RESTORE" --process-max 2
wait_promoted "$P_RESTORE" 60
note "restore of $FULL from s3 to the end of the archive, started: $(elapsed "$t0") s"
dst_sum=$(table_checksum "$P_RESTORE")
if [[ "$src_sum" != "$dst_sum" ]]; then
    diff <(echo "$src_sum") <(echo "$dst_sum") >&2 || true
    die "the cluster recovered from s3 differs from the source"
fi
assert_eq 3 "$(q "$P_RESTORE" "select count(*) from uw_marker")" "markers (before, during, after the outage) recovered"
ok "cluster recovered from s3 equals the source ($(grep -c . <<<"$src_sum") tables)"
pg_stop restored

# --------------------------------------------------- 5. 503, Retry-After --
# proxy.py PORT UPSTREAM-PORT BUDGET-FILE LOG: one request per connection
# (every response says "Connection: close"), so that each request is judged:
# if the budget file says "N R [METHOD]" with N > 0 (and the request has
# that METHOD, when given), it is answered 503 SlowDown ("Retry-After: 1"
# while R > 0) once read (body included), and the budget decremented;
# else it is forwarded untouched (Host header included: the signature covers
# it) but for "Connection: close", and the response relayed.  Each request
# line and its fate go to LOG.
cat >"$T/proxy.py" <<'EOF'
import socket, sys, threading
port, up, budget_file, log_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
lock = threading.Lock()

def log(msg):
    with lock, open(log_file, "a") as f:
        f.write(msg + "\n")

def take(method):
    """None: forward; else True/False: 503 with/without Retry-After."""
    with lock:
        try:
            w = open(budget_file).read().split()
            n, r, only = int(w[0]), int(w[1]), (w[2] if len(w) > 2 else "")
        except (OSError, ValueError, IndexError):
            return None
        if n <= 0 or (only and method != only):
            return None
        with open(budget_file, "w") as f:
            f.write("%d %d %s\n" % (n - 1, max(r - 1, 0), only))
        return r > 0

def handle(c):
    try:
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        line = lines[0].decode("latin-1")
        length = 0
        for h in lines[1:]:
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(body) < length:
            d = c.recv(65536)
            if not d:
                return
            body += d
        ra = take(line.split(" ")[0])
        if ra is None:
            log("forward " + line)
            kept = [l for l in lines if not l.lower().startswith(b"connection:")]
            u = socket.create_connection(("127.0.0.1", up))
            u.sendall(b"\r\n".join(kept + [b"Connection: close"]) + b"\r\n\r\n" + body)
            while True:
                d = u.recv(65536)
                if not d:
                    break
                c.sendall(d)
            u.close()
            return
        msg = b'<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'
        hdr = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n" % len(msg)
        if ra:
            hdr += "Retry-After: 1\r\n"
        log("503%s %s" % (" (Retry-After: 1)" if ra else "", line))
        c.sendall(hdr.encode() + b"\r\n" + msg)
    except OSError as e:
        log("error %s" % e)
    finally:
        c.close()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
log("listening")
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF
BUDGET=$T/proxy.budget
echo "0 0" >"$BUDGET"
python3 "$T/proxy.py" "$PROXY_PORT" "$S3_PORT" "$BUDGET" "$T/out/proxy.log" </dev/null >"$T/out/proxy.out" 2>&1 &
bg_register $!
for ((i = 0; i < 50; i++)); do
    grep -q listening "$T/out/proxy.log" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$T/out/proxy.log" || die "the proxy did not start: $(cat "$T/out/proxy.out")"
PROXY=$T/proxy.conf
s3_conf "$PROXY" "http://127.0.0.1:$PROXY_PORT" repo1-path=/proxied
assert_exit_pg 0 "$PITR" --config "$PROXY" --stanza "$STANZA" stanza-create
pg_dir "$T/walcopy" 700
pg_dir "$T/fetched" 700
# Three archived segments still in pg_wal (wal_keep_size), copied for pushes.
mapfile -t kept < <(find "$T/src/pg_wal/archive_status" -maxdepth 1 -printf '%f\n' | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | sort | tail -n 3)
((${#kept[@]} == 3)) || die "fewer than 3 archived segments left in pg_wal"
seg=${kept[0]}
seg2=${kept[1]}
seg3=${kept[2]}
cp "$T/src/pg_wal/$seg" "$T/walcopy/$seg"
chown "$PGUSER_OS:" "$T/walcopy/$seg" 2>/dev/null || true

: >"$T/out/proxy.log"
echo "3 1" >"$BUDGET"
t0=$(now)
assert_exit_pg 0 "$PUSH" --config "$PROXY" --stanza "$STANZA" "$T/walcopy/$seg"
secs=$(elapsed "$t0")
n503=$(grep -c '^503' "$T/out/proxy.log" || true)
assert_eq 3 "$n503" "503 answers the proxy gave to ue-wal-push"
grep -q '^forward PUT ' "$T/out/proxy.log" || die "no upload was forwarded after the 503s: $(cat "$T/out/proxy.log")"
nretry=$(grep -c 'HTTP 503.*retrying' "$LAST_ERR" || true)
assert_eq 3 "$nretry" "retries ue-wal-push logged ($(grep -m1 'retrying' "$LAST_ERR" | cut -c1-160))"
awk -v s="$secs" 'BEGIN { exit !(s >= 1) }' || die "ue-wal-push took $secs s: the Retry-After: 1 was not honoured"
grep -q "pushed $seg to" "$LAST_ERR" || die "ue-wal-push did not report the push: $(cat "$LAST_ERR")"
ok "ue-wal-push through three 503s (one with Retry-After: 1): exit 0 in $secs s"
# Uploads answered 503: the body is sent again, the object stored intact.
: >"$T/out/proxy.log"
echo "2 0 PUT" >"$BUDGET"
cp "$T/src/pg_wal/$seg3" "$T/walcopy/$seg3"
chown "$PGUSER_OS:" "$T/walcopy/$seg3" 2>/dev/null || true
assert_exit_pg 0 "$PUSH" --config "$PROXY" --stanza "$STANZA" "$T/walcopy/$seg3"
assert_eq 2 "$(grep -c '^503 PUT ' "$T/out/proxy.log" || true)" "503 answers to the upload of $seg3"
grep -q '^forward PUT ' "$T/out/proxy.log" || die "the upload was not forwarded after the 503s"
"${S3TOOL[@]}" list "proxied/$STANZA/archive/" >"$T/out/proxied.list"
read -r psize pkey _ < <(grep " proxied/$STANZA/archive/${seg3:0:16}/$seg3-" "$T/out/proxied.list") ||
    die "boto3 does not see $seg3 in the bucket after the retried upload"
echo "0 0" >"$BUDGET"
rm -f "$T/fetched/$seg3"
assert_exit_pg 0 "$FETCH" --config "$PROXY" --stanza "$STANZA" "$seg3" "$T/fetched/$seg3"
cmp -s "$T/fetched/$seg3" "$T/src/pg_wal/$seg3" || die "$seg3 uploaded through two 503s differs when fetched back"
ok "an upload answered 503 twice is sent again: $pkey ($psize bytes) fetches back byte-identical"
: >"$T/out/proxy.log"
echo "2 1" >"$BUDGET"
t0=$(now)
assert_exit_pg 0 "$FETCH" --config "$PROXY" --stanza "$STANZA" "$seg" "$T/fetched/$seg"
secs=$(elapsed "$t0")
cmp -s "$T/fetched/$seg" "$T/src/pg_wal/$seg" || die "segment fetched through the proxy differs"
assert_eq 2 "$(grep -c '^503' "$T/out/proxy.log" || true)" "503 answers the proxy gave to ue-wal-fetch"
awk -v s="$secs" 'BEGIN { exit !(s >= 1) }' || die "ue-wal-fetch took $secs s: the Retry-After: 1 was not honoured"
ok "ue-wal-fetch through two 503s: byte-identical segment in $secs s ($(grep -c 'retrying' "$LAST_ERR" || true) retries logged)"
# Always 503: the retries run out; the exit code makes PostgreSQL retry later.
: >"$T/out/proxy.log"
echo "1000 0" >"$BUDGET"
cp "$T/src/pg_wal/$seg2" "$T/walcopy/$seg2"
chown "$PGUSER_OS:" "$T/walcopy/$seg2" 2>/dev/null || true
t0=$(now)
run as_pg "$PUSH" --config "$PROXY" --stanza "$STANZA" "$T/walcopy/$seg2"
secs=$(elapsed "$t0")
((LAST_RC >= 1 && LAST_RC <= 125)) || die "ue-wal-push against a server always answering 503 exited $LAST_RC (want 1..125): $(cat "$LAST_ERR")"
grep -q 'ERROR.*503.*attempts' "$LAST_ERR" || die "no final error naming the 503 and the attempts: $(cat "$LAST_ERR")"
ok "a server that keeps answering 503: ue-wal-push gives up after $(grep -c '^503' "$T/out/proxy.log") requests in $secs s, exit $LAST_RC: $(grep ERROR "$LAST_ERR" | cut -c1-200)"
echo "0 0" >"$BUDGET"

# ---------------------------------------------------------- 6. refusals --
# refused WHAT PATTERN SECRET CMD...: exit 17 at once, one ERROR line (and
# at most warnings besides) matching PATTERN, SECRET nowhere in the output.
refused() {
    local what=$1 pattern=$2 secret=$3 t1 secs
    shift 3
    t1=$(now)
    assert_exit_pg 17 "$@"
    secs=$(elapsed "$t1")
    [[ $(grep -c ERROR "$LAST_ERR") == 1 ]] || die "$what: not one ERROR line: $(cat "$LAST_ERR")"
    ! grep -q -v -e ERROR -e WARN "$LAST_ERR" || die "$what: more than the error: $(cat "$LAST_ERR")"
    grep -q -E -- "$pattern" "$LAST_ERR" || die "$what: message does not match /$pattern/: $(cat "$LAST_ERR")"
    ! grep -q -F -- "$secret" "$LAST_ERR" "$LAST_OUT" || die "$what: the secret is in the output"
    ! grep -q -i retrying "$LAST_ERR" || die "$what: retried"
    ok "$what: exit 17 in $secs s: $(grep ERROR "$LAST_ERR" | cut -c1-220)"
}
WRONG=wrong-secret-$RANDOM$RANDOM
BAD=$T/bad.conf
s3_conf "$BAD" "$ENDPOINT" repo1-s3-key-secret="$WRONG"
refused "wrong secret (fetch)" "SignatureDoesNotMatch" "$WRONG" \
    "$FETCH" --config "$BAD" --stanza "$STANZA" "$seg" "$T/fetched/x"
assert_file_absent "$T/fetched/x"
refused "wrong secret (push)" "SignatureDoesNotMatch" "$WRONG" \
    "$PUSH" --config "$BAD" --stanza "$STANZA" "$T/walcopy/$seg"
# The secret in the environment instead of the file: not shown either.
ENVBAD=$T/envbad.conf
s3_conf "$ENVBAD" "$ENDPOINT"
sed -i '/^repo1-s3-key/d' "$ENVBAD"
refused "wrong secret from AWS_SECRET_ACCESS_KEY" "SignatureDoesNotMatch" "$WRONG" \
    env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY="$WRONG" \
    "$FETCH" --config "$ENVBAD" --stanza "$STANZA" "$seg" "$T/fetched/x"
NOBUCKET=$T/nobucket.conf
s3_conf "$NOBUCKET" "$ENDPOINT" repo1-s3-bucket=no-such-bucket
refused "missing bucket (fetch)" "no-such-bucket" "S3RVER" \
    "$FETCH" --config "$NOBUCKET" --stanza "$STANZA" "$seg" "$T/fetched/x"
refused "missing bucket (push)" "no-such-bucket" "S3RVER" \
    "$PUSH" --config "$NOBUCKET" --stanza "$STANZA" "$T/walcopy/$seg"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/tls.key" -out "$T/tls.crt" \
    >"$T/out/openssl" 2>&1 || { cat "$T/out/openssl" >&2; die "openssl could not make a certificate"; }
chmod 644 "$T/tls.crt"
objstore_start "$T/objstore-tls" s3 UW_S3_PORT="$S3_TLS_PORT" UW_S3_BUCKET="$BUCKET" \
    UW_S3_TLS_CERT="$T/tls.crt" UW_S3_TLS_KEY="$T/tls.key"
NOCA=$T/noca.conf
s3_conf "$NOCA" "https://127.0.0.1:$S3_TLS_PORT"
refused "TLS verification failure (fetch)" "[Cc]ertificate" "S3RVER" \
    "$FETCH" --config "$NOCA" --stanza "$STANZA" "$seg" "$T/fetched/x"
refused "TLS verification failure (push)" "[Cc]ertificate" "S3RVER" \
    "$PUSH" --config "$NOCA" --stanza "$STANZA" "$T/walcopy/$seg"
refused "TLS verification failure (stanza-create)" "[Cc]ertificate" "S3RVER" \
    "$PITR" --config "$NOCA" --stanza "$STANZA" stanza-create
assert_exit_pg 0 "$PITR" --config "$NOCA" --stanza "$STANZA" --repo1-storage-ca-file="$T/tls.crt" stanza-create
ok "the same with repo1-storage-ca-file: stanza-create works"

rm -f "/tmp/ue-wal-$STANZA."*backup.lock
