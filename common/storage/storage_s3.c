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
 *   sweep   ListMultipartUploads under the directory (paginated with
 *           key-marker/upload-id-marker), AbortMultipartUpload of those
 *           initiated before the age limit: a killed writer's parts cost
 *           storage forever otherwise.
 * Requests are signed with Signature V4 (sigv4.h) per attempt; payloads are
 * signed (x-amz-content-sha256) and uploads carry Content-MD5.
 *
 * A uw_http client is not shared between threads: each operation checks one
 * out of a small mutex-protected free list (normally the same one, so its
 * connections are reused) and returns it afterwards. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/codec.h"
#include "core/xml.h"
#include "storage/http.h"
#include "core/log.h"
#include "storage/sigv4.h"
#include "storage/storage.h"
#include "storage/storage_s3.h"
#include "storage/storage_s3_int.h"

#define S3_DELETE_BATCH 1000

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
 * (s3rver 5.0.0 as released) refuse the signature of "/bucket/?...". */
void s3_req_init(s3_req *r, s3_impl *s3, const char *method, const char *key, const char *query,
                 const void *body, size_t len, const char *what)
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

void s3_req_free(s3_req *r)
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

int s3_exec(s3_impl *s3, s3_req *r, uw_http_response *resp, uw_err *err)
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

char *s3_full_key(const s3_impl *s3, const char *path)
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

void s3_md5_of(const void *data, size_t len, uint8_t out[16])
{
    unsigned int n = 16;
    EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

/* --------------------------------------------------------------- stat -- */

static int s3_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *key = s3_full_key(s3, path);
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
    char *ident; /* ETag and LastModified (uw_storage_list_ident) */
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
    (*a->ents)[(*a->n)++] =
        (list_ent){uw_strdup(name), size, is_dir, uw_strdup(uw_storage_list_ident())};
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
        char *etag = uw_xml_get(b, be, "ETag", NULL);
        char *lm = uw_xml_get(b, be, "LastModified", NULL);
        char *ident = uw_sprintf("%s %s", etag ? etag : "", lm ? lm : "");
        uw_storage_set_list_ident(ident);
        if (k)
            add(ctx, k, false, sz ? strtoull(sz, NULL, 10) : 0);
        uw_storage_set_list_ident(NULL);
        free(ident);
        free(etag);
        free(lm);
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

/* A paginated bucket listing (ListObjectsV2, ListMultipartUploads): GET
 * "?<query><markers>" page after page, each page's parser handing back the
 * markers of the next request (encoded, e.g. "&continuation-token=..."), or
 * NULL after the last page or to stop early. A server that hands the same
 * markers back twice fails the listing instead of paging forever. Parsers
 * run with no client checked out: they may use the storage. */
typedef int (*s3_page_fn)(void *ctx, const char *body, size_t len, const char *what, char **next,
                          uw_err *err);

static int s3_pages(s3_impl *s3, const char *query, const char *what, s3_page_fn page, void *ctx,
                    uw_err *err)
{
    char *markers = NULL, *prev = NULL;
    int rc = 0;
    do {
        if (prev && markers && strcmp(prev, markers) == 0) {
            rc = uw_fail(err, UW_E_STORAGE, "%s: the listing does not advance past its markers",
                         what);
            break;
        }
        free(prev);
        prev = markers;
        markers = NULL;
        char *q = uw_sprintf("%s%s", query, prev ? prev : "");
        s3_req r;
        s3_req_init(&r, s3, "GET", NULL, q, NULL, 0, what);
        uw_http_response resp = {0};
        rc = s3_exec(s3, &r, &resp, err);
        if (rc == 0)
            rc = page(ctx, (const char *)resp.body.data, resp.body.len, what, &markers, err);
        uw_http_response_clear(&resp);
        s3_req_free(&r);
        free(q);
    } while (rc == 0 && markers);
    free(markers);
    free(prev);
    return rc;
}

static void ents_free(list_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].ident);
    }
    free(e);
}

