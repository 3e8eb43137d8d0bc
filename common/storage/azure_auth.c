/* Azure SharedKey signing: see azure_auth.h. No I/O, no global state. */
#include "storage/azure_auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/codec.h"
#include "io/sink.h"

/* ------------------------------------------------------------ headers -- */

typedef struct {
    char *name;  /* lower-case */
    char *value; /* trimmed, whitespace folded */
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *lower(const char *s, size_t n)
{
    char *o = uw_strndup(s, n);
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return o;
}

static char *fold(const char *v)
{
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    char *o = uw_strdup(v), *w = o;
    bool space = false;
    for (const char *p = v; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            space = true;
            continue;
        }
        if (space && w != o)
            *w++ = ' ';
        space = false;
        *w++ = *p;
    }
    *w = '\0';
    return o;
}

static void append(uw_buf *b, const char *s)
{
    uw_buf_append(b, s, strlen(s));
}

static char *finish(uw_buf *b)
{
    uw_buf_append(b, "", 1);
    char *s = (char *)b->data;
    b->data = NULL;
    return s;
}

/* Sort the pairs and write one "name:v1,v2" group per name: headers end each
 * group with "\n", the resource starts each with "\n". */
static void emit_groups(uw_buf *b, kv *list, size_t n, bool header_style)
{
    qsort(list, n, sizeof *list, kv_cmp);
    for (size_t i = 0; i < n;) {
        if (!header_style)
            append(b, "\n");
        append(b, list[i].name);
        append(b, ":");
        size_t j = i;
        for (; j < n && strcmp(list[j].name, list[i].name) == 0; j++) {
            if (j > i)
                append(b, ",");
            append(b, list[j].value);
        }
        if (header_style)
            append(b, "\n");
        i = j;
    }
}

static void kv_free(kv *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].name);
        free(list[i].value);
    }
    free(list);
}

char *uw_az_canon_headers(const uw_az_header *h, size_t n)
{
    kv *list = uw_calloc(n ? n : 1, sizeof *list);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(h[i].name, "x-ms-", 5) != 0)
            continue;
        list[m].name = lower(h[i].name, strlen(h[i].name));
        list[m].value = fold(h[i].value ? h[i].value : "");
        m++;
    }
    /* Repeated x-ms-* headers (never sent by this client) get their values
     * sorted, like repeated query parameters. */
    uw_buf b = {0};
    emit_groups(&b, list, m, true);
    kv_free(list, m);
    return finish(&b);
}

char *uw_az_canon_resource(const char *account, const char *path, const char *query)
{
    uw_buf b = {0};
    append(&b, "/");
    append(&b, account);
    append(&b, path && *path ? path : "/");
    if (query && *query) {
        size_t cap = 1;
        for (const char *p = query; *p; p++)
            cap += *p == '&';
        kv *list = uw_calloc(cap, sizeof *list);
        size_t m = 0;
        const char *p = query;
        while (*p) {
            const char *amp = strchr(p, '&');
            size_t len = amp ? (size_t)(amp - p) : strlen(p);
            if (len) {
                const char *eq = memchr(p, '=', len);
                size_t nl = eq ? (size_t)(eq - p) : len;
                char *dn = uw_uri_decode(p, nl);
                list[m].name = lower(dn, strlen(dn));
                free(dn);
                list[m].value = eq ? uw_uri_decode(eq + 1, len - nl - 1) : uw_strdup("");
                m++;
            }
            p += len;
            if (*p == '&')
                p++;
        }
        emit_groups(&b, list, m, false);
        kv_free(list, m);
    }
    return finish(&b);
}

static const char *hget(const uw_az_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value ? h[i].value : "";
    return "";
}

