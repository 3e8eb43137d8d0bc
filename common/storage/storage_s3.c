/* Amazon S3 (and compatible) driver: repoN-type = s3.
 *
 * Objects are named <repoN-path prefix><path> in one bucket.
 *   stat    HeadObject
 *   list    ListObjectsV2 with prefix + delimiter "/", following the
 *           continuation token
 *   read    GetObject, streamed into the destination sink
 *   write   buffered up to repoN-s3-part-size: a smaller object is one
 *           PutObject on finish; a larger one is CreateMultipartUpload,
 *           UploadPart per full buffer (one part in memory at a time) and
 *           CompleteMultipartUpload on finish. Nothing is visible before
 *           finish; a sink freed unfinished aborts the upload
 *           (AbortMultipartUpload; a failure there is only a warning, the
 *           bucket's lifecycle rules clean up). Every upload is verified:
 *           the PutObject ETag against the body's MD5 (when the server returns
 *           a plain MD5 ETag), then a HeadObject for the size (and the ETag).
 *   remove  DeleteObject; remove_tree: ListObjectsV2 + DeleteObjects (1000
 *           keys per request).
 * Requests are signed with Signature V4 (sigv4.h) per attempt; payloads are
 * signed (x-amz-content-sha256) and uploads carry Content-MD5.
 *
 * A uw_http client is not shared between threads: each operation checks one
 * out of a small mutex-protected free list (normally the same one, so its
 * connections are reused) and returns it afterwards. */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/xml.h"
#include "storage/http.h"
#include "core/log.h"
#include "storage/sigv4.h"
#include "storage/storage.h"
#include "storage/storage_s3.h"

#define S3_IDLE_MAX 16
#define S3_DELETE_BATCH 1000
#define S3_MAX_PARTS 10000

typedef struct {
    char *bucket;
    char *region;
    char *key;
    char *secret;
    char *token;
    char *base_url; /* scheme://host[:port] */
    char *host_hdr; /* Host header value, exactly what is signed */
    char *root;     /* encoded URL path of the bucket: "/bucket" or "" (host style) */
    char *prefix;   /* key prefix: "" or "some/path/" */
    size_t part_size;
    uw_http_opts opts;
    pthread_mutex_t mu;
    uw_http *idle[S3_IDLE_MAX];
    int nidle;
} s3_impl;

/* ------------------------------------------------------------ clients -- */

static uw_http *s3_client(s3_impl *s3, uw_err *err)
{
    uw_http *h = NULL;
    pthread_mutex_lock(&s3->mu);
    if (s3->nidle)
        h = s3->idle[--s3->nidle];
    pthread_mutex_unlock(&s3->mu);
    return h ? h : uw_http_new(&s3->opts, err);
}

static void s3_release(s3_impl *s3, uw_http *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&s3->mu);
    if (s3->nidle < S3_IDLE_MAX) {
        s3->idle[s3->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s3->mu);
    uw_http_free(h);
}

/* ------------------------------------------------------------- errors -- */

/* Codes that ask for a retry whatever the status: RequestTimeout comes with
 * HTTP 400, Throttling* from S3-compatible servers. */