typedef struct {
    const char *prefix;
    size_t plen;
    bool flat;
    uw_list_cb cb;
    void *ctx;
} list_walk;

/* A continuation token as the next request's markers. */
static char *token_markers(const char *token)
{
    char *et = uw_uri_encode(token, strlen(token), false);
    char *m = uw_sprintf("&continuation-token=%s", et);
    free(et);
    return m;
}

/* One ListObjectsV2 page: its entries handed to the caller's callback, and
 * the continuation token as the next page's markers. */
static int list_page(void *ctx, const char *body, size_t len, const char *what, char **next,
                     uw_err *err)
{
    list_walk *w = ctx;
    list_ent *ents = NULL;
    size_t n = 0, cap = 0;
    char *token = NULL;
    list_acc acc = {&ents, &n, &cap};
    int rc = uw_s3_list_parse(body, len, what, list_add, &acc, &token, err);
    bool stop = false;
    for (size_t i = 0; rc == 0 && !stop && i < n; i++) {
        const char *k = ents[i].key;
        if (strncmp(k, w->prefix, w->plen) != 0)
            continue;
        char *name = uw_strdup(k + w->plen);
        size_t nl = strlen(name);
        if (ents[i].is_dir)
            while (nl && name[nl - 1] == '/')
                name[--nl] = '\0';
        /* skip "directory marker" objects, and (not flat) anything nested */
        bool marker = !nl || (w->flat && (ents[i].is_dir || k[strlen(k) - 1] == '/'));
        uw_storage_set_list_ident(ents[i].ident);
        if (!marker && (w->flat || !strchr(name, '/')))
            stop = w->cb(w->ctx, name, !w->flat && ents[i].is_dir, ents[i].size) != 0;
        free(name);
    }
    ents_free(ents, n);
    if (rc == 0 && !stop && token)
        *next = token_markers(token);
    free(token);
    return rc;
}

typedef struct {
    list_ent *ents;
    size_t n, cap;
} ent_list;

/* One ListObjectsV2 page: its entries kept (remove_tree). */
static int collect_page(void *ctx, const char *body, size_t len, const char *what, char **next,
                        uw_err *err)
{
    ent_list *l = ctx;
    list_acc acc = {&l->ents, &l->n, &l->cap};
    char *token = NULL;
    int rc = uw_s3_list_parse(body, len, what, list_add, &acc, &token, err);
    if (rc == 0 && token)
        *next = token_markers(token);
    free(token);
    return rc;
}

/* The ListObjectsV2 query of the objects under prefix (directly under it
 * with the delimiter), and the "what" of its messages. */
static char *list_query(const char *prefix, bool delimit, char *what, size_t what_len)
{
    char *ep = uw_uri_encode(prefix, strlen(prefix), false);
    char *q = uw_sprintf("list-type=2&prefix=%s%s", ep, delimit ? "&delimiter=%2F" : "");
    free(ep);
    snprintf(what, what_len, "list '%s'", prefix);
    return q;
}

/* One listing loop for all three: with the delimiter (flat == false) the
 * entries directly under dir, directories included; without it (flat) every
 * object at any depth as a path relative to dir, in one request per 1000
 * objects where a walk would make one per directory. name_prefix ("": none)
 * goes to the service, which answers with the names that begin with it
 * alone: finding one WAL segment's object (every push and fetch does) then
 * costs a listing of one or two keys, not of the whole directory of up to
 * 256 segments. */
static int s3_list_pages(uw_storage *st, const char *dir, const char *name_prefix, bool flat,
                         uw_list_cb cb, void *ctx, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *prefix = dir_prefix(s3, dir);
    char *full = uw_sprintf("%s%s", prefix, name_prefix);
    char what[600];
    char *query = list_query(full, !flat, what, sizeof what);
    /* Names relative to dir, as the listing of dir gives them. */
    list_walk w = {prefix, strlen(prefix), flat, cb, ctx};
    int rc = s3_pages(s3, query, what, list_page, &w, err);
    free(query);
    free(full);
    free(prefix);
    return rc;
}

