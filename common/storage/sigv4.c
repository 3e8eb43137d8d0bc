/* AWS Signature Version 4. See sigv4.h. */
#include "storage/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/codec.h"
#include "io/sink.h"

static void hmac256(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void uw_sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
                          const char *service, unsigned char out[32])
{
    char *k = uw_sprintf("AWS4%s", secret_key);
    unsigned char a[32], b[32];
    hmac256(k, strlen(k), date8, a);
    hmac256(a, 32, region, b);
    hmac256(b, 32, service, a);
    hmac256(a, 32, "aws4_request", out);
    /* the derived keys are as good as the secret for a day: do not leave them */
    memset(k, 0, strlen(k));
    free(k);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
}

typedef struct {
    char *name, *value; /* canonical (encoded) */
    size_t idx;
} qpair;

static int qpair_cmp(const void *pa, const void *pb)
{
    const qpair *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->value, b->value);
    return c;
}

char *uw_sigv4_canonical_query(const char *query)
{
    if (!query || !*query)
        return uw_strdup("");
    size_t n = 1;
    for (const char *p = query; *p; p++)
        n += *p == '&';
    qpair *v = uw_calloc(n, sizeof *v);
    size_t k = 0;
    const char *p = query;
    while (*p || p == query) {
        size_t len = strcspn(p, "&");
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            char *dn = uw_uri_decode(p, nl);
            char *dv = eq ? uw_uri_decode(eq + 1, len - nl - 1) : uw_strdup("");
            v[k].name = uw_uri_encode(dn, strlen(dn), false);
            v[k].value = uw_uri_encode(dv, strlen(dv), false);
            v[k].idx = k;
            k++;
            free(dn);
            free(dv);
        }
        p += len;
        if (!*p)
            break;
        p++;
    }
    qsort(v, k, sizeof *v, qpair_cmp);
    uw_buf b = {0};
    for (size_t i = 0; i < k; i++) {
        if (i)
            uw_buf_append(&b, "&", 1);
        uw_buf_append(&b, v[i].name, strlen(v[i].name));
        uw_buf_append(&b, "=", 1);
        uw_buf_append(&b, v[i].value, strlen(v[i].value));
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
    uw_buf_append(&b, "", 1);
    return (char *)b.data;
}

typedef struct {
    char *name;  /* lower case */
    char *value; /* trimmed, blanks collapsed */
    size_t idx;
} hdr;

static int hdr_cmp(const void *pa, const void *pb)
{
    const hdr *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    if (c == 0)
        c = a->idx < b->idx ? -1 : a->idx > b->idx;
    return c;
}

static char *canon_value(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *out = uw_malloc(strlen(s) + 1), *o = out;
    bool blank = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            blank = true;
            continue;
        }
        if (blank && o > out)
            *o++ = ' ';
        blank = false;
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

static void append(uw_buf *b, const char *s)
{
    uw_buf_append(b, s, strlen(s));
}

void uw_sigv4_sign(const uw_sigv4_input *in, uw_sigv4_result *out)
{
    memset(out, 0, sizeof *out);
    hdr *h = uw_calloc(in->nheaders ? in->nheaders : 1, sizeof *h);
    size_t nh = 0;
    for (size_t i = 0; i < in->nheaders; i++) {
        const char *line = in->headers[i];
        const char *colon = strchr(line, ':');
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - line);
        while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
            nl--;
        h[nh].name = uw_strndup(line, nl);
        for (char *c = h[nh].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z') /* ASCII only, whatever the locale */
                *c = (char)(*c - 'A' + 'a');
        h[nh].value = canon_value(colon + 1);
        h[nh].idx = i;
        nh++;
    }
    qsort(h, nh, sizeof *h, hdr_cmp);

    uw_buf canon_h = {0}, signed_h = {0};
    for (size_t i = 0; i < nh; i++) {
        bool same = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
        if (same) {
            /* "name:v1,v2": replace the pending newline with a comma */
            canon_h.len--;
            append(&canon_h, ",");
        } else {
            if (signed_h.len)
                append(&signed_h, ";");
            append(&signed_h, h[i].name);
            append(&canon_h, h[i].name);
            append(&canon_h, ":");
        }
        append(&canon_h, h[i].value);
        append(&canon_h, "\n");
    }
    uw_buf_append(&signed_h, "", 1);

    char *cq = uw_sigv4_canonical_query(in->query);
    uw_buf cr = {0};
    append(&cr, in->method);
    append(&cr, "\n");
    append(&cr, in->path && *in->path ? in->path : "/");
    append(&cr, "\n");
    append(&cr, cq);
    append(&cr, "\n");
    uw_buf_append(&cr, canon_h.data, canon_h.len);
    append(&cr, "\n");
    append(&cr, (char *)signed_h.data);
    append(&cr, "\n");
    append(&cr, in->payload_hash);
    uw_buf_append(&cr, "", 1);
    out->canonical_request = (char *)cr.data;
    out->signed_headers = (char *)signed_h.data;

    unsigned char dg[32];
    char dghex[65];
    uw_sha256(cr.data, strlen((char *)cr.data), dg);
    uw_hex(dg, 32, dghex);
    char date8[9];
    snprintf(date8, sizeof date8, "%.8s", in->amz_date);
    char *scope = uw_sprintf("%s/%s/%s/aws4_request", date8, in->region, in->service);
    out->string_to_sign = uw_sprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, dghex);

    unsigned char key[32], sig[32];
    uw_sigv4_signing_key(in->secret_key, date8, in->region, in->service, key);
    hmac256(key, 32, out->string_to_sign, sig);
    memset(key, 0, sizeof key);
    uw_hex(sig, 32, out->signature);
    out->authorization =
        uw_sprintf("AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
                   in->access_key, scope, out->signed_headers, out->signature);

    free(scope);
    free(cq);
    uw_buf_free(&canon_h);
    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

void uw_sigv4_result_free(uw_sigv4_result *r)
{
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->signed_headers);
    free(r->authorization);
    memset(r, 0, sizeof *r);
}