static bool s3_retryable(const char *code)
{
    static const char *const codes[] = {"SlowDown",      "RequestTimeout",
                                        "InternalError", "ServiceUnavailable",
                                        "Throttling",    "ThrottlingException"};
    for (size_t i = 0; code && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

void uw_s3_parse_error(const uw_http_response *resp, uw_http_service_error *out)
{
    const char *b = (const char *)resp->body.data;
    const char *end = b ? b + resp->body.len : NULL;
    out->code = b ? uw_xml_get(b, end, "Code", NULL) : NULL;
    out->message = b ? uw_xml_get(b, end, "Message", NULL) : NULL;
    const char *hc = uw_http_response_header(resp, "x-amz-error-code");
    const char *hm = uw_http_response_header(resp, "x-amz-error-message");
    if (!out->code && hc)
        out->code = uw_strdup(hc);
    if (!out->message && hm)
        out->message = uw_strdup(hm);
    out->retry = s3_retryable(out->code);
}

/* ----------------------------------------------------------- requests -- */

typedef struct {
    s3_impl *s3;
    uw_http_request req;
    char *url;
    char *path;  /* encoded URL path, signed verbatim */
    char *query; /* wire query or NULL */
    char payload_hash[65];
    char what[512];
} s3_req;

/* Per attempt: a fresh x-amz-date and the signature over every header. */
static int s3_prepare(void *ctx, const uw_http_request *req, uw_http_headers *out, uw_err *err)
{
    (void)err;
    s3_req *r = ctx;
    s3_impl *s3 = r->s3;
    char date[32];
    uw_date_iso8601(date);
    uw_http_headers_add(out, "Host", "%s", s3->host_hdr);
    uw_http_headers_add(out, "x-amz-content-sha256", "%s", r->payload_hash);
    uw_http_headers_add(out, "x-amz-date", "%s", date);
    if (s3->token)
        uw_http_headers_add(out, "x-amz-security-token", "%s", s3->token);
    size_t n = req->headers.n + out->n;
    const char **lines = uw_calloc(n, sizeof *lines);
    size_t m = 0;
    for (size_t i = 0; i < req->headers.n; i++)
        lines[m++] = req->headers.v[i];
    for (size_t i = 0; i < out->n; i++)
        lines[m++] = out->v[i];
    uw_sigv4_input in = {req->method, r->path,    r->query, lines,   m,         r->payload_hash,
                         date,        s3->region, "s3",     s3->key, s3->secret};
    uw_sigv4_result res;
    uw_sigv4_sign(&in, &res);
    uw_http_headers_add(out, "Authorization", "%s", res.authorization);
    OPENSSL_cleanse(res.authorization, strlen(res.authorization));
    uw_sigv4_result_free(&res);
    free(lines);
    return 0;
}

/* key == NULL: a bucket request. The bucket path has no trailing slash
 * ("/bucket?list-type=2"): that is what S3 documents, and some servers
 * (s3rver) reject the signature of "/bucket/?...". */
static void s3_req_init(s3_req *r, s3_impl *s3, const char *method, const char *key,
                        const char *query, const void *body, size_t len, const char *what)
{
    memset(r, 0, sizeof *r);
    r->s3 = s3;
    if (key) {
        char *enc = uw_uri_encode(key, strlen(key), true);
        r->path = uw_sprintf("%s/%s", s3->root, enc);
        free(enc);
    } else {
        r->path = uw_strdup(*s3->root ? s3->root : "/");
    }
    r->query = query && *query ? uw_strdup(query) : NULL;
    r->url = uw_sprintf("%s%s%s%s", s3->base_url, r->path, r->query ? "?" : "",
                        r->query ? r->query : "");
    if (len) {
        uint8_t d[32];
        uw_sha256(body, len, d);
        uw_hex(d, 32, r->payload_hash);
    } else {
        snprintf(r->payload_hash, sizeof r->payload_hash, "%s", UW_SIGV4_EMPTY_SHA256);
    }
    snprintf(r->what, sizeof r->what, "%s", what);
    r->req.method = method;
    r->req.url = r->url;
    r->req.body = body;
    r->req.body_len = len;
    r->req.prepare = s3_prepare;
    r->req.prepare_ctx = r;
    r->req.what = r->what;
}

static void s3_req_free(s3_req *r)
{
    uw_http_request_clear(&r->req);
    free(r->url);
    free(r->path);
    free(r->query);
}

static bool is_bucket_missing(const uw_http_response *resp)
{
    return resp->status == 404 && resp->error_code && strcmp(resp->error_code, "NoSuchBucket") == 0;
}

static int s3_exec(s3_impl *s3, s3_req *r, uw_http_response *resp, uw_err *err)
{
    uw_http *h = s3_client(s3, err);
    if (!h)
        return -1;
    int rc = uw_http_exec(h, &r->req, resp, err);
    s3_release(s3, h);
    /* A missing bucket is a configuration problem, not a missing object. */
    if (is_bucket_missing(resp))
        rc = uw_fail(err, UW_E_STORAGE_DENIED,
                     "%s: bucket '%s' does not exist (HTTP 404 NoSuchBucket)", r->what, s3->bucket);
    return rc;
}

static char *full_key(const s3_impl *s3, const char *path)
{
    while (*path == '/')
        path++;
    return uw_sprintf("%s%s", s3->prefix, path);
}

/* "dir" -> "<prefix>dir/"; "" -> "<prefix>" */
static char *dir_prefix(const s3_impl *s3, const char *dir)
{
    while (*dir == '/')
        dir++;
    size_t n = strlen(dir);
    while (n && dir[n - 1] == '/')
        n--;
    return n ? uw_sprintf("%s%.*s/", s3->prefix, (int)n, dir) : uw_strdup(s3->prefix);
}

static void md5_of(const void *data, size_t len, uint8_t out[16])
{
    unsigned int n = 16;
    EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

/* "\"0123...\"" -> lower-case hex without quotes, or NULL when not a plain MD5. */
static bool etag_md5(const char *etag, char out[33])
{
    if (!etag)
        return false;
    if (*etag == '"')
        etag++;
    size_t i = 0;
    for (; i < 32; i++) {
        if (!isxdigit((unsigned char)etag[i]))
            return false;
        out[i] = (char)tolower((unsigned char)etag[i]);
    }
    out[32] = '\0';
    return etag[32] == '\0' || (etag[32] == '"' && etag[33] == '\0');
}

/* Server-side encryption with KMS or customer keys: the ETag is no MD5. */
static bool etag_opaque(const uw_http_response *resp)
{
    const char *sse = uw_http_response_header(resp, "x-amz-server-side-encryption");
    return (sse && strncmp(sse, "aws:kms", 7) == 0) ||
           uw_http_response_header(resp, "x-amz-server-side-encryption-customer-algorithm");
}

/* --------------------------------------------------------------- stat -- */

static int s3_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *key = full_key(s3, path);
    char what[600];
    snprintf(what, sizeof what, "HEAD '%s'", key);
    s3_req r;
    s3_req_init(&r, s3, "HEAD", key, NULL, NULL, 0, what);
    r.req.flags = UW_HTTP_404_OK;
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        if (resp.status == 404) {
            rc = 0;
        } else {
            rc = 1;
            if (size) {
                const char *cl = uw_http_response_header(&resp, "Content-Length");
                *size = cl ? strtoull(cl, NULL, 10) : 0;
            }
        }
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(key);
    return rc;
}

/* --------------------------------------------------------------- list -- */

typedef struct {
    char *key;
    uint64_t size;
    bool is_dir;
} list_ent;

typedef struct {
    list_ent **ents;
    size_t *n, *cap;
} list_acc;

static int list_add(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    list_acc *a = ctx;
    if (*a->n == *a->cap) {
        *a->cap = *a->cap ? *a->cap * 2 : 256;
        *a->ents = uw_realloc(*a->ents, *a->cap * sizeof **a->ents);
    }
    (*a->ents)[(*a->n)++] = (list_ent){uw_strdup(name), size, is_dir};
    return 0;
}

int uw_s3_list_parse(const char *x, size_t len, const char *what, uw_list_cb add, void *ctx,
                     char **next, uw_err *err)
{
    *next = NULL;
    const char *end = x ? x + len : NULL, *p = x, *b, *be;
    if (!x || !uw_xml_find(x, end, "ListBucketResult", &b, &be, NULL))
        return uw_fail(err, UW_E_STORAGE, "%s: unexpected response (no ListBucketResult)", what);
    int rc = 0;
    while (uw_xml_find(p, end, "Contents", &b, &be, &p)) {
        char *k = uw_xml_get(b, be, "Key", NULL);
        char *sz = uw_xml_get(b, be, "Size", NULL);
        if (k)
            add(ctx, k, false, sz ? strtoull(sz, NULL, 10) : 0);
        free(k);
        free(sz);
    }
    p = x;
    while (uw_xml_find(p, end, "CommonPrefixes", &b, &be, &p)) {
        char *k = uw_xml_get(b, be, "Prefix", NULL);
        if (k)
            add(ctx, k, true, 0);
        free(k);
    }
    char *trunc = uw_xml_get(x, end, "IsTruncated", NULL);
    if (trunc && strcmp(trunc, "true") == 0) {
        *next = uw_xml_get(x, end, "NextContinuationToken", NULL);
        if (!*next || !**next)
            rc = uw_fail(err, UW_E_STORAGE, "%s: truncated listing without a continuation token",
                         what);
    }
    free(trunc);
    return rc;
}

/* One ListObjectsV2 page: entries appended to *ents. Returns 0/-1, sets
 * *next (malloc'd) to the continuation token when truncated. */
static int list_page(s3_impl *s3, const char *prefix, bool delimit, const char *token,
                     list_ent **ents, size_t *n, size_t *cap, char **next, uw_err *err)
{
    *next = NULL;
    char *ep = uw_uri_encode(prefix, strlen(prefix), false);
    char *et = token ? uw_uri_encode(token, strlen(token), false) : NULL;
    char *query = uw_sprintf("list-type=2&prefix=%s%s%s%s", ep, delimit ? "&delimiter=%2F" : "",
                             et ? "&continuation-token=" : "", et ? et : "");
    char what[600];
    snprintf(what, sizeof what, "list '%s'", prefix);
    s3_req r;
    s3_req_init(&r, s3, "GET", NULL, query, NULL, 0, what);
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        list_acc acc = {ents, n, cap};
        rc = uw_s3_list_parse((const char *)resp.body.data, resp.body.len, what, list_add, &acc,
                              next, err);
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(query);
    free(ep);
    free(et);
    return rc;
}

static void ents_free(list_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].key);
    free(e);
}