static int s3_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    return s3_list_pages(st, dir, "", false, cb, ctx, err);
}

static int s3_list_tree(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    return s3_list_pages(st, dir, "", true, cb, ctx, err);
}

static int s3_list_prefix(uw_storage *st, const char *dir, const char *name_prefix, uw_list_cb cb,
                          void *ctx, uw_err *err)
{
    return s3_list_pages(st, dir, name_prefix, false, cb, ctx, err);
}

/* --------------------------------------------------------------- read -- */

static int s3_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *key = s3_full_key(s3, path);
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
    char *key = s3_full_key(s3, path);
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
    s3_md5_of(body.data, body.len, md5);
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
    ent_list l = {NULL, 0, 0};
    char what[600];
    char *query = list_query(prefix, false, what, sizeof what);
    int rc = s3_pages(s3, query, what, collect_page, &l, err);
    for (size_t i = 0; rc == 0 && i < l.n; i += S3_DELETE_BATCH)
        rc = delete_batch(s3, l.ents + i, l.n - i < S3_DELETE_BATCH ? l.n - i : S3_DELETE_BATCH,
                          err);
    ents_free(l.ents, l.n);
    free(query);
    free(prefix);
    return rc;
}


int uw_storage_s3_remove_many(uw_storage *st, const char *const *paths, size_t n, uw_err *err)
{
    s3_impl *s3 = st->impl;
    list_ent *ents = uw_calloc(n + 1, sizeof *ents);
    for (size_t i = 0; i < n; i++)
        ents[i].key = s3_full_key(s3, paths[i]);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += S3_DELETE_BATCH)
        rc = delete_batch(s3, ents + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH, err);
    ents_free(ents, n);
    return rc;
}

/* -------------------------------------------------------------- sweep -- */