char *uw_az_string_to_sign(const char *verb, const uw_az_header *h, size_t n, const char *account,
                           const char *path, const char *query)
{
    static const char *const std[] = {"Content-Encoding",
                                      "Content-Language",
                                      "Content-Length",
                                      "Content-MD5",
                                      "Content-Type",
                                      "Date",
                                      "If-Modified-Since",
                                      "If-Match",
                                      "If-None-Match",
                                      "If-Unmodified-Since",
                                      "Range"};
    uw_buf b = {0};
    append(&b, verb);
    append(&b, "\n");
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
        const char *v = hget(h, n, std[i]);
        /* Since 2015-02-21 a zero Content-Length is signed as empty. */
        if (!strcmp(std[i], "Content-Length") && !strcmp(v, "0"))
            v = "";
        /* x-ms-date replaces Date. */
        if (!strcmp(std[i], "Date") && *hget(h, n, "x-ms-date"))
            v = "";
        append(&b, v);
        append(&b, "\n");
    }
    char *ch = uw_az_canon_headers(h, n);
    char *cr = uw_az_canon_resource(account, path, query);
    append(&b, ch);
    append(&b, cr);
    free(ch);
    free(cr);
    return finish(&b);
}

int uw_az_sign(const char *key_b64, const char *sts, char **sig_b64, uw_err *err)
{
    size_t klen = 0;
    uint8_t *key = uw_base64_decode(key_b64, &klen);
    if (!key || klen == 0) {
        free(key);
        return uw_fail(err, UW_E_OPTION, "the Azure account key is not valid base64");
    }
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    uint8_t *r = HMAC(EVP_sha256(), key, (int)klen, (const uint8_t *)sts, strlen(sts), mac, &mlen);
    OPENSSL_cleanse(key, klen);
    free(key);
    if (!r)
        return uw_fail(err, UW_E_INTERNAL, "HMAC-SHA256 failed");
    *sig_b64 = uw_base64_encode(mac, mlen);
    return 0;
}

int uw_az_authorization(const char *account, const char *key_b64, const char *verb,
                        const uw_az_header *h, size_t n, const char *path, const char *query,
                        char **out, uw_err *err)
{
    char *sts = uw_az_string_to_sign(verb, h, n, account, path, query);
    char *sig = NULL;
    int rc = uw_az_sign(key_b64, sts, &sig, err);
    free(sts);
    if (rc < 0)
        return -1;
    *out = uw_sprintf("SharedKey %s:%s", account, sig);
    free(sig);
    return 0;
}

int uw_az_endpoint(const char *endpoint, const char *account, const char *container,
                   bool path_style, int port, char **base_url, char **url_root, uw_err *err)
{
    char *def = uw_sprintf("%s.blob.core.windows.net", account);
    const char *scheme = "https", *host = endpoint ? endpoint : def;
    if (!strncmp(host, "https://", 8)) {
        host += 8;
    } else if (!strncmp(host, "http://", 7)) {
        scheme = "http";
        host += 7;
    } else if (strstr(host, "://")) {
        free(def);
        return uw_fail(err, UW_E_OPTION, "only http:// and https:// endpoints are supported");
    }
    char *hp = uw_strdup(host);
    free(def);
    size_t n = strlen(hp);
    while (n && hp[n - 1] == '/')
        hp[--n] = '\0';
    if (!*hp || hp[0] == ':' || strpbrk(hp, "/?#@ ")) {
        free(hp);
        return uw_fail(err, UW_E_OPTION,
                       "the endpoint must be [http[s]://]host[:port] without a path (for "
                       "Azurite's http://host:port/account URLs use uri-style=path)");
    }
    if (port > 0) {
        /* Drop the endpoint's own port: "host:1", "[::1]:1". */
        char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
        if (colon)
            *(hp[0] == '[' ? colon + 1 : colon) = '\0';
        char *with = uw_sprintf("%s:%d", hp, port);
        free(hp);
        hp = with;
    }
    *base_url = uw_sprintf("%s://%s", scheme, hp);
    free(hp);
    *url_root =
        path_style ? uw_sprintf("/%s/%s", account, container) : uw_sprintf("/%s", container);
    return 0;
}

char *uw_az_block_id(uint32_t i)
{
    /* 16 bytes: base64 with "==" padding, which must be percent-encoded in
     * the URL (Azurite and Azure both decode it before signing). */
    char raw[32];
    int n = snprintf(raw, sizeof raw, "uwblk-%010u", (unsigned)i);
    return uw_base64_encode(raw, (size_t)n);
}