static int s3_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *prefix = dir_prefix(s3, dir);
    size_t plen = strlen(prefix);
    char *token = NULL;
    int rc = 0;
    bool stop = false;
    do {
        list_ent *ents = NULL;
        size_t n = 0, cap = 0;
        char *next = NULL;
        rc = list_page(s3, prefix, true, token, &ents, &n, &cap, &next, err);
        free(token);
        token = next;
        /* Callbacks run with no client checked out: they may use the storage. */
        for (size_t i = 0; rc == 0 && !stop && i < n; i++) {
            const char *k = ents[i].key;
            if (strncmp(k, prefix, plen) != 0)
                continue;
            char *name = uw_strdup(k + plen);
            size_t nl = strlen(name);
            if (ents[i].is_dir)
                while (nl && name[nl - 1] == '/')
                    name[--nl] = '\0';
            /* skip "directory marker" objects and anything nested */
            if (nl && !strchr(name, '/'))
                stop = cb(ctx, name, ents[i].is_dir, ents[i].size) != 0;
            free(name);
        }
        ents_free(ents, n);
    } while (rc == 0 && !stop && token);
    free(token);
    free(prefix);
    return rc;
}

/* --------------------------------------------------------------- read -- */

static int s3_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *key = full_key(s3, path);
    char what[600];
    snprintf(what, sizeof what, "GET '%s'", key);
    s3_req r;
    s3_req_init(&r, s3, "GET", key, NULL, NULL, 0, what);
    r.req.sink = dest;
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc < 0 && err && err->code == UW_E_NOT_FOUND)
        uw_fail(err, UW_E_NOT_FOUND, "'%s' does not exist in bucket '%s'", key, s3->bucket);
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(key);
    return rc;
}

