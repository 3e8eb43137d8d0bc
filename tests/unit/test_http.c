/* The HTTP layer (http.h) against a scripted loopback server: success and
 * error mapping (one-line messages from XML error bodies, as the drivers'
 * service error parsers read them), retries with backoff on 5xx/throttling
 * honouring Retry-After, no retry on 4xx unless the service's code asks for
 * one, streamed GETs (interrupted ones fail without retry), uploads from
 * memory, HEAD, connection reuse and concurrent asynchronous requests; and the
 * S3 and Azure error parsers on their own. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "storage/http.h"
#include "storage/storage_azure.h"
#include "storage/storage_s3.h"
#include "io/sink.h"
#include "unit.h"

/* ------------------------------------------------------------ server -- */

#define MAX_CONN 64

static int srv_fd = -1, srv_port;
static pthread_t srv_thread, conn_threads[MAX_CONN];
static int nconn_threads;
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static int accepted, flaky_count, slow_count, throttle_count, reqtimeout_count, huge_count,
    requests;
static char last_auth[256];
/* /gather holds each request until GATHER_N are in flight at once (or 60 s
 * pass), so the client's parallelism is observed by the server instead of
 * inferred from how fast the transfers finished on a possibly busy machine. */
enum { GATHER_N = 8 };
static pthread_cond_t srv_cv = PTHREAD_COND_INITIALIZER;
static int gather_inflight, gather_max;

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int respond(int fd, int status, const char *extra, const char *body, size_t blen)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
                     blen, extra ? extra : "");
    if (send_all(fd, head, (size_t)n) < 0)
        return -1;
    return blen ? send_all(fd, body, blen) : 0;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(1 << 16);
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, buf + have, (1 << 16) - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t hlen = (size_t)(end + 4 - buf);
        char method[16] = "", path[512] = "";
        sscanf(buf, "%15s %511s", method, path);
        size_t clen = 0;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        char *au = strcasestr(buf, "\r\nAuthorization:");
        pthread_mutex_lock(&srv_mu);
        requests++;
        if (au && au < end)
            snprintf(last_auth, sizeof last_auth, "%.*s", (int)strcspn(au + 2, "\r"), au + 2);
        pthread_mutex_unlock(&srv_mu);
        /* body: count and sum it (may exceed the buffer) */
        size_t got = have - hlen < clen ? have - hlen : clen;
        unsigned long sum = 0;
        for (size_t i = 0; i < got; i++)
            sum += (unsigned char)buf[hlen + i];
        size_t rest = have - hlen - got;
        memmove(buf, buf + hlen + got, rest);
        have = rest;
        while (got < clen) {
            char tmp[65536];
            size_t want = clen - got < sizeof tmp ? clen - got : sizeof tmp;
            ssize_t r = recv(fd, tmp, want, 0);
            if (r <= 0)
                goto out;
            for (ssize_t i = 0; i < r; i++)
                sum += (unsigned char)tmp[i];
            got += (size_t)r;
        }
        bool head = strcmp(method, "HEAD") == 0;
        int rc = 0;
        if (strcmp(path, "/ok") == 0) {
            const char *hr = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n\r\n";
            if (head) /* HEAD: the would-be body's length, no body */
                rc = send_all(fd, hr, strlen(hr));
            else
                rc = respond(fd, 200, "ETag: \"abc\"\r\n", "hello", 5);
        } else if (strcmp(path, "/flaky") == 0) {
            pthread_mutex_lock(&srv_mu);
            int k = flaky_count++;
            pthread_mutex_unlock(&srv_mu);
            rc = k < 2 ? respond(fd, 503, "Retry-After: 1\r\n", "busy", 4)
                       : respond(fd, 200, NULL, "fine", 4);
        } else if (strcmp(path, "/huge-retry-after") == 0) {
            /* Seconds beyond any integer type: must be clamped, not overflowed. */
            pthread_mutex_lock(&srv_mu);
            int k = huge_count++;
            pthread_mutex_unlock(&srv_mu);
            rc = k < 1 ? respond(fd, 503, "Retry-After: 99999999999999999999999\r\n", "busy", 4)
                       : respond(fd, 200, NULL, "fine", 4);
        } else if (strcmp(path, "/slowdown") == 0) {
            pthread_mutex_lock(&srv_mu);
            int k = slow_count++;
            pthread_mutex_unlock(&srv_mu);
            const char *x = "<Error><Code>SlowDown</Code><Message>Please reduce your request "
                            "rate.</Message></Error>";
            rc = k < 1 ? respond(fd, 503, NULL, x, strlen(x)) : respond(fd, 200, NULL, "ok", 2);
        } else if (strcmp(path, "/reqtimeout") == 0) {
            /* S3's RequestTimeout comes with a 400: only its code says "retry" */
            pthread_mutex_lock(&srv_mu);
            int k = reqtimeout_count++;
            pthread_mutex_unlock(&srv_mu);
            const char *x = "<Error><Code>RequestTimeout</Code><Message>Your socket connection "
                            "to the server was not read from or written to within the timeout "
                            "period.</Message></Error>";
            rc =
                k % 2 == 0 ? respond(fd, 400, NULL, x, strlen(x)) : respond(fd, 200, NULL, "ok", 2);
        } else if (strcmp(path, "/throttle") == 0) {
            pthread_mutex_lock(&srv_mu);
            throttle_count++;
            pthread_mutex_unlock(&srv_mu);
            const char *x = "<Error><Code>ServerBusy</Code><Message>The server is busy.\n"
                            "RequestId:1\nTime:now</Message></Error>";
            rc = respond(fd, 503, "x-ms-error-code: ServerBusy\r\n", x, strlen(x));
        } else if (strcmp(path, "/denied") == 0) {
            const char *x = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
                            "<Message>The request signature\nwe calculated does not match."
                            "</Message></Error>";
            rc = respond(fd, 403, NULL, x, strlen(x));
        } else if (strcmp(path, "/missing") == 0) {
            const char *x = "<Error><Code>NoSuchKey</Code><Message>The specified key does not "
                            "exist.</Message></Error>";
            rc = respond(fd, 404, NULL, head ? NULL : x, head ? 0 : strlen(x));
        } else if (strcmp(path, "/cut") == 0) {
            char head2[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
            send_all(fd, head2, strlen(head2));
            char part[5000];
            memset(part, 'x', sizeof part);
            send_all(fd, part, sizeof part);
            goto out; /* close mid-body */
        } else if (strcmp(path, "/big") == 0) {
            size_t n = 3u << 20;
            char *b = malloc(n);
            for (size_t i = 0; i < n; i++)
                b[i] = (char)(i * 7);
            rc = respond(fd, 200, NULL, b, n);
            free(b);
        } else if (strcmp(path, "/huge-body") == 0) {
            /* An error body past the in-memory cap (a hostile service). */
            size_t n = UW_HTTP_BODY_MAX + (1u << 20);
            char *b = malloc(n);
            memset(b, 'e', n);
            rc = respond(fd, 403, NULL, b, n);
            free(b);
        } else if (strcmp(path, "/upload") == 0) {
            char extra[128];
            snprintf(extra, sizeof extra, "X-Len: %zu\r\nX-Sum: %lu\r\n", got, sum);
            rc = respond(fd, 200, extra, NULL, 0);
        } else if (strcmp(path, "/gather") == 0) {
            pthread_mutex_lock(&srv_mu);
            if (++gather_inflight > gather_max)
                gather_max = gather_inflight;
            pthread_cond_broadcast(&srv_cv);
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 60;
            while (gather_max < GATHER_N && pthread_cond_timedwait(&srv_cv, &srv_mu, &dl) == 0)
                ;
            gather_inflight--;
            pthread_mutex_unlock(&srv_mu);
            rc = respond(fd, 200, NULL, "late", 4);
        } else if (strcmp(path, "/slow") == 0) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            rc = respond(fd, 200, NULL, "late", 4);
        } else {
            rc = respond(fd, 400, NULL, "<Error><Code>BadPath</Code></Error>", 34);
        }
        if (rc < 0)
            break;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv_fd, NULL, NULL);
        if (c < 0)
            break;
        pthread_mutex_lock(&srv_mu);
        accepted++;
        bool room = nconn_threads < MAX_CONN;
        if (room)
            pthread_create(&conn_threads[nconn_threads++], NULL, conn_main, (void *)(intptr_t)c);
        pthread_mutex_unlock(&srv_mu);
        if (!room)
            close(c);
    }
    return NULL;
}

