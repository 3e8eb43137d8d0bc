/* Amazon S3 driver, the write path (see storage_s3.c for the whole driver):
 * a single PutObject, or CreateMultipartUpload / UploadPart /
 * CompleteMultipartUpload (AbortMultipartUpload for a sink freed unfinished),
 * then a HeadObject verifying what was stored, unless the PutObject's answer
 * already proved it (s3w_finish says when). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/log.h"
#include "core/xml.h"
#include "storage/http.h"
#include "storage/storage.h"
#include "storage/storage_s3_int.h"

#define S3_MAX_PARTS 10000

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

/* *proven: the answer's ETag is the MD5 of what was sent. */
static int s3_put_single(s3_wsink *w, char **etag_out, bool *proven, uw_err *err)
{
    s3_impl *s3 = w->s3;
    uint8_t md5[16];
    s3_md5_of(w->buf, w->len, md5);
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
        bool md5_etag = etag && etag_md5(etag, got) && !etag_opaque(&resp);
        if (md5_etag && strcmp(got, md5hex) != 0)
            rc = uw_fail(err, UW_E_STORAGE,
                         "%s: the stored object's ETag %s is not the MD5 %s of what was sent", what,
                         got, md5hex);
        else if (md5_etag)
            *proven = true;
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
    s3_md5_of(w->buf, w->len, md5);
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
    bool proven = false;
    if (!w->upload_id) {
        rc = s3_put_single(w, &etag, &proven, err);
        if (rc == 0)
            w->done = true;
    } else {
        rc = w->len ? s3_mpu_part(w, err) : 0;
        if (rc == 0)
            rc = s3_mpu_complete(w, &etag, err);
    }
    /* A PutObject answered 200 with the MD5 of every byte sent as its ETag
     * (the service checked Content-MD5 too) stored exactly those bytes under
     * the key, whole, at once: a HeadObject could only repeat it, and costs
     * the service one request per object (a backup's thousand small files).
     * Multipart uploads, and answers without a plain MD5 ETag (SSE-KMS,
     * servers that give none), are still verified. */
    if (rc == 0 && !proven) {
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

uw_sink *s3_write(uw_storage *st, const char *path, uw_err *err)
{
    (void)err;
    s3_impl *s3 = st->impl;
    s3_wsink *w = uw_calloc(1, sizeof *w);
    w->base = (uw_sink){s3w_write, s3w_finish, s3w_destroy, NULL, false, NULL};
    w->s3 = s3;
    w->key = s3_full_key(s3, path);
    return &w->base;
}