/* ------------------------------------------------------------- remove -- */

static int s3_remove(uw_storage *st, const char *path, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *key = full_key(s3, path);
    char what[600];
    snprintf(what, sizeof what, "DELETE '%s'", key);
    s3_req r;
    s3_req_init(&r, s3, "DELETE", key, NULL, NULL, 0, what);
    r.req.flags = UW_HTTP_404_OK;
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(key);
    return rc;
}

/* DeleteObjects for keys[0..n) (n <= 1000). */
static int delete_batch(s3_impl *s3, list_ent *keys, size_t n, uw_err *err)
{
    uw_buf body = {0};
    const char *head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                       "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Quiet>true</Quiet>";
    uw_buf_append(&body, head, strlen(head));
    for (size_t i = 0; i < n; i++) {
        char *e = uw_xml_escape(keys[i].key);
        uw_buf_append(&body, "<Object><Key>", 13);
        uw_buf_append(&body, e, strlen(e));
        uw_buf_append(&body, "</Key></Object>", 15);
        free(e);
    }
    uw_buf_append(&body, "</Delete>", 9);
    uint8_t md5[16];
    md5_of(body.data, body.len, md5);
    char *md5b = uw_base64_encode(md5, 16);
    char what[128];
    snprintf(what, sizeof what, "delete %zu objects", n);
    s3_req r;
    s3_req_init(&r, s3, "POST", NULL, "delete", body.data, body.len, what);
    uw_http_headers_add(&r.req.headers, "Content-MD5", "%s", md5b);
    uw_http_headers_add(&r.req.headers, "Content-Type", "application/xml");
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0 && resp.body.data) {
        /* Quiet mode: the response lists only the keys that failed. */
        const char *x = (const char *)resp.body.data, *end = x + resp.body.len, *b, *be;
        if (uw_xml_find(x, end, "Error", &b, &be, NULL)) {
            char *k = uw_xml_get(b, be, "Key", NULL);
            char *c = uw_xml_get(b, be, "Code", NULL);
            char *m = uw_xml_get(b, be, "Message", NULL);
            bool denied = c && (strcmp(c, "AccessDenied") == 0);
            rc =
                uw_fail(err, denied ? UW_E_STORAGE_DENIED : UW_E_STORAGE,
                        "%s: '%s' not deleted: %s: %s", what, k ? k : "?", c ? c : "?", m ? m : "");
            free(k);
            free(c);
            free(m);
        }
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(md5b);
    uw_buf_free(&body);
    return rc;
}

int uw_storage_s3_remove_tree(uw_storage *st, const char *dir, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *prefix = dir_prefix(s3, dir);
    if (!*prefix) {
        free(prefix);
        return uw_fail(err, UW_E_INTERNAL, "refusing to remove the whole bucket");
    }
    /* Collect first, then delete: deleting while paging could skip keys. */
    list_ent *ents = NULL;
    size_t n = 0, cap = 0;
    char *token = NULL;
    int rc;
    do {
        char *next = NULL;
        rc = list_page(s3, prefix, false, token, &ents, &n, &cap, &next, err);
        free(token);
        token = next;
    } while (rc == 0 && token);
    free(token);
    for (size_t i = 0; rc == 0 && i < n; i += S3_DELETE_BATCH)
        rc = delete_batch(s3, ents + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH, err);
    ents_free(ents, n);
    free(prefix);
    return rc;
}

/* -------------------------------------------------------------- write -- */

typedef struct {
    uw_sink base;
    s3_impl *s3;
    char *key;
    uint8_t *buf;
    size_t len, cap;
    uint64_t total;
    char *upload_id;
    char **etags; /* per part */
    int parts;
    bool done; /* object visible: nothing to abort */
} s3_wsink;

