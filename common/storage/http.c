/* HTTP client on libcurl's multi interface driven by a private libuv loop. See
 * http.h for the contract. */
#include "storage/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "storage/curl.h"

#define IDLE_EASY_MAX 16
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 10000

/* ------------------------------------------------------------------------ */
/* client state */

typedef struct xfer xfer;

struct uw_http {
    char *service;
    bool verify_tls;
    char *ca_file;
    long timeout_sec;
    int retry_max;
    uw_http_error_fn parse_error;
    uv_loop_t loop;
    uv_timer_t curl_timer;  /* CURLMOPT_TIMERFUNCTION */
    uv_timer_t retry_timer; /* earliest backoff deadline of waiting transfers */
    CURLM *multi;
    CURL *idle[IDLE_EASY_MAX];
    int nidle;
    xfer *active; /* doubly linked: in curl or waiting to retry */
    size_t pending;
    uint64_t rng;
};

struct xfer {
    uw_http *h;
    const uw_http_request *req;
    uw_http_response *resp;
    uw_http_done_fn done;
    void *ctx;
    CURL *easy; /* NULL while waiting for a retry */
    struct curl_slist *slist;
    uw_http_headers prep; /* headers added by req->prepare for this attempt */
    size_t upload_off;
    bool streaming; /* current response goes to req->sink */
    bool sink_failed;
    uw_err sink_err;
    char reason[128];  /* status line reason phrase */
    uint64_t retry_at; /* uv_now() deadline while waiting for a retry */
    bool waiting;
    char errbuf[CURL_ERROR_SIZE];
    xfer *prev, *next;
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    uw_http *h;
} sock_ctx;

