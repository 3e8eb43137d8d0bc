/* Header lists and the request/response structs of http.h: plain data, no
 * libcurl. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/http.h"

static void headers_push(uw_http_headers *h, char *line)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = uw_realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = line;
}

void uw_http_headers_add(uw_http_headers *h, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *val = NULL;
    int n = vasprintf(&val, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fputs("ue-wal: FATAL: out of memory\n", stderr);
        abort();
    }
    headers_push(h, uw_sprintf("%s: %s", name, val));
    free(val);
}

void uw_http_headers_append(uw_http_headers *h, const char *line, size_t len)
{
    headers_push(h, uw_strndup(line, len));
}

const char *uw_http_headers_get(const uw_http_headers *h, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n; i++) {
        const char *l = h->v[i];
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

void uw_http_headers_clear(uw_http_headers *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i]);
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void uw_http_headers_reset(uw_http_headers *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i]);
    h->n = 0;
}

void uw_http_request_clear(uw_http_request *req)
{
    uw_http_headers_clear(&req->headers);
    memset(req, 0, sizeof *req);
}

void uw_http_response_clear(uw_http_response *resp)
{
    uw_http_headers_clear(&resp->headers);
    uw_buf_free(&resp->body);
    free(resp->error_code);
    memset(resp, 0, sizeof *resp);
}

const char *uw_http_response_header(const uw_http_response *resp, const char *name)
{
    return uw_http_headers_get(&resp->headers, name);
}

long uw_http_status_line(const char *buf, size_t l, char *reason, size_t reason_len)
{
    const char *p = memchr(buf, ' ', l);
    long st = 0;
    reason[0] = '\0';
    if (p) {
        p++;
        /* Saturate: a status of more digits than any real one must not
         * overflow (it is no 2xx/4xx/5xx status either way). */
        for (; p < buf + l && isdigit((unsigned char)*p); p++)
            if (st < 100000)
                st = st * 10 + (*p - '0');
        while (p < buf + l && *p == ' ')
            p++;
        size_t rl = (size_t)(buf + l - p);
        if (rl >= reason_len)
            rl = reason_len - 1;
        memcpy(reason, p, rl);
        reason[rl] = '\0';
    }
    return st;
}

/* An HTTP date is not honoured: the backoff applies. */
long uw_http_retry_after_ms(const char *ra)
{
    if (!isdigit((unsigned char)*ra))
        return -1;
    /* The wait is capped at the storage timeout (at most an hour) anyway:
     * clamp before scaling so that a huge value cannot overflow. */
    long s = strtol(ra, NULL, 10);
    return (s > 86400 ? 86400 : s) * 1000;
}