static int s3_put_single(s3_wsink *w, char **etag_out, uw_err *err)
{
    s3_impl *s3 = w->s3;
    uint8_t md5[16];
    md5_of(w->buf, w->len, md5);
    char *md5b = uw_base64_encode(md5, 16);
    char md5hex[33];
    uw_hex(md5, 16, md5hex);
    char what[600];
    snprintf(what, sizeof what, "PUT '%s'", w->key);
    s3_req r;
    s3_req_init(&r, s3, "PUT", w->key, NULL, w->buf, w->len, what);
    uw_http_headers_add(&r.req.headers, "Content-MD5", "%s", md5b);
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        const char *etag = uw_http_response_header(&resp, "ETag");
        char got[33];
        if (etag && etag_md5(etag, got) && !etag_opaque(&resp) && strcmp(got, md5hex) != 0)
            rc = uw_fail(err, UW_E_STORAGE,
                         "%s: the stored object's ETag %s is not the MD5 %s of what was sent", what,
                         got, md5hex);
        if (etag)
            *etag_out = uw_strdup(etag);
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(md5b);
    return rc;
}

static int s3_mpu_create(s3_wsink *w, uw_err *err)
{
    s3_impl *s3 = w->s3;
    char what[600];
    snprintf(what, sizeof what, "create multipart upload '%s'", w->key);
    s3_req r;
    s3_req_init(&r, s3, "POST", w->key, "uploads", NULL, 0, what);
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        const char *x = (const char *)resp.body.data;
        w->upload_id = x ? uw_xml_get(x, x + resp.body.len, "UploadId", NULL) : NULL;
        if (!w->upload_id || !*w->upload_id)
            rc = uw_fail(err, UW_E_STORAGE, "%s: no UploadId in the response", what);
        else
            uw_log(UW_LOG_DEBUG, "%s: upload id %s", what, w->upload_id);
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    return rc;
}

static int s3_mpu_part(s3_wsink *w, uw_err *err)
{
    s3_impl *s3 = w->s3;
    if (w->parts >= S3_MAX_PARTS)
        return uw_fail(err, UW_E_STORAGE, "'%s': more than %d parts: raise the s3-part-size option",
                       w->key, S3_MAX_PARTS);
    int partno = w->parts + 1;
    uint8_t md5[16];
    md5_of(w->buf, w->len, md5);
    char *md5b = uw_base64_encode(md5, 16);
    char *eid = uw_uri_encode(w->upload_id, strlen(w->upload_id), false);
    char *query = uw_sprintf("partNumber=%d&uploadId=%s", partno, eid);
    char what[600];
    snprintf(what, sizeof what, "upload part %d of '%s'", partno, w->key);
    s3_req r;
    s3_req_init(&r, s3, "PUT", w->key, query, w->buf, w->len, what);
    uw_http_headers_add(&r.req.headers, "Content-MD5", "%s", md5b);
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        const char *etag = uw_http_response_header(&resp, "ETag");
        if (!etag || !*etag) {
            rc = uw_fail(err, UW_E_STORAGE, "%s: no ETag in the response", what);
        } else {
            w->etags = uw_realloc(w->etags, (size_t)partno * sizeof *w->etags);
            w->etags[w->parts++] = uw_strdup(etag);
            uw_log(UW_LOG_DEBUG, "%s: %zu bytes, ETag %s", what, w->len, etag);
            w->len = 0;
        }
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(query);
    free(eid);
    free(md5b);
    return rc;
}

static int s3_mpu_complete(s3_wsink *w, char **etag_out, uw_err *err)
{
    s3_impl *s3 = w->s3;
    uw_buf body = {0};
    const char *head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload "
                       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    uw_buf_append(&body, head, strlen(head));
    for (int i = 0; i < w->parts; i++) {
        char *e = uw_xml_escape(w->etags[i]);
        char *part =
            uw_sprintf("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1, e);
        uw_buf_append(&body, part, strlen(part));
        free(part);
        free(e);
    }
    uw_buf_append(&body, "</CompleteMultipartUpload>", 26);
    char *eid = uw_uri_encode(w->upload_id, strlen(w->upload_id), false);
    char *query = uw_sprintf("uploadId=%s", eid);
    char what[600];
    snprintf(what, sizeof what, "complete multipart upload '%s'", w->key);
    s3_req r;
    s3_req_init(&r, s3, "POST", w->key, query, body.data, body.len, what);
    uw_http_headers_add(&r.req.headers, "Content-Type", "application/xml");
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        /* S3 may answer 200 and still fail the completion in the body. */
        const char *x = (const char *)resp.body.data, *end = x ? x + resp.body.len : NULL, *b, *be;
        if (x && uw_xml_find(x, end, "Error", &b, &be, NULL)) {
            char *c = uw_xml_get(b, be, "Code", NULL);
            char *m = uw_xml_get(b, be, "Message", NULL);
            rc = uw_fail(err, UW_E_STORAGE, "%s: %s: %s", what, c ? c : "error", m ? m : "");
            free(c);
            free(m);
        } else {
            char *etag = x ? uw_xml_get(x, end, "ETag", NULL) : NULL;
            *etag_out = etag;
        }
    } else if (resp.attempts > 1 && resp.error_code &&
               strcmp(resp.error_code, "NoSuchUpload") == 0) {
        /* An earlier attempt completed it and its answer was lost: the HEAD
         * that follows decides whether the object is complete. */
        uw_log(UW_LOG_WARN, "%s: upload already completed by an earlier attempt; verifying", what);
        rc = 0;
    }
    if (rc == 0)
        w->done = true;
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(query);
    free(eid);
    uw_buf_free(&body);
    return rc;
}