static uint64_t rng_next(uw_http *h)
{
    /* xorshift64*: jitter only, no need for quality or thread safety */
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void check_done(uw_http *h);
static void start_attempt(xfer *x);
static void retry_fire(uv_timer_t *t);

static void sock_close_cb(uv_handle_t *hd)
{
    free(hd->data);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    sock_ctx *c = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    uw_http *h = c->h;
    int running;
    curl_multi_socket_action(h->multi, c->fd, flags, &running);
    check_done(h);
}

static int socket_cb(CURL *e, curl_socket_t s, int action, void *userp, void *socketp)
{
    (void)e;
    uw_http *h = userp;
    sock_ctx *c = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (c) {
            uv_poll_stop(&c->poll);
            uv_close((uv_handle_t *)&c->poll, sock_close_cb);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (!c) {
        c = uw_calloc(1, sizeof *c);
        c->fd = s;
        c->h = h;
        if (uv_poll_init_socket(&h->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->poll.data = c;
        curl_multi_assign(h->multi, s, c);
    }
    int ev = 0;
    if (action & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, poll_cb);
    return 0;
}

static void curl_timer_fire(uv_timer_t *t)
{
    uw_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    uw_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->curl_timer);
    else
        uv_timer_start(&h->curl_timer, curl_timer_fire, (uint64_t)timeout_ms, 0);
    return 0;
}

uw_http *uw_http_new(const uw_http_opts *opts, uw_err *err)
{
    if (uw_curl_init(err) < 0)
        return NULL;
    if (opts->ca_file && access(opts->ca_file, R_OK) != 0) {
        uw_fail(err, UW_E_OPTION, "CA file '%s' is not readable", opts->ca_file);
        return NULL;
    }
    uw_http *h = uw_calloc(1, sizeof *h);
    h->service = uw_strdup(opts->service ? opts->service : "HTTP");
    h->verify_tls = opts->verify_tls;
    h->ca_file = opts->ca_file ? uw_strdup(opts->ca_file) : NULL;
    h->timeout_sec = opts->timeout_sec > 0 ? opts->timeout_sec : 60;
    h->retry_max = opts->retry_max >= 0 ? opts->retry_max : 4;
    h->parse_error = opts->parse_error;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
             (uint64_t)(uintptr_t)h;
    if (!h->rng)
        h->rng = 0x9E3779B97F4A7C15ULL;
    if (uv_loop_init(&h->loop) != 0) {
        free(h->service);
        free(h->ca_file);
        free(h);
        uw_fail(err, UW_E_INTERNAL, "unable to initialise the event loop");
        return NULL;
    }
    uv_timer_init(&h->loop, &h->curl_timer);
    h->curl_timer.data = h;
    uv_timer_init(&h->loop, &h->retry_timer);
    h->retry_timer.data = h;
    h->multi = curl_multi_init();
    if (!h->multi) {
        uw_http_free(h);
        uw_fail(err, UW_E_INTERNAL, "unable to initialise libcurl");
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    return h;
}

static void xfer_unlink(xfer *x)
{
    uw_http *h = x->h;
    if (x->prev)
        x->prev->next = x->next;
    else
        h->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Detach the easy handle of the current attempt (keeps it for reuse). */
static void xfer_release_easy(xfer *x)
{
    uw_http *h = x->h;
    if (x->easy) {
        curl_multi_remove_handle(h->multi, x->easy);
        if (h->nidle < IDLE_EASY_MAX)
            h->idle[h->nidle++] = x->easy;
        else
            curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    uw_http_headers_reset(&x->prep);
}

static void xfer_free(xfer *x)
{
    xfer_release_easy(x);
    uw_http_headers_clear(&x->prep);
    free(x);
}

static void close_walk_cb(uv_handle_t *hd, void *arg)
{
    (void)arg;
    if (!uv_is_closing(hd)) {
        /* Leftover socket polls own their sock_ctx; our timers are embedded. */
        uv_close(hd, hd->type == UV_POLL ? sock_close_cb : NULL);
    }
}

void uw_http_free(uw_http *h)
{
    if (!h)
        return;
    while (h->active) {
        xfer *x = h->active;
        xfer_unlink(x);
        xfer_free(x);
    }
    h->pending = 0;
    for (int i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    h->nidle = 0;
    if (h->multi)
        curl_multi_cleanup(h->multi);
    h->multi = NULL;
    uv_walk(&h->loop, close_walk_cb, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    free(h->service);
    free(h->ca_file);
    free(h);
}

size_t uw_http_pending(const uw_http *h)
{
    return h->pending;
}

/* ------------------------------------------------------------------------ */
/* curl callbacks */

static size_t header_cb(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n, l = len;
    while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
        l--;
    if (l >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (100 Continue, then the final one): start over. */
        uw_http_headers_reset(&x->resp->headers);
        x->resp->status = uw_http_status_line(buf, l, x->reason, sizeof x->reason);
        return len;
    }
    if (l)
        uw_http_headers_append(&x->resp->headers, buf, l);
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    long st = x->resp->status;
    if (x->req->sink && st >= 200 && st < 300) {
        x->streaming = true;
        uw_err_clear(&x->sink_err);
        if (uw_sink_write(x->req->sink, buf, len, &x->sink_err) < 0) {
            x->sink_failed = true;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        x->resp->streamed += len;
        return len;
    }
    /* A body kept in memory (an error, a listing page, a small object) is
     * bounded: a hostile or broken service must not make us buffer without
     * end. Streamed bodies are bounded by their sink instead. */
    if (x->resp->body.len + len > UW_HTTP_BODY_MAX) {
        uw_fail(&x->sink_err, UW_E_STORAGE, "response body exceeds %d MiB: refused",
                UW_HTTP_BODY_MAX >> 20);
        x->sink_failed = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    uw_buf_append(&x->resp->body, buf, len);
    return len;
}

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t room = size * n, left = x->req->body_len - x->upload_off;
    if (room > left)
        room = left;
    if (room)
        memcpy(buf, (const char *)x->req->body + x->upload_off, room);
    x->upload_off += room;
    return room;
}

static int seek_cb(void *ud, curl_off_t off, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->upload_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Sockets are close-on-exec: commands start PostgreSQL (ue-pitr restore
 * --start), and a server must not inherit our connections. */
static curl_socket_t opensocket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ------------------------------------------------------------------------ */
/* attempts */

static void what_of(const uw_http_request *req, char *out, size_t outlen)
{
    if (req->what) {
        snprintf(out, outlen, "%s", req->what);
        return;
    }
    /* Method and URL without the query: query strings may hold SAS tokens. */
    const char *u = req->url;
    size_t ul = strcspn(u, "?");
    snprintf(out, outlen, "%s %.*s", req->method, (int)(ul > 400 ? 400 : ul), u);
}

/* Finish a transfer: run the callback and free it. */
static void xfer_complete(xfer *x, int rc, const uw_err *e)
{
    uw_http *h = x->h;
    xfer_unlink(x);
    xfer_release_easy(x);
    h->pending--;
    uw_http_done_fn done = x->done;
    void *ctx = x->ctx;
    const uw_http_request *req = x->req;
    uw_http_response *resp = x->resp;
    xfer_free(x);
    if (done)
        done(ctx, req, resp, rc, e);
}

static void arm_retry_timer(uw_http *h)
{
    uint64_t earliest = UINT64_MAX;
    for (xfer *x = h->active; x; x = x->next)
        if (x->waiting && x->retry_at < earliest)
            earliest = x->retry_at;
    if (earliest == UINT64_MAX) {
        uv_timer_stop(&h->retry_timer);
        return;
    }
    uint64_t now = uv_now(&h->loop);
    uv_timer_start(&h->retry_timer, retry_fire, earliest > now ? earliest - now : 0, 0);
}

static void retry_fire(uv_timer_t *t)
{
    uw_http *h = t->data;
    uint64_t now = uv_now(&h->loop);
    /* Start every transfer that is due, one at a time from the head of the
     * list: starting may complete (and free) a transfer and run its callback,
     * which may submit others. */
    for (;;) {
        xfer *due = NULL;
        for (xfer *x = h->active; x; x = x->next)
            if (x->waiting && x->retry_at <= now) {
                due = x;
                break;
            }
        if (!due)
            break;
        due->waiting = false;
        start_attempt(due);
    }
    arm_retry_timer(h);
}

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* Decide what an ended attempt means: 0 success, -1 failure with *retry set. */
static int classify(xfer *x, CURLcode cc, uw_err *e, bool *retry, long *retry_after_ms)
{
    uw_http *h = x->h;
    uw_http_response *resp = x->resp;
    char what[512];
    what_of(x->req, what, sizeof what);
    *retry = false;
    *retry_after_ms = -1;
    long st = resp->status;

    if (x->sink_failed) {
        /* The destination refused the bytes (corrupt object, disk full...): its
         * own error, never retried here. */
        *e = x->sink_err;
        return -1;
    }
    if (cc != CURLE_OK) {
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_ISSUER_ERROR ||
            cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
            /* Configuration, not weather: retrying cannot help. */
            uw_fail(e, UW_E_STORAGE_DENIED, "%s: %s TLS verification failed: %s", what, h->service,
                    detail);
            one_line(e->msg);
            return -1;
        }
        if (x->streaming && resp->streamed > 0) {
            uw_fail(e, UW_E_STORAGE, "%s: transfer interrupted after %llu bytes: %s", what,
                    (unsigned long long)resp->streamed, detail);
            one_line(e->msg);
            return -1;
        }
        uw_fail(e, UW_E_STORAGE, "%s: %s", what, detail);
        one_line(e->msg);
        *retry = true;
        return -1;
    }
    if (st >= 200 && st < 300)
        return 0;

    /* An error response: the service's code and message, as its driver reads them. */
    uw_http_service_error se = {NULL, NULL, false};
    if (h->parse_error)
        h->parse_error(resp, &se);
    char *code = se.code, *msg = se.message;
    if (msg) {
        one_line(msg);
        size_t ml = strlen(msg);
        while (ml && (msg[ml - 1] == '\r' || msg[ml - 1] == ' '))
            msg[--ml] = '\0';
    }
    free(resp->error_code);
    resp->error_code = code;
    if (st == 404 && (x->req->flags & UW_HTTP_404_OK)) {
        free(msg);
        return 0;
    }

    uw_code kind;
    if (st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504 || se.retry) {
        kind = UW_E_STORAGE;
        *retry = true;
        const char *ra = uw_http_response_header(resp, "Retry-After");
        if (ra)
            *retry_after_ms = uw_http_retry_after_ms(ra);
    } else if (st == 404) {
        kind = UW_E_NOT_FOUND;
    } else if ((st >= 300 && st < 500) || st == 501 || st == 505) {
        /* refused, or a redirect (S3: bucket in another region) we do not
         * follow, or not implemented: retrying cannot help */
        kind = UW_E_STORAGE_DENIED;
    } else {
        kind = UW_E_STORAGE; /* other 5xx: not retried here, callers may */
    }
    uw_fail(e, kind, "%s: %s HTTP %ld%s%s%s%s", what, h->service, st,
            code ? " " : (x->reason[0] ? " " : ""), code ? code : x->reason, msg ? ": " : "",
            msg ? msg : "");
    one_line(e->msg);
    free(msg);
    return -1;
}

static void attempt_ended(xfer *x, CURLcode cc)
{
    uw_http *h = x->h;
    uw_err e;
    uw_err_clear(&e);
    bool retry;
    long ra_ms;
    int rc = classify(x, cc, &e, &retry, &ra_ms);
    if (x->easy && uw_log_enabled(UW_LOG_DEBUG)) {
        /* Which requests open connections (and pay a TLS handshake), for
         * whoever counts them: a reused connection logs nothing. */
        long conns = 0;
        char what[512];
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
        if (conns > 0) {
            what_of(x->req, what, sizeof what);
            uw_log(UW_LOG_DEBUG, "%s: %s: new connection (client %p)", h->service, what, (void *)h);
        }
    }
    xfer_release_easy(x);
    if (rc == 0) {
        xfer_complete(x, 0, &e);
        return;
    }
    int max = (x->req->flags & UW_HTTP_NO_RETRY) ? 0 : h->retry_max;
    if (!retry || x->resp->attempts > max) {
        /* Retried with backoff here already: callers must not multiply it. */
        e.retried = retry && max > 0;
        if (x->resp->attempts > 1 && strlen(e.msg) + 24 < sizeof e.msg)
            snprintf(e.msg + strlen(e.msg), sizeof e.msg - strlen(e.msg), " (after %d attempts)",
                     x->resp->attempts);
        xfer_complete(x, -1, &e);
        return;
    }
    /* Exponential backoff with jitter in [base/2, base]. */
    int shift = x->resp->attempts - 1 < 16 ? x->resp->attempts - 1 : 16;
    uint64_t base = (uint64_t)BACKOFF_BASE_MS << shift;
    if (base > BACKOFF_CAP_MS)
        base = BACKOFF_CAP_MS;
    uint64_t ms = base / 2 + rng_next(h) % (base / 2 + 1);
    if (ra_ms >= 0) {
        uint64_t cap = (uint64_t)h->timeout_sec * 1000;
        uint64_t want = (uint64_t)ra_ms > cap ? cap : (uint64_t)ra_ms;
        if (want > ms)
            ms = want;
    }
    uw_log((x->req->flags & UW_HTTP_QUIET) ? UW_LOG_DEBUG : UW_LOG_WARN,
           "%s; retrying in %llu ms (attempt %d of %d)", e.msg, (unsigned long long)ms,
           x->resp->attempts + 1, max + 1);
    x->waiting = true;
    x->retry_at = uv_now(&h->loop) + ms;
    arm_retry_timer(h);
}

static void check_done(uw_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode cc = m->data.result;
        xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            attempt_ended(x, cc);
    }
}

static int set_easy(xfer *x, uw_err *e)
{
    uw_http *h = x->h;
    const uw_http_request *req = x->req;
    CURL *c = x->easy;
    x->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->timeout_sec);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->timeout_sec);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->verify_tls ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    /* TLS sessions (and DNS answers) of the whole process: a new connection
     * resumes a session any client made (curl.h says why that is safe). Set
     * on every attempt: curl_easy_reset() shrinks the handle's view of the
     * session cache, attaching again restores it. */
    CURLSH *share = uw_curl_share();
    if (share)
        curl_easy_setopt(c, CURLOPT_SHARE, share);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);

    const char *m = req->method;
    bool has_body = req->body_len > 0;
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(m, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        if (has_body) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }
    if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0 || has_body) {
        x->upload_off = 0;
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
    }

    /* Headers: the caller's, then prepare()'s for this attempt. */
    uw_http_headers_reset(&x->prep);
    if (req->prepare && req->prepare(req->prepare_ctx, req, &x->prep, e) < 0)
        return -1;
    struct curl_slist *sl = NULL;
    bool have_ct = false;
    const uw_http_headers *lists[2] = {&req->headers, &x->prep};
    for (int li = 0; li < 2; li++)
        for (size_t i = 0; i < lists[li]->n; i++) {
            const char *l = lists[li]->v[i];
            if (strncasecmp(l, "Content-Type:", 13) == 0)
                have_ct = true;
            sl = curl_slist_append(sl, l);
        }
    /* No 100-continue round trip, and no form content type curl would invent for
     * POST (signed requests must send exactly what was signed). */
    sl = curl_slist_append(sl, "Expect:");
    if (!have_ct)
        sl = curl_slist_append(sl, "Content-Type:");
    x->slist = sl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    return 0;
}

static void start_attempt(xfer *x)
{
    uw_http *h = x->h;
    uw_http_response *resp = x->resp;
    resp->attempts++;
    resp->status = 0;
    resp->streamed = 0;
    resp->body.len = 0;
    uw_http_headers_reset(&resp->headers);
    free(resp->error_code);
    resp->error_code = NULL;
    x->streaming = false;
    x->sink_failed = false;
    x->reason[0] = '\0';

    x->easy = h->nidle ? h->idle[--h->nidle] : curl_easy_init();
    uw_err e;
    uw_err_clear(&e);
    if (!x->easy) {
        uw_fail(&e, UW_E_INTERNAL, "unable to create a libcurl handle");
        xfer_complete(x, -1, &e);
        return;
    }
    curl_easy_reset(x->easy);
    if (set_easy(x, &e) < 0) {
        xfer_complete(x, -1, &e);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(h->multi, x->easy);
    if (mc != CURLM_OK) {
        /* Not added: do not let xfer_release_easy remove it. */
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        uw_fail(&e, UW_E_INTERNAL, "unable to start a transfer: %s", curl_multi_strerror(mc));
        xfer_complete(x, -1, &e);
    }
}

void uw_http_submit(uw_http *h, const uw_http_request *req, uw_http_response *resp,
                    uw_http_done_fn done, void *ctx)
{
    uw_http_response_clear(resp);
    xfer *x = uw_calloc(1, sizeof *x);
    x->h = h;
    x->req = req;
    x->resp = resp;
    x->done = done;
    x->ctx = ctx;
    x->next = h->active;
    if (h->active)
        h->active->prev = x;
    h->active = x;
    h->pending++;
    /* Start through the retry timer so callbacks never run inside submit(). */
    x->waiting = true;
    x->retry_at = uv_now(&h->loop);
    arm_retry_timer(h);
}

size_t uw_http_run_once(uw_http *h, bool wait)
{
    uv_run(&h->loop, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    return h->pending;
}

int uw_http_run(uw_http *h, uw_err *err)
{
    while (h->pending) {
        if (uv_run(&h->loop, UV_RUN_ONCE) == 0 && h->pending) {
            /* Nothing left to wait for while transfers are pending: let curl
             * look at its state once more, then give up rather than spin. */
            int running;
            curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            check_done(h);
            if (h->pending && !uv_loop_alive(&h->loop))
                return uw_fail(err, UW_E_INTERNAL, "%s: HTTP event loop stalled", h->service);
        }
    }
    return 0;
}

typedef struct {
    bool done;
    int rc;
    uw_err err;
} sync_state;

static void sync_done(void *ctx, const uw_http_request *req, uw_http_response *resp, int rc,
                      const uw_err *e)
{
    (void)req;
    (void)resp;
    sync_state *s = ctx;
    s->done = true;
    s->rc = rc;
    if (e)
        s->err = *e;
}

int uw_http_exec(uw_http *h, const uw_http_request *req, uw_http_response *resp, uw_err *err)
{
    sync_state s = {false, 0, {0, "", 0}};
    uw_http_submit(h, req, resp, sync_done, &s);
    while (!s.done) {
        if (uv_run(&h->loop, UV_RUN_ONCE) == 0 && !s.done) {
            int running;
            curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            check_done(h);
            if (!s.done && !uv_loop_alive(&h->loop))
                return uw_fail(err, UW_E_INTERNAL, "%s: HTTP event loop stalled", h->service);
        }
    }
    if (s.rc < 0 && err)
        *err = s.err;
    return s.rc;
}