static void server_start(void)
{
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(srv_fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(srv_fd, (struct sockaddr *)&a, &l);
    srv_port = ntohs(a.sin_port);
    listen(srv_fd, 64);
    pthread_create(&srv_thread, NULL, accept_main, NULL);
}

static void server_stop(void)
{
    shutdown(srv_fd, SHUT_RDWR);
    close(srv_fd);
    pthread_join(srv_thread, NULL);
    for (int i = 0; i < nconn_threads; i++)
        pthread_join(conn_threads[i], NULL);
}

/* ------------------------------------------------------------- tests -- */

static char *url(const char *path)
{
    return uw_sprintf("http://127.0.0.1:%d%s", srv_port, path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec_path(uw_http *h, const char *method, const char *path, unsigned flags,
                     uw_sink *sink, uw_http_response *resp, uw_err *err)
{
    char *u = url(path);
    uw_http_request req = {0};
    req.method = method;
    req.url = u;
    req.flags = flags;
    req.sink = sink;
    int rc = uw_http_exec(h, &req, resp, err);
    uw_http_request_clear(&req);
    free(u);
    return rc;
}

static int add_secret_header(void *ctx, const uw_http_request *req, uw_http_headers *out,
                             uw_err *err)
{
    (void)req;
    (void)err;
    int *calls = ctx;
    (*calls)++;
    uw_http_headers_add(out, "Authorization", "Test attempt-%d", *calls);
    return 0;
}

static void test_basic(uw_http *h)
{
    uw_t_section("success, headers, HEAD, connection reuse");
    uw_err err;
    uw_err_clear(&err);
    uw_http_response resp = {0};
    int before = accepted;
    for (int i = 0; i < 5; i++) {
        int rc = exec_path(h, "GET", "/ok", 0, NULL, &resp, &err);
        CHECK_OK(rc == 0, err);
        CHECK_INT(resp.status, 200);
        CHECK(resp.body.len == 5 && memcmp(resp.body.data, "hello", 5) == 0);
        CHECK_STR(uw_http_response_header(&resp, "etag"), "\"abc\"");
        CHECK_INT(resp.attempts, 1);
    }
    CHECK_INT(accepted - before, 1); /* one connection for all five */
    int rc = exec_path(h, "HEAD", "/ok", 0, NULL, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_STR(uw_http_response_header(&resp, "Content-Length"), "5");
    /* prepare() runs per attempt and its headers are sent */
    int calls = 0;
    char *u = url("/ok");
    uw_http_request req = {0};
    req.method = "GET";
    req.url = u;
    req.prepare = add_secret_header;
    req.prepare_ctx = &calls;
    rc = uw_http_exec(h, &req, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_INT(calls, 1);
    CHECK_STR(last_auth, "Authorization: Test attempt-1");
    free(u);
    uw_http_response_clear(&resp);

    /* connections are close-on-exec: servers started by our commands
     * (ue-pitr restore --start) must not inherit them */
    int client_socks = 0, cloexec = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        int fd = atoi(de->d_name);
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        if (fd <= 2 || getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != srv_port)
            continue;
        client_socks++;
        if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
            cloexec++;
    }
    if (d)
        closedir(d);
    CHECK(client_socks >= 1);
    CHECK_INT(cloexec, client_socks);
}

static void test_errors(uw_http *h)
{
    uw_t_section("error mapping: 403, 404, one-line messages");
    uw_err err;
    uw_err_clear(&err);
    uw_http_response resp = {0};
    int before = requests;
    double t0 = now_s();
    int rc = exec_path(h, "GET", "/denied", 0, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE_DENIED);
    CHECK_INT(requests - before, 1); /* never retried */
    CHECK(now_s() - t0 < 1.0);
    CHECK_CONTAINS(err.msg, "HTTP 403 SignatureDoesNotMatch: The request signature we calculated");
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK_STR(resp.error_code, "SignatureDoesNotMatch");
    CHECK_INT(resp.status, 403);

    rc = exec_path(h, "GET", "/missing", 0, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_NOT_FOUND);
    CHECK_CONTAINS(err.msg, "NoSuchKey");
    rc = exec_path(h, "HEAD", "/missing", UW_HTTP_404_OK, NULL, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_INT(resp.status, 404);
    rc = exec_path(h, "GET", "/unknown", 0, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE_DENIED);
    CHECK_CONTAINS(err.msg, "HTTP 400 BadPath");

    /* a query string (SAS tokens) never reaches messages */
    rc = exec_path(h, "GET", "/denied?sig=SECRET", 0, NULL, &resp, &err);
    CHECK(rc < 0);
    CHECK_NOT_CONTAINS(err.msg, "SECRET");

    /* connection refused: retried, then UW_E_STORAGE */
    uw_http_opts o = {"Test", true, NULL, 5, 1, uw_s3_parse_error};
    uw_http *h2 = uw_http_new(&o, &err);
    char *u = uw_sprintf("http://127.0.0.1:1/x");
    uw_http_request req = {0};
    req.method = "GET";
    req.url = u;
    req.flags = UW_HTTP_QUIET;
    rc = uw_http_exec(h2, &req, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE);
    CHECK_INT(resp.attempts, 2);
    CHECK_CONTAINS(err.msg, "after 2 attempts");
    free(u);
    uw_http_free(h2);
    uw_http_response_clear(&resp);
}

static void test_retries(uw_http *h)
{
    uw_t_section("retries: 503 + Retry-After, SlowDown, ServerBusy");
    uw_err err;
    uw_err_clear(&err);
    uw_http_response resp = {0};
    double t0 = now_s();
    int rc = exec_path(h, "GET", "/flaky", UW_HTTP_QUIET, NULL, &resp, &err);
    double dt = now_s() - t0;
    CHECK_OK(rc == 0, err);
    CHECK_INT(resp.attempts, 3);
    CHECK(resp.body.len == 4 && memcmp(resp.body.data, "fine", 4) == 0);
    /* the upper bound only catches a hang: a busy machine may add any delay */
    CHECKF(dt >= 1.9 && dt < 120, "two Retry-After: 1 waits took %.2f s", dt);

    rc = exec_path(h, "GET", "/slowdown", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_INT(resp.attempts, 2);

    /* always busy: retry_max (2 here) extra attempts, then UW_E_STORAGE with the
     * first line of the service's message */
    uw_http_opts o = {"Test", true, NULL, 5, 2, uw_azure_parse_error};
    uw_http *h2 = uw_http_new(&o, &err);
    int before = throttle_count;
    rc = exec_path(h2, "GET", "/throttle", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE);
    CHECK_INT(throttle_count - before, 3);
    CHECK_CONTAINS(err.msg, "HTTP 503 ServerBusy: The server is busy. (after 3 attempts)");
    /* A Retry-After too large for any integer is clamped (no signed overflow,
     * which UBSan reports) and then capped at the client's timeout (2 s
     * here): the wait is that cap, neither an overflowed (negative, so
     * ignored) value nor forever. The upper bound only catches a hang: on a
     * loaded machine the wait may overrun the cap by any amount. */
    uw_http_opts o1 = {"Test", true, NULL, 2, 1, NULL};
    uw_http *h1 = uw_http_new(&o1, &err);
    t0 = now_s();
    rc = exec_path(h1, "GET", "/huge-retry-after", UW_HTTP_QUIET, NULL, &resp, &err);
    dt = now_s() - t0;
    CHECK_OK(rc == 0, err);
    CHECK_INT(resp.attempts, 2);
    CHECKF(dt >= 1.95 && dt < 120, "a huge Retry-After capped at the 2 s timeout waited %.2f s",
           dt);
    uw_http_free(h1);
    /* A body kept in memory is capped: the request fails instead of
     * buffering whatever the service sends. A generous timeout: the test
     * server's thread may be starved for seconds on a busy machine, which
     * the client's low-speed limit would report as "Operation too slow". */
    uw_http_opts o30 = {"Test", true, NULL, 30, 1, NULL};
    h1 = uw_http_new(&o30, &err);
    rc = exec_path(h1, "GET", "/huge-body", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE);
    CHECK_CONTAINS(err.msg, "response body exceeds 16 MiB");
    CHECK(resp.body.len <= UW_HTTP_BODY_MAX);
    uw_http_free(h1);
    /* UW_HTTP_NO_RETRY */
    before = throttle_count;
    rc = exec_path(h2, "GET", "/throttle", UW_HTTP_NO_RETRY, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE);
    CHECK_INT(throttle_count - before, 1);
    uw_http_free(h2);
    uw_http_response_clear(&resp);
}

typedef struct {
    uw_sink base;
    size_t n;
    unsigned long sum;
    size_t fail_after;
} count_sink;

static int cs_write(uw_sink *s, const uint8_t *b, size_t len, uw_err *err)
{
    count_sink *c = (count_sink *)s;
    if (c->fail_after && c->n + len > c->fail_after)
        return uw_fail(err, UW_E_CORRUPT, "sink refuses");
    for (size_t i = 0; i < len; i++)
        c->sum += b[i];
    c->n += len;
    return 0;
}
static int cs_finish(uw_sink *s, uw_err *err)
{
    (void)s;
    (void)err;
    return 0;
}
static void cs_destroy(uw_sink *s)
{
    (void)s;
}

static void test_streaming(uw_http *h)
{
    uw_t_section("streamed GET, interrupted GET, sink errors, upload");
    uw_err err;
    uw_err_clear(&err);
    uw_http_response resp = {0};
    count_sink cs = {{cs_write, cs_finish, cs_destroy, NULL, false, NULL}, 0, 0, 0};
    int rc = exec_path(h, "GET", "/big", 0, &cs.base, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_U64(cs.n, 3u << 20);
    CHECK_U64(resp.streamed, 3u << 20);
    CHECK_INT(resp.body.len, 0);
    unsigned long want = 0;
    for (size_t i = 0; i < (3u << 20); i++)
        want += (unsigned char)(char)(i * 7);
    CHECK_U64(cs.sum, want);

    /* error bodies never reach the sink */
    count_sink c2 = {{cs_write, cs_finish, cs_destroy, NULL, false, NULL}, 0, 0, 0};
    rc = exec_path(h, "GET", "/missing", 0, &c2.base, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_NOT_FOUND);
    CHECK_INT(c2.n, 0);

    /* cut after bytes reached the sink: UW_E_STORAGE, one attempt only */
    count_sink c3 = {{cs_write, cs_finish, cs_destroy, NULL, false, NULL}, 0, 0, 0};
    rc = exec_path(h, "GET", "/cut", UW_HTTP_QUIET, &c3.base, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE);
    CHECK_INT(resp.attempts, 1);
    CHECK_CONTAINS(err.msg, "interrupted after 5000 bytes");

    /* the sink's own error wins and is not retried */
    count_sink c4 = {{cs_write, cs_finish, cs_destroy, NULL, false, NULL}, 0, 0, 1000};
    rc = exec_path(h, "GET", "/big", 0, &c4.base, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_CORRUPT);
    CHECK_INT(resp.attempts, 1);

    /* uploads from memory: PUT and POST, body arrives intact */
    size_t n = (2u << 20) + 3;
    uint8_t *body = malloc(n);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += body[i] = (uint8_t)(i * 13);
    const char *methods[] = {"PUT", "POST"};
    for (int m = 0; m < 2; m++) {
        char *u = url("/upload");
        uw_http_request req = {0};
        req.method = methods[m];
        req.url = u;
        req.body = body;
        req.body_len = n;
        rc = uw_http_exec(h, &req, &resp, &err);
        CHECK_OK(rc == 0, err);
        const char *l = uw_http_response_header(&resp, "X-Len");
        const char *s = uw_http_response_header(&resp, "X-Sum");
        CHECK(l && strtoull(l, NULL, 10) == n);
        CHECK(s && strtoul(s, NULL, 10) == sum);
        free(u);
    }
    free(body);
    uw_http_response_clear(&resp);
}

typedef struct {
    int done, failed;
} async_state;

static void async_done(void *ctx, const uw_http_request *req, uw_http_response *resp, int rc,
                       const uw_err *err)
{
    (void)req;
    (void)err;
    async_state *a = ctx;
    a->done++;
    if (rc < 0 || resp->body.len != 4)
        a->failed++;
}

static void test_async(uw_http *h)
{
    uw_t_section("asynchronous: concurrent transfers on one thread");
    enum { N = GATHER_N };
    uw_http_request reqs[N];
    uw_http_response resps[N];
    memset(reqs, 0, sizeof reqs);
    memset(resps, 0, sizeof resps);
    char *u = url("/gather");
    async_state a = {0, 0};
    for (int i = 0; i < N; i++) {
        reqs[i].method = "GET";
        reqs[i].url = u;
        uw_http_submit(h, &reqs[i], &resps[i], async_done, &a);
    }
    CHECK_INT(uw_http_pending(h), N);
    CHECK_INT(a.done, 0); /* nothing completes inside submit() */
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(uw_http_run(h, &err) == 0, err);
    CHECK_INT(a.done, N);
    CHECK_INT(a.failed, 0);
    CHECK_INT(uw_http_pending(h), 0);
    /* the server held every request until all N were in flight at once */
    pthread_mutex_lock(&srv_mu);
    int in_flight = gather_max;
    pthread_mutex_unlock(&srv_mu);
    CHECKF(in_flight == N, "%d transfers in flight at once, expected %d", in_flight, N);
    for (int i = 0; i < N; i++)
        uw_http_response_clear(&resps[i]);
    free(u);
    /* freeing a client with transfers in flight runs no callbacks and leaks nothing */
    uw_http_opts o = {"Test", true, NULL, 5, -1, NULL};
    uw_http *h2 = uw_http_new(&o, &err);
    u = url("/slow");
    async_state b = {0, 0};
    for (int i = 0; i < 3; i++) {
        reqs[i].url = u;
        uw_http_submit(h2, &reqs[i], &resps[i], async_done, &b);
    }
    uw_http_run_once(h2, false);
    uw_http_free(h2);
    CHECK_INT(b.done, 0);
    for (int i = 0; i < 3; i++)
        uw_http_response_clear(&resps[i]);
    free(u);
}

static void test_service_codes(uw_http *h)
{
    uw_t_section("retries decided by the service's error code");
    uw_err err;
    uw_err_clear(&err);
    uw_http_response resp = {0};
    /* h parses S3 errors: RequestTimeout (HTTP 400) is retried */
    int rc = exec_path(h, "GET", "/reqtimeout", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_OK(rc == 0, err);
    CHECK_INT(resp.attempts, 2);
    /* without a parser: a plain 400, refused at once, the reason phrase in the
     * message and no service code */
    uw_http_opts o = {"Test", true, NULL, 5, 2, NULL};
    uw_http *h2 = uw_http_new(&o, &err);
    int before = reqtimeout_count;
    rc = exec_path(h2, "GET", "/reqtimeout", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_STORAGE_DENIED);
    CHECK_INT(reqtimeout_count - before, 1);
    CHECK_CONTAINS(err.msg, "Test HTTP 400 X");
    CHECK(resp.error_code == NULL);
    /* the next request of the scripted pair succeeds: keep it in step */
    rc = exec_path(h2, "GET", "/reqtimeout", UW_HTTP_QUIET, NULL, &resp, &err);
    CHECK_OK(rc == 0, err);
    uw_http_free(h2);
    uw_http_response_clear(&resp);
}

/* A response as the HTTP layer hands it to a parser. */
static void fake_response(uw_http_response *r, long status, const char *body, const char *hname,
                          const char *hvalue)
{
    uw_http_response_clear(r);
    r->status = status;
    if (body)
        uw_buf_append(&r->body, body, strlen(body));
    if (hname)
        uw_http_headers_add(&r->headers, hname, "%s", hvalue);
}

static void parsed(uw_http_error_fn parse, const uw_http_response *r, const char *code,
                   const char *msg, bool retry)
{
    uw_http_service_error se = {NULL, NULL, false};
    parse(r, &se);
    if (code)
        CHECK_STR(se.code, code);
    else
        CHECKF(se.code == NULL, "code '%s', want none", se.code);
    if (msg)
        CHECK_STR(se.message, msg);
    else
        CHECKF(se.message == NULL, "message '%s', want none", se.message);
    CHECKF(se.retry == retry, "code %s: retry %d, want %d", code ? code : "-", se.retry, retry);
    free(se.code);
    free(se.message);
}

static void test_parsers(void)
{
    uw_t_section("S3 and Azure error parsers");
    uw_http_response r = {0};
    fake_response(&r, 503, "<Error><Code>SlowDown</Code><Message>Reduce.</Message></Error>", NULL,
                  NULL);
    parsed(uw_s3_parse_error, &r, "SlowDown", "Reduce.", true);
    parsed(uw_azure_parse_error, &r, "SlowDown", "Reduce.", false);
    fake_response(&r, 400, "<Error><Code>RequestTimeout</Code></Error>", NULL, NULL);
    parsed(uw_s3_parse_error, &r, "RequestTimeout", NULL, true);
    fake_response(&r, 403, "<Error><Code>AccessDenied</Code><Message>No.</Message></Error>", NULL,
                  NULL);
    parsed(uw_s3_parse_error, &r, "AccessDenied", "No.", false);
    /* HEAD: no body, each service's own headers only */
    fake_response(&r, 404, NULL, "x-amz-error-code", "NoSuchBucket");
    parsed(uw_s3_parse_error, &r, "NoSuchBucket", NULL, false);
    parsed(uw_azure_parse_error, &r, NULL, NULL, false);
    uw_http_headers_add(&r.headers, "x-amz-error-message", "%s", "The bucket is gone.");
    parsed(uw_s3_parse_error, &r, "NoSuchBucket", "The bucket is gone.", false);
    fake_response(&r, 404, NULL, "x-ms-error-code", "ContainerNotFound");
    parsed(uw_azure_parse_error, &r, "ContainerNotFound", NULL, false);
    parsed(uw_s3_parse_error, &r, NULL, NULL, false);
    /* Azure: the RequestId/Time trailer is dropped, its throttling codes retry */
    const char *busy = "<Error><Code>ServerBusy</Code><Message>Busy.\nRequestId:1\nTime:now"
                       "</Message></Error>";
    fake_response(&r, 503, busy, "x-ms-error-code", "ServerBusy");
    parsed(uw_azure_parse_error, &r, "ServerBusy", "Busy.", true);
    parsed(uw_s3_parse_error, &r, "ServerBusy", "Busy.\nRequestId:1\nTime:now", false);
    fake_response(&r, 500, "<Error><Code>OperationTimedOut</Code></Error>", NULL, NULL);
    parsed(uw_azure_parse_error, &r, "OperationTimedOut", NULL, true);
    fake_response(&r, 500, "<Error><Code>InternalError</Code></Error>", NULL, NULL);
    parsed(uw_azure_parse_error, &r, "InternalError", NULL, true);
    parsed(uw_s3_parse_error, &r, "InternalError", NULL, true);
    uw_http_response_clear(&r);
}

static void test_tls_options(void)
{
    uw_t_section("client options");
    uw_err err;
    uw_err_clear(&err);
    uw_http_opts o = {"Test", true, "/nonexistent/ca.pem", 5, -1, NULL};
    uw_http *h = uw_http_new(&o, &err);
    CHECK_FAIL_CODE(h == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "/nonexistent/ca.pem");
}

int main(void)
{
    server_start();
    uw_err err;
    uw_err_clear(&err);
    uw_http_opts o = {"Test", true, NULL, 10, -1, uw_s3_parse_error};
    uw_http *h = uw_http_new(&o, &err);
    if (!CHECK_OK(h != NULL, err))
        return uw_t_done("test_http");
    test_basic(h);
    test_errors(h);
    test_retries(h);
    test_streaming(h);
    test_async(h);
    test_service_codes(h);
    test_parsers();
    test_tls_options();
    uw_http_free(h);
    server_stop();
    return uw_t_done("test_http");
}