/* "2026-12-01T00:11:01.000Z" -> Unix seconds; -1 when it is no such time. */
static int64_t s3_time(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (!iso ||
        sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

int uw_s3_uploads_parse(const char *x, size_t len, const char *what, uw_s3_upload_cb cb, void *ctx,
                        char **next_key, char **next_id, uw_err *err)
{
    *next_key = *next_id = NULL;
    const char *end = x ? x + len : NULL, *p = x, *b, *be;
    if (!x || !uw_xml_find(x, end, "ListMultipartUploadsResult", &b, &be, NULL))
        return uw_fail(err, UW_E_STORAGE, "%s: unexpected response (no ListMultipartUploadsResult)",
                       what);
    int rc = 0;
    while (rc == 0 && uw_xml_find(p, end, "Upload", &b, &be, &p)) {
        char *k = uw_xml_get(b, be, "Key", NULL);
        char *id = uw_xml_get(b, be, "UploadId", NULL);
        char *t = uw_xml_get(b, be, "Initiated", NULL);
        if (k && id && *id)
            rc = cb(ctx, k, id, s3_time(t));
        free(k);
        free(id);
        free(t);
    }
    char *trunc = uw_xml_get(x, end, "IsTruncated", NULL);
    if (rc == 0 && trunc && strcmp(trunc, "true") == 0) {
        *next_key = uw_xml_get(x, end, "NextKeyMarker", NULL);
        *next_id = uw_xml_get(x, end, "NextUploadIdMarker", NULL);
        if (!*next_key || !**next_key)
            rc = uw_fail(err, UW_E_STORAGE, "%s: truncated listing without a NextKeyMarker", what);
    }
    free(trunc);
    return rc;
}

typedef struct {
    char **keys, **ids;
    size_t n, cap;
    int64_t cutoff; /* initiated before: stale */
    bool all;       /* max_age 0: every upload, whatever the clocks say */
} upload_acc;

static int upload_add(void *ctx, const char *key, const char *id, int64_t initiated)
{
    upload_acc *a = ctx;
    /* An unreadable time is never taken for an old one. */
    if (!a->all && (initiated < 0 || initiated > a->cutoff))
        return 0;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->keys = uw_realloc(a->keys, a->cap * sizeof *a->keys);
        a->ids = uw_realloc(a->ids, a->cap * sizeof *a->ids);
    }
    a->keys[a->n] = uw_strdup(key);
    a->ids[a->n++] = uw_strdup(id);
    return 0;
}

/* AbortMultipartUpload; one already gone (completed or aborted meanwhile) is
 * no error. */
static int s3_upload_abort(s3_impl *s3, const char *key, const char *id, uw_err *err)
{
    char *eid = uw_uri_encode(id, strlen(id), false);
    char *query = uw_sprintf("uploadId=%s", eid);
    char what[600];
    snprintf(what, sizeof what, "abort multipart upload '%s'", key);
    s3_req r;
    s3_req_init(&r, s3, "DELETE", key, query, NULL, 0, what);
    r.req.flags = UW_HTTP_404_OK;
    uw_http_response resp = {0};
    int rc = s3_exec(s3, &r, &resp, err);
    uw_http_response_clear(&resp);
    s3_req_free(&r);
    free(query);
    free(eid);
    return rc;
}

/* One ListMultipartUploads page: its stale uploads collected, and
 * key-marker/upload-id-marker as the next page's markers. */
static int uploads_page(void *ctx, const char *body, size_t len, const char *what, char **next,
                        uw_err *err)
{
    char *kmark = NULL, *imark = NULL;
    int rc = uw_s3_uploads_parse(body, len, what, upload_add, ctx, &kmark, &imark, err);
    if (rc == 0 && kmark) {
        char *ek = uw_uri_encode(kmark, strlen(kmark), false);
        char *ei = imark ? uw_uri_encode(imark, strlen(imark), false) : NULL;
        *next = uw_sprintf("&key-marker=%s%s%s", ek, ei ? "&upload-id-marker=" : "", ei ? ei : "");
        free(ek);
        free(ei);
    }
    free(kmark);
    free(imark);
    return rc;
}

/* ListMultipartUploads under dir, following key-marker/upload-id-marker;
 * collected first, then aborted (the listing is not changed while paging). */
int uw_storage_s3_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                        uw_err *err)
{
    s3_impl *s3 = st->impl;
    char *prefix = dir_prefix(s3, dir);
    char *ep = uw_uri_encode(prefix, strlen(prefix), false);
    char *query = uw_sprintf("uploads&prefix=%s", ep);
    upload_acc a = {NULL, NULL, 0, 0, (int64_t)time(NULL) - max_age, max_age <= 0};
    char what[600];
    snprintf(what, sizeof what, "list multipart uploads '%s'", prefix);
    int rc = s3_pages(s3, query, what, uploads_page, &a, err);
    for (size_t i = 0; i < a.n; i++) {
        if (rc == 0 && (rc = s3_upload_abort(s3, a.keys[i], a.ids[i], err)) == 0) {
            uw_log(UW_LOG_DETAIL, "aborted unfinished multipart upload of '%s' (upload id %s)",
                   a.keys[i], a.ids[i]);
            stats->uploads++;
        }
        free(a.keys[i]);
        free(a.ids[i]);
    }
    free(a.keys);
    free(a.ids);
    free(query);
    free(ep);
    free(prefix);
    return rc;
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

/* What s3_open takes from the options (pointers into the configuration or the
 * environment) before it allocates the driver's state. */
typedef struct {
    const char *bucket;
    const char *region;
    const char *key;
    const char *secret;
    const char *token;
    bool path_style;
} s3_conf;

/* The bucket (required, checked), the region (default us-east-1) and the URI
 * style. */
static int s3_conf_bucket(const uw_config *cfg, int repo, s3_conf *c, uw_err *err)
{
    char o[UW_OPT_NAME_MAX];
    c->bucket = uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_S3_BUCKET, o, sizeof o));
    if (!c->bucket)
        return uw_fail(err, UW_E_OPTION, "option '%s' is required for an s3 repository", o);
    if (!bucket_valid(c->bucket))
        return uw_fail(err, UW_E_OPTION, "option '%s': '%s' is not a valid bucket name", o,
                       c->bucket);
    c->region = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_S3_REGION);
    if (!c->region || !*c->region)
        c->region = "us-east-1";
    const char *style = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_S3_URI_STYLE);
    c->path_style = style && strcmp(style, "path") == 0;
    return 0;
}

