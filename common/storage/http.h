/* HTTP client shared by the object-store drivers (S3, Azure).
 *
 * One uw_http per storage: it owns a libcurl multi handle driven by a private
 * libuv loop (uv_poll per socket through CURLMOPT_SOCKETFUNCTION, one uv_timer
 * through CURLMOPT_TIMERFUNCTION). Connections (and TLS sessions) are cached in
 * the multi handle and reused across requests; finished easy handles are kept
 * and reused too. Everything runs on the calling thread: a uw_http must only be
 * used by one thread at a time (give each worker thread its own storage).
 *
 * Two ways to run a request:
 *   - synchronous: uw_http_exec() submits one request and runs the loop until it
 *     has completed (including retries);
 *   - asynchronous: uw_http_submit() any number of requests, each with a
 *     completion callback, then uw_http_run() until all have completed (or
 *     uw_http_run_once() to make progress without blocking). Callbacks run from
 *     inside uw_http_run*() (or uw_http_exec()) and may submit further
 *     requests, but must not call uw_http_exec(), uw_http_run*() or
 *     uw_http_free() on the same client (the event loop is not reentrant).
 *
 * Retries (both APIs): a request is attempted up to 1 + opts.retry_max times
 * when the attempt fails with a timeout, a connection/transfer error, HTTP 408,
 * 429, 500, 502, 503 or 504, or a service error code that the driver's
 * opts.parse_error marks as retryable (S3 "SlowDown", "RequestTimeout"...:
 * storage_s3.c; Azure "ServerBusy", "OperationTimedOut"...: storage_azure.c;
 * this layer knows no service's codes). Waits grow exponentially with jitter
 * (a random time between half and all of 250 ms doubled per attempt, capped at
 * 10 s); a Retry-After header (seconds) is honoured, capped at the storage
 * timeout. Other 4xx responses (authentication, permissions, bad request) are
 * never retried, nor are TLS certificate verification failures.
 * The prepare() callback runs again before every attempt so signatures carry a
 * fresh date.
 *
 * Failures are reported as ONE line in err (never containing Authorization
 * headers or secrets), built from the service's error code and message as
 * opts.parse_error reads them (e.g. <Code>/<Message> of an XML error body, or
 * an error-code header when there is no body, as for HEAD); without a parser,
 * or when it finds no code, the status line's reason phrase stands in:
 *   "<what>: S3 HTTP 403 SignatureDoesNotMatch: The request signature we ..."
 *   "<what>: Azure HTTP 503 ServerBusy: ... (after 5 attempts)"
 *   "<what>: Failed to connect to 127.0.0.1 port 9000 ...: Couldn't connect to server"
 * (<what> is req->what, or the method and the URL without its query string)
 * with these codes:
 *   UW_E_NOT_FOUND       404 (the caller decides whether that is an error)
 *   UW_E_STORAGE_DENIED  any other 4xx (401, 403, 400, 409, 412, 405...), 3xx
 *                        (redirects are not followed: e.g. S3's
 *                        PermanentRedirect for a bucket in another region),
 *                        501/505, and a server certificate that fails
 *                        verification
 *   UW_E_STORAGE         5xx/throttling/network/timeout after the last retry,
 *                        and a streamed body interrupted after bytes already
 *                        reached the sink (never retried here: the caller must
 *                        restart with a fresh sink, e.g. via uw_retry_wait)
 *   the sink's own code  when writing to req->sink failed (e.g. UW_E_CORRUPT)
 * The HTTP status is always left in resp->status (0 when no response came).
 */
#ifndef UW_HTTP_H
#define UW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/sink.h"

/* Most bytes of a response body kept in memory (errors, listings): larger
 * ones fail the request (UW_E_STORAGE). Listing pages are ~1,000 entries. */
#define UW_HTTP_BODY_MAX (16 << 20)

typedef struct uw_http uw_http;
typedef struct uw_http_response uw_http_response;

/* ---- header lists ----------------------------------------------------------
 * An ordered list of "Name: value" lines. Used both for request headers (passed
 * to libcurl verbatim) and for response headers (as received, trimmed of CRLF;
 * only those of the final response are kept). */
typedef struct {
    char **v;
    size_t n, cap;
} uw_http_headers;