static void s3_mpu_abort(s3_wsink *w)
{
    s3_impl *s3 = w->s3;
    char *eid = uw_uri_encode(w->upload_id, strlen(w->upload_id), false);
    char *query = uw_sprintf("uploadId=%s", eid);
    char what[600];
    snprintf(what, sizeof what, "abort multipart upload '%s'", w->key);
    s3_req r;
    s3_req_init(&r, s3, "DELETE", w->key, query, NULL, 0, what);
    r.req.flags = UW_HTTP_404_OK | UW_HTTP_QUIET;
    uw_http_response resp = {0};
    uw_err e;
    uw_err_clear(&e);
    if (s3_exec(s3, &r, &resp, &e) < 0)
        uw_log(UW_LOG_WARN,
               "%s (the incomplete upload stays until the bucket's lifecycle "
               "rules remove it; it is never visible as an object)",
               e.msg);
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(query);
    free(eid);
}

/* After an upload: the object must be there with the size we sent (and the
 * ETag the upload returned). */
static int s3_verify(s3_wsink *w, const char *etag, uw_err *err)
{
    s3_impl *s3 = w->s3;
    char what[600];
    snprintf(what, sizeof what, "verify '%s'", w->key);
    s3_req r;
    s3_req_init(&r, s3, "HEAD", w->key, NULL, NULL, 0, what);
    r.req.flags = UW_HTTP_404_OK;
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    if (rc == 0) {
        const char *cl = uw_http_response_header(&resp, "Content-Length");
        const char *he = uw_http_response_header(&resp, "ETag");
        if (resp.status == 404)
            rc = uw_fail(err, UW_E_STORAGE, "%s: the object is missing after the upload", what);
        else if (!cl || strtoull(cl, NULL, 10) != w->total)
            rc = uw_fail(err, UW_E_STORAGE,
                         "%s: the stored object has %s bytes, %" PRIu64 " were uploaded", what,
                         cl ? cl : "an unknown number of", w->total);
        else if (etag && he && strcmp(etag, he) != 0)
            rc = uw_fail(err, UW_E_STORAGE,
                         "%s: the stored object's ETag %s is not the uploaded one %s", what, he,
                         etag);
    }
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    return rc;
}

static int s3w_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    s3_wsink *w = (s3_wsink *)s;
    size_t part = w->s3->part_size;
    while (len) {
        if (w->len == part) {
            if (!w->upload_id && s3_mpu_create(w, err) < 0)
                return -1;
            if (s3_mpu_part(w, err) < 0)
                return -1;
        }
        size_t n = part - w->len < len ? part - w->len : len;
        if (w->len + n > w->cap) {
            size_t cap = w->cap ? w->cap : 64 * 1024;
            while (cap < w->len + n)
                cap *= 2;
            if (cap > part)
                cap = part;
            w->buf = uw_realloc(w->buf, cap);
            w->cap = cap;
        }
        memcpy(w->buf + w->len, buf, n);
        w->len += n;
        w->total += n;
        buf += n;
        len -= n;
    }
    return 0;
}

static int s3w_finish(uw_sink *s, uw_err *err)
{
    s3_wsink *w = (s3_wsink *)s;
    char *etag = NULL;
    int rc;
    if (!w->upload_id) {
        rc = s3_put_single(w, &etag, err);
        if (rc == 0)
            w->done = true;
    } else {
        rc = w->len ? s3_mpu_part(w, err) : 0;
        if (rc == 0)
            rc = s3_mpu_complete(w, &etag, err);
    }
    if (rc == 0) {
        rc = s3_verify(w, etag, err);
        if (rc < 0) {
            /* Never leave a wrong object under its final name: its name
             * claims a checksum, and a later push would take it as done. */
            uw_err e;
            uw_err_clear(&e);
            s3_req r;
            s3_req_init(&r, w->s3, "DELETE", w->key, NULL, NULL, 0, "delete unverified object");
            r.req.flags = UW_HTTP_404_OK;
            uw_http_response resp = {0};
            if (s3_exec(w->s3, &r, &resp, &e) < 0)
                uw_log(UW_LOG_WARN, "'%s' failed verification and could not be removed: %s", w->key,
                       e.msg);
            uw_http_response_clear(&resp);
            s3_req_free(&r);
        }
    }
    free(etag);
    /* the part buffer is not needed any more */
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    if (rc == 0 && s->next)
        rc = uw_sink_finish(s->next, err);
    return rc;
}

