#!/usr/bin/env bash
# The repository fails (HTTP 503 on every attempt) for one segment in the
# middle of a target-less recovery to the end of the archive. PostgreSQL reads
# ue-wal-fetch's exit 5 as "not archived", ends recovery there and promotes;
# `ue-pitr restore --start` must notice that the archive's end was not reached
# and fail (exit 14) naming the fetch error, instead of reporting success.
source "$(dirname "$0")/../lib.sh"
need_basebackup
P=$UW_PORT_BASE; P_R=$((P + 1)); S3_PORT=$((P + 10)); PROXY_PORT=$((P + 12))
STANZA=rep$UW_PORT_BASE; BUCKET=uw-rep
objstore_start "$T/objstore" s3 UW_S3_PORT="$S3_PORT" UW_S3_BUCKET="$BUCKET"
cat >"$T/proxy.py" <<'PY'
import socket, sys, threading
port, up, pat_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def handle(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d: c.close(); return
        buf += d
    line = buf.split(b"\r\n")[0].decode()
    pat = open(pat_file).read().strip()
    if pat and pat in line:
        body = b"<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>"
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        c.close(); return
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
    u = socket.create_connection(("127.0.0.1", up))
    u.sendall(b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + rest)
    t = threading.Thread(target=pipe, args=(c, u), daemon=True); t.start(); pipe(u, c); c.close(); u.close()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(64)
while True:
    c, _ = srv.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
echo "" >"$T/pattern"
python3 "$T/proxy.py" "$PROXY_PORT" "$S3_PORT" "$T/pattern" </dev/null >"$T/out/proxy.out" 2>&1 &
bg_register $!
wait_port "$PROXY_PORT"
pg_init src "$P"
pg_conf src "archive_mode = on" "archive_command = ''"
pg_start src
write_config repo1-type=s3 repo1-path=/r repo1-s3-endpoint="http://127.0.0.1:$PROXY_PORT" repo1-s3-uri-style=path \
    repo1-s3-bucket=$BUCKET repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER repo1-storage-timeout=5
assert_exit_pg 0 "$PITR" --config "$CONF" --stanza "$STANZA" stanza-create
enable_archiving src
take_backup --type full
q "$P" "create table m(id int)" >/dev/null
for i in 1 2 3 4 5 6; do
    q "$P" "insert into m values ($i)" >/dev/null
    s=$(switch_wal "$P"); segs+=("$s")
done
wait_archived "$P" "$s" 60
note "archived ${segs[*]}; rows in m: $(q "$P" "select count(*) from m")"
# The repository fails for the 4th marker's segment (holding row 4).
echo "${segs[3]}" >"$T/pattern"
mkdir -p "$T/sock/r" && chown "$PGUSER_OS" "$T/sock/r" && chmod 700 "$T/sock/r"
assert_exit_pg 14 "$PITR" --config "$CONF" --stanza "$STANZA" restore --pgdata "$T/sock/r" --start \
    --port "$P_R"
grep -q "before the end of the archive" "$LAST_ERR" || die "no 'before the end of the archive' in: $(cat "$LAST_ERR")"
grep -q "ue-wal-fetch: ERROR: \[5 storage\]" "$LAST_ERR" || die "the fetch error is not named: $(cat "$LAST_ERR")"
ok "restore --start refused a recovery that stopped short: $(tail -1 "$LAST_ERR" | cut -c1-200)"
as_pg "$PGBIN/pg_ctl" -D "$T/sock/r" -m immediate stop >/dev/null 2>&1 || true
echo "" >"$T/pattern"
note "PASS"