/* Append "name: value" (value formatted printf-style). */
void uw_http_headers_add(uw_http_headers *h, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Value of the first header called `name` (case-insensitive), NULL if absent.
 * Leading/trailing blanks of the value are skipped/trimmed. */
const char *uw_http_headers_get(const uw_http_headers *h, const char *name);
void uw_http_headers_clear(uw_http_headers *h); /* empty; keeps nothing allocated */
/* Append one raw "Name: value" line of len bytes (copied). */
void uw_http_headers_append(uw_http_headers *h, const char *line, size_t len);
/* Empty, keeping the array for reuse (uw_http_headers_clear frees it too). */
void uw_http_headers_reset(uw_http_headers *h);

/* ---- service errors --------------------------------------------------------
 * What a service says in an error response (any status outside 2xx): its error
 * code and message (malloc'd, or NULL when it gave none; the HTTP layer takes
 * them over, makes the message one line and frees both), and whether the code
 * asks for a retry whatever the status (throttling, server-side timeouts). Each
 * driver knows its own service's conventions and passes its parser in
 * uw_http_opts. */
typedef struct {
    char *code;
    char *message;
    bool retry;
} uw_http_service_error;
typedef void (*uw_http_error_fn)(const uw_http_response *resp, uw_http_service_error *out);

/* ---- client ---------------------------------------------------------------- */
typedef struct {
    const char *service;          /* for messages: "S3", "Azure" (copied) */
    bool verify_tls;              /* CURLOPT_SSL_VERIFYPEER + VERIFYHOST; true unless told */
    const char *ca_file;          /* CA bundle (PEM) or NULL for the system store (copied) */
    long timeout_sec;             /* connect timeout, and abort a transfer when no byte moved
                              for this long (an idle timeout, not a total one: big
                              objects may take longer). 0 = 60 s. */
    int retry_max;                /* extra attempts after the first; -1 = default (4) */
    uw_http_error_fn parse_error; /* the service's error responses; NULL: status only */
} uw_http_opts;

/* Create a client. Fails (UW_E_INTERNAL/UW_E_OPTION) only if libcurl/libuv cannot
 * be initialised or ca_file is unreadable. */
uw_http *uw_http_new(const uw_http_opts *opts, uw_err *err);
/* Abort whatever is still in flight (no callbacks are run) and free everything. */
void uw_http_free(uw_http *h);

/* ---- requests -------------------------------------------------------------- */

/* Flags for uw_http_request.flags. */
#define UW_HTTP_NO_RETRY 0x01 /* a single attempt (e.g. non-idempotent POSTs) */
#define UW_HTTP_404_OK                                                                             \
    0x02                   /* 404 is a success: rc 0, resp->status 404 and
                                   resp->error_code set when known (HEAD/DELETE) */
#define UW_HTTP_QUIET 0x04 /* do not log retries at WARN level (only DEBUG) */

typedef struct uw_http_request uw_http_request;

/* Called before every attempt, including the first, with `out` emptied: add the
 * per-attempt headers (date, Authorization...). Headers in req->headers are sent
 * as well (first). Return -1 with err filled to abandon the request. */
typedef int (*uw_http_prepare_fn)(void *ctx, const uw_http_request *req, uw_http_headers *out,
                                  uw_err *err);

struct uw_http_request {
    const char *method;      /* "GET", "PUT", "HEAD", "DELETE", "POST" */
    const char *url;         /* complete, already percent-encoded */
    uw_http_headers headers; /* fixed request headers; owned by the caller
                                   (uw_http_request_clear frees them) */
    const void *body;        /* request body (PUT/POST), not copied: must stay valid
                                   until completion; NULL/0 = empty body */
    size_t body_len;
    /* GET: when set, a 2xx body is streamed into this sink (never finished by the
     * HTTP layer) instead of resp->body. Error bodies always go to resp->body. */
    uw_sink *sink;
    uw_http_prepare_fn prepare; /* optional */
    void *prepare_ctx;
    unsigned flags;   /* UW_HTTP_* */
    const char *what; /* message prefix, e.g. "GET 'archive/x'"; NULL = method+path */
};

struct uw_http_response {
    long status;             /* HTTP status of the last attempt; 0 = no response */
    uw_http_headers headers; /* response headers of the last attempt */
    uw_buf body;             /* response body when not streamed (errors, XML...) */
    uint64_t streamed;       /* bytes delivered to req->sink */
    int attempts;            /* attempts made */
    char *error_code;        /* service error code ("NoSuchKey", "AuthenticationFailed")
                                or NULL */
};

/* Free what a request/response holds (not the structs themselves) and zero them. */
void uw_http_request_clear(uw_http_request *req);
void uw_http_response_clear(uw_http_response *resp);
/* Convenience: uw_http_headers_get(&resp->headers, name). */
const char *uw_http_response_header(const uw_http_response *resp, const char *name);

/* Synchronous: run `req` to completion (with retries). resp must be zeroed or a
 * previously used response: it is reset first, and must be cleared by the
 * caller afterwards (uw_http_response_clear). Returns 0 on 2xx (or 404 with
 * UW_HTTP_404_OK), else -1 with err filled as described above. */
int uw_http_exec(uw_http *h, const uw_http_request *req, uw_http_response *resp, uw_err *err);

/* Asynchronous completion: rc and err as uw_http_exec() would return them. err is
 * only valid during the call. */
typedef void (*uw_http_done_fn)(void *ctx, const uw_http_request *req, uw_http_response *resp,
                                int rc, const uw_err *err);

/* Queue `req`; req, its body, its sink and resp must stay valid until `done`
 * has been called (done may free them). resp is reset first (see
 * uw_http_exec). Never blocks and never runs `done` itself: transfers start
 * and complete inside uw_http_run*() (or a uw_http_exec on the same client). */
void uw_http_submit(uw_http *h, const uw_http_request *req, uw_http_response *resp,
                    uw_http_done_fn done, void *ctx);
/* Run the loop until no request is in flight (all callbacks have run). Returns 0;
 * -1 only on an internal loop failure. */
int uw_http_run(uw_http *h, uw_err *err);
/* Make progress without blocking (wait=false) or wait for at least one event
 * (wait=true). Returns the number of requests still in flight. */
size_t uw_http_run_once(uw_http *h, bool wait);
/* Requests submitted and not yet completed. */
size_t uw_http_pending(const uw_http *h);

/* Response parsing (exposed for the fuzz targets, tests/fuzz): the status of
 * a status line "HTTP/1.1 503 Slow Down" of l bytes (no CRLF) with its reason
 * phrase copied into reason (truncated, always terminated); a Retry-After
 * value as milliseconds, -1 when it is not a number of seconds. */
long uw_http_status_line(const char *buf, size_t l, char *reason, size_t reason_len);
long uw_http_retry_after_ms(const char *value);

#endif