static void s3w_destroy(uw_sink *s)
{
    s3_wsink *w = (s3_wsink *)s;
    if (w->upload_id && !w->done)
        s3_mpu_abort(w);
    for (int i = 0; i < w->parts; i++)
        free(w->etags[i]);
    free(w->etags);
    free(w->upload_id);
    free(w->buf);
    free(w->key);
    free(w);
}

static uw_sink *s3_write(uw_storage *st, const char *path, uw_err *err)
{
    (void)err;
    s3_impl *s3 = st->impl;
    s3_wsink *w = uw_calloc(1, sizeof *w);
    w->base = (uw_sink){s3w_write, s3w_finish, s3w_destroy, NULL, false, NULL};
    w->s3 = s3;
    w->key = full_key(s3, path);
    return &w->base;
}

/* --------------------------------------------------------------- open -- */

/* Names the option in buf, for messages, and passes its id on. */
static uw_opt_id opt(int repo, uw_opt_id id, char *buf, size_t len)
{
    uw_opt_name(id, repo, buf, len);
    return id;
}

static void wipe_free(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static void s3_free(s3_impl *s3)
{
    if (!s3)
        return;
    for (int i = 0; i < s3->nidle; i++)
        uw_http_free(s3->idle[i]);
    pthread_mutex_destroy(&s3->mu);
    free(s3->bucket);
    free(s3->region);
    free(s3->key);
    wipe_free(s3->secret);
    wipe_free(s3->token);
    free(s3->base_url);
    free(s3->host_hdr);
    free(s3->root);
    free(s3->prefix);
    free((char *)s3->opts.ca_file);
    free(s3);
}

/* An option, else an environment variable. */
static const char *opt_or_env(const uw_config *cfg, int repo, uw_opt_id id, const char *env)
{
    const char *v = uw_cfg_repo_str(cfg, repo, id);
    if (v && *v)
        return v;
    v = getenv(env);
    return v && *v ? v : NULL;
}

/* Bucket names: 3-63 of [a-z0-9.-] (the service's rule, checked for a clear
 * message; older buckets may have upper case and '_', accepted too). */
static bool bucket_valid(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z') ||
              (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-' || b[i] == '_'))
            return false;
    return true;
}

static int s3_open(uw_storage *st, const uw_config *cfg, int repo, uw_err *err)
{
    char o[UW_OPT_NAME_MAX];
    const char *bucket = uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_S3_BUCKET, o, sizeof o));
    if (!bucket)
        return uw_fail(err, UW_E_OPTION, "option '%s' is required for an s3 repository", o);
    if (!bucket_valid(bucket))
        return uw_fail(err, UW_E_OPTION, "option '%s': '%s' is not a valid bucket name", o, bucket);
    const char *region = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_S3_REGION);
    if (!region || !*region)
        region = "us-east-1";
    char okey[UW_OPT_NAME_MAX], osec[UW_OPT_NAME_MAX];
    const char *key = opt_or_env(cfg, repo, opt(repo, UW_OPT_REPO_S3_KEY, okey, sizeof okey),
                                 "AWS_ACCESS_KEY_ID");
    const char *secret =
        opt_or_env(cfg, repo, opt(repo, UW_OPT_REPO_S3_KEY_SECRET, osec, sizeof osec),
                   "AWS_SECRET_ACCESS_KEY");
    const char *token = opt_or_env(cfg, repo, UW_OPT_REPO_S3_TOKEN, "AWS_SESSION_TOKEN");
    if (!key || !secret)
        return uw_fail(err, UW_E_OPTION,
                       "s3 repository %d: credentials missing: set '%s' and '%s' (config file or "
                       "UE_WAL_REPO%d_S3_KEY_SECRET), or AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY",
                       repo, okey, osec, repo);
    const char *style = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_S3_URI_STYLE);
    bool path_style = style && strcmp(style, "path") == 0;

    /* Endpoint: [scheme://]host[:port][/]; default https://s3.<region>.amazonaws.com */
    char oe[UW_OPT_NAME_MAX];
    const char *endpoint =
        uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_S3_ENDPOINT, oe, sizeof oe));
    char *defep = NULL;
    if (!endpoint)
        endpoint = defep = uw_sprintf("s3.%s.amazonaws.com", region);
    const char *scheme = "https";
    const char *h = endpoint;
    if (strncmp(h, "https://", 8) == 0) {
        h += 8;
    } else if (strncmp(h, "http://", 7) == 0) {
        scheme = "http";
        h += 7;
    } else if (strstr(h, "://")) {
        free(defep);
        return uw_fail(err, UW_E_OPTION,
                       "option '%s': '%s': only http:// and https:// are supported", oe, endpoint);
    }
    size_t hl = strcspn(h, "/");
    char *hostport = uw_strndup(h, hl);
    const char *rest = h + hl;
    free(defep);
    defep = NULL;
    if (*rest && strcmp(rest, "/") != 0) {
        free(hostport);
        return uw_fail(err, UW_E_OPTION,
                       "option '%s': an endpoint has no path (use repo%d-path for a prefix)", oe,
                       repo);
    }
    /* split host and port; "[v6]:port" */
    char *host;
    long port = 0;
    char *colon = hostport[0] == '[' ? strstr(hostport, "]:") : strrchr(hostport, ':');
    if (colon && hostport[0] == '[')
        colon++;
    if (colon) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            free(hostport);
            return uw_fail(err, UW_E_OPTION, "option '%s': bad port in '%s'", oe, endpoint);
        }
        host = uw_strndup(hostport, (size_t)(colon - hostport));
    } else {
        host = uw_strdup(hostport);
    }
    free(hostport);
    if (!*host) {
        free(host);
        return uw_fail(err, UW_E_OPTION, "option '%s': no host in '%s'", oe, endpoint);
    }
    if (uw_cfg_repo_isset(cfg, repo, UW_OPT_REPO_STORAGE_PORT))
        port = (long)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_PORT);
    bool default_port = port == 0 || (strcmp(scheme, "https") == 0 && port == 443) ||
                        (strcmp(scheme, "http") == 0 && port == 80);

    s3_impl *s3 = uw_calloc(1, sizeof *s3);
    pthread_mutex_init(&s3->mu, NULL);
    s3->bucket = uw_strdup(bucket);
    s3->region = uw_strdup(region);
    s3->key = uw_strdup(key);
    s3->secret = uw_strdup(secret);
    s3->token = token ? uw_strdup(token) : NULL;
    char *vhost = path_style ? uw_strdup(host) : uw_sprintf("%s.%s", bucket, host);
    s3->host_hdr = default_port ? uw_strdup(vhost) : uw_sprintf("%s:%ld", vhost, port);
    s3->base_url = uw_sprintf("%s://%s", scheme, s3->host_hdr);
    free(vhost);
    free(host);
    if (path_style) {
        char *eb = uw_uri_encode(bucket, strlen(bucket), false);
        s3->root = uw_sprintf("/%s", eb);
        free(eb);
    } else {
        s3->root = uw_strdup("");
    }
    /* repoN-path: a prefix inside the bucket ("/" = the bucket's root) */
    const char *path = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_PATH);
    if (!path)
        path = "/";
    while (*path == '/')
        path++;
    size_t pl = strlen(path);
    while (pl && path[pl - 1] == '/')
        pl--;
    s3->prefix = pl ? uw_sprintf("%.*s/", (int)pl, path) : uw_strdup("");
    s3->part_size = (size_t)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_S3_PART_SIZE);
    if (s3->part_size < (5u << 20))
        s3->part_size = 5u << 20;

    s3->opts.service = "S3";
    s3->opts.parse_error = uw_s3_parse_error;
    s3->opts.verify_tls = uw_cfg_repo_bool(cfg, repo, UW_OPT_REPO_STORAGE_VERIFY_TLS);
    const char *ca = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_STORAGE_CA_FILE);
    s3->opts.ca_file = ca ? uw_strdup(ca) : NULL;
    s3->opts.timeout_sec = (long)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_TIMEOUT);
    s3->opts.retry_max = -1;
    /* Create one client now: a bad CA file fails here, as an option error. */
    uw_http *hc = uw_http_new(&s3->opts, err);
    if (!hc) {
        s3_free(s3);
        return -1;
    }
    s3->idle[s3->nidle++] = hc;
    st->impl = s3;
    st->desc = uw_sprintf("repo%d (s3:%s/%s)", repo, s3->bucket, s3->prefix);
    if (!s3->opts.verify_tls && strcmp(scheme, "https") == 0)
        uw_log(UW_LOG_WARN, "%s: TLS certificate verification is disabled", st->desc);
    return 0;
}

static void s3_close(uw_storage *st)
{
    s3_free(st->impl);
    st->impl = NULL;
}

const uw_storage_driver uw_storage_s3 = {
    .type = "s3",
    .features = 0,
    .open = s3_open,
    .stat = s3_stat,
    .list = s3_list,
    .read = s3_read,
    .write = s3_write,
    .remove = s3_remove,
    .close = s3_close,
};