/* The key pair (required) and a session token: options, else the AWS_*
 * environment variables. */
static int s3_conf_creds(const uw_config *cfg, int repo, s3_conf *c, uw_err *err)
{
    char okey[UW_OPT_NAME_MAX], osec[UW_OPT_NAME_MAX];
    c->key = opt_or_env(cfg, repo, opt(repo, UW_OPT_REPO_S3_KEY, okey, sizeof okey),
                        "AWS_ACCESS_KEY_ID");
    c->secret = opt_or_env(cfg, repo, opt(repo, UW_OPT_REPO_S3_KEY_SECRET, osec, sizeof osec),
                           "AWS_SECRET_ACCESS_KEY");
    c->token = opt_or_env(cfg, repo, UW_OPT_REPO_S3_TOKEN, "AWS_SESSION_TOKEN");
    if (!c->key || !c->secret)
        return uw_fail(err, UW_E_OPTION,
                       "s3 repository %d: credentials missing: set '%s' and '%s' (config file or "
                       "UE_WAL_REPO%d_S3_KEY_SECRET), or AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY",
                       repo, okey, osec, repo);
    return 0;
}

/* The endpoint as scheme, host and port. */
typedef struct {
    const char *scheme;
    char *host;
    long port; /* 0: the scheme's default */
} s3_addr;

/* "host[:port]" or "[v6]:port" into a->host and a->port; oe and endpoint name
 * the option and its value in messages. */
static int s3_split_hostport(const char *hostport, const char *oe, const char *endpoint, s3_addr *a,
                             uw_err *err)
{
    const char *colon = hostport[0] == '[' ? strstr(hostport, "]:") : strrchr(hostport, ':');
    if (colon && hostport[0] == '[')
        colon++;
    if (colon) {
        char *end;
        a->port = strtol(colon + 1, &end, 10);
        if (*end || a->port < 1 || a->port > 65535)
            return uw_fail(err, UW_E_OPTION, "option '%s': bad port in '%s'", oe, endpoint);
        a->host = uw_strndup(hostport, (size_t)(colon - hostport));
    } else {
        a->host = uw_strdup(hostport);
    }
    if (!*a->host) {
        free(a->host);
        a->host = NULL;
        return uw_fail(err, UW_E_OPTION, "option '%s': no host in '%s'", oe, endpoint);
    }
    return 0;
}

/* Endpoint: [scheme://]host[:port][/]; default https://s3.<region>.amazonaws.com.
 * repoN-storage-port, when set, overrides the port. */
static int s3_conf_endpoint(const uw_config *cfg, int repo, const char *region, s3_addr *a,
                            uw_err *err)
{
    char oe[UW_OPT_NAME_MAX];
    const char *endpoint =
        uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_S3_ENDPOINT, oe, sizeof oe));
    char *defep = NULL;
    if (!endpoint)
        endpoint = defep = uw_sprintf("s3.%s.amazonaws.com", region);
    a->scheme = "https";
    const char *h = endpoint;
    int rc = 0;
    if (strncmp(h, "https://", 8) == 0) {
        h += 8;
    } else if (strncmp(h, "http://", 7) == 0) {
        a->scheme = "http";
        h += 7;
    } else if (strstr(h, "://")) {
        rc = uw_fail(err, UW_E_OPTION, "option '%s': '%s': only http:// and https:// are supported",
                     oe, endpoint);
    }
    size_t hl = strcspn(h, "/");
    const char *rest = h + hl;
    if (rc == 0 && *rest && strcmp(rest, "/") != 0)
        rc = uw_fail(err, UW_E_OPTION,
                     "option '%s': an endpoint has no path (use repo%d-path for a prefix)", oe,
                     repo);
    if (rc == 0) {
        char *hostport = uw_strndup(h, hl);
        rc = s3_split_hostport(hostport, oe, endpoint, a, err);
        free(hostport);
    }
    free(defep);
    if (rc == 0 && uw_cfg_repo_isset(cfg, repo, UW_OPT_REPO_STORAGE_PORT))
        a->port = (long)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_PORT);
    return rc;
}

/* Host header, base URL and bucket path: virtual-host style
 * (bucket.host, path "") or path style (host, path "/bucket"). */
static void s3_set_addr(s3_impl *s3, const s3_conf *c, const s3_addr *a)
{
    bool default_port = a->port == 0 || (strcmp(a->scheme, "https") == 0 && a->port == 443) ||
                        (strcmp(a->scheme, "http") == 0 && a->port == 80);
    char *vhost = c->path_style ? uw_strdup(a->host) : uw_sprintf("%s.%s", c->bucket, a->host);
    s3->host_hdr = default_port ? uw_strdup(vhost) : uw_sprintf("%s:%ld", vhost, a->port);
    s3->base_url = uw_sprintf("%s://%s", a->scheme, s3->host_hdr);
    free(vhost);
    if (c->path_style) {
        char *eb = uw_uri_encode(c->bucket, strlen(c->bucket), false);
        s3->root = uw_sprintf("/%s", eb);
        free(eb);
    } else {
        s3->root = uw_strdup("");
    }
}

/* repoN-path: a prefix inside the bucket ("/" = the bucket's root); and the
 * part size (at least S3's minimum of 5 MiB). */
static void s3_set_layout(s3_impl *s3, const uw_config *cfg, int repo)
{
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
}

/* The HTTP client's options, and one client created now: a bad CA file fails
 * here, as an option error. */
static int s3_set_transport(s3_impl *s3, const uw_config *cfg, int repo, uw_err *err)
{
    s3->opts.service = "S3";
    s3->opts.parse_error = uw_s3_parse_error;
    s3->opts.verify_tls = uw_cfg_repo_bool(cfg, repo, UW_OPT_REPO_STORAGE_VERIFY_TLS);
    const char *ca = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_STORAGE_CA_FILE);
    s3->opts.ca_file = ca ? uw_strdup(ca) : NULL;
    s3->opts.timeout_sec = (long)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_TIMEOUT);
    s3->opts.retry_max = -1;
    uw_http *hc = uw_http_new(&s3->opts, err);
    if (!hc)
        return -1;
    s3->idle[s3->nidle++] = hc;
    return 0;
}

static int s3_open(uw_storage *st, const uw_config *cfg, int repo, uw_err *err)
{
    s3_conf c = {0};
    s3_addr a = {0};
    if (s3_conf_bucket(cfg, repo, &c, err) < 0 || s3_conf_creds(cfg, repo, &c, err) < 0 ||
        s3_conf_endpoint(cfg, repo, c.region, &a, err) < 0)
        return -1;

    s3_impl *s3 = uw_calloc(1, sizeof *s3);
    pthread_mutex_init(&s3->mu, NULL);
    s3->bucket = uw_strdup(c.bucket);
    s3->region = uw_strdup(c.region);
    s3->key = uw_strdup(c.key);
    s3->secret = uw_strdup(c.secret);
    s3->token = c.token ? uw_strdup(c.token) : NULL;
    s3_set_addr(s3, &c, &a);
    free(a.host);
    s3_set_layout(s3, cfg, repo);
    if (s3_set_transport(s3, cfg, repo, err) < 0) {
        s3_free(s3);
        return -1;
    }
    st->impl = s3;
    st->desc = uw_sprintf("repo%d (s3:%s/%s)", repo, s3->bucket, s3->prefix);
    if (!s3->opts.verify_tls && strcmp(a.scheme, "https") == 0)
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
    .list_tree = s3_list_tree,
    .sweep = uw_storage_s3_sweep,
    .list_prefix = s3_list_prefix,
};
