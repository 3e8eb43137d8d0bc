/* Azure Blob storage driver (repoN-type = azure).
 *
 * Objects are block blobs named <repoN-path prefix>/<path> in one container.
 *   stat    Get Blob Properties (HEAD)
 *   list    List Blobs with prefix + delimiter "/", following NextMarker
 *   read    Get Blob, streamed into the destination sink
 *   write   buffered up to repoN-azure-block-size: a smaller object is one Put
 *           Blob; a larger one is Put Block per block (one block in memory at
 *           a time) and Put Block List on finish. Nothing is visible before
 *           finish (uncommitted blocks are discarded by the service), and
 *           every upload is verified afterwards with Get Blob Properties
 *           (Content-Length, and Content-MD5 when the service reports one),
 *           except a Put Blob whose answer carries the Content-MD5 sent
 *           (az_finish says why).
 *   remove  Delete Blob
 * Authentication: SharedKey (repoN-azure-account + repoN-azure-key) signed per
 * attempt (see azure_auth.h), or a SAS token (repoN-azure-sas) appended to
 * every URL.
 *
 * A uw_http client must not be shared between threads, and one storage may be
 * used by several worker threads (uw_pool): each operation checks a client
 * out of a small mutex-protected free list and returns it afterwards. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "storage/azure_auth.h"
#include "core/codec.h"
#include "core/xml.h"
#include "storage/http.h"
#include "core/log.h"
#include "storage/storage.h"
#include "storage/storage_azure.h"

#define AZ_VERSION "2021-08-06"
#define AZ_IDLE_MAX 16
#define AZ_MAX_BLOCKS 50000

typedef struct {
    char *account;
    char *key; /* base64 account key (SharedKey), or NULL */
    char *sas; /* SAS token without '?', or NULL */
    char *container;
    char *base_url; /* scheme://host[:port] */
    char *url_root; /* encoded URL path of the container: "/cont" or "/acct/cont" */
    char *prefix;   /* blob name prefix: "" or "some/path/" */
    size_t block_size;
    int list_max; /* maxresults for List Blobs; 0 = service default */
    uw_http_opts opts;
    pthread_mutex_t mu;
    uw_http *idle[AZ_IDLE_MAX];
    int nidle;
} az_impl;

/* ------------------------------------------------------------ clients -- */

static uw_http *az_client(az_impl *az, uw_err *err)
{
    uw_http *h = NULL;
    pthread_mutex_lock(&az->mu);
    if (az->nidle)
        h = az->idle[--az->nidle];
    pthread_mutex_unlock(&az->mu);
    return h ? h : uw_http_new(&az->opts, err);
}

static void az_release(az_impl *az, uw_http *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&az->mu);
    if (az->nidle < AZ_IDLE_MAX) {
        az->idle[az->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&az->mu);
    uw_http_free(h);
}

/* ------------------------------------------------------------- errors -- */

static bool az_retryable(const char *code)
{
    static const char *const codes[] = {"ServerBusy", "OperationTimedOut", "InternalError"};
    for (size_t i = 0; code && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

void uw_azure_parse_error(const uw_http_response *resp, uw_http_service_error *out)
{
    const char *b = (const char *)resp->body.data;
    const char *end = b ? b + resp->body.len : NULL;
    out->code = b ? uw_xml_get(b, end, "Code", NULL) : NULL;
    out->message = b ? uw_xml_get(b, end, "Message", NULL) : NULL;
    const char *hc = uw_http_response_header(resp, "x-ms-error-code");
    if (!out->code && hc)
        out->code = uw_strdup(hc);
    /* Azure appends "\nRequestId:...\nTime:..." to its messages: drop that. */
    char *rid = out->message ? strstr(out->message, "\nRequestId:") : NULL;
    if (rid)
        *rid = '\0';
    out->retry = az_retryable(out->code);
}

/* ----------------------------------------------------------- requests -- */

/* One request: URL parts kept for signing. */
typedef struct {
    az_impl *az;
    const char *url_path; /* encoded */
    const char *query;    /* encoded, without '?', may be NULL */
} az_sign_ctx;

/* Per attempt: a fresh x-ms-date and, with SharedKey, the Authorization over
 * every header that will be sent. */
static int az_prepare(void *ctx, const uw_http_request *req, uw_http_headers *out, uw_err *err)
{
    az_sign_ctx *c = ctx;
    char date[32];
    uw_date_rfc1123(date);
    uw_http_headers_add(out, "x-ms-date", "%s", date);
    uw_http_headers_add(out, "x-ms-version", "%s", AZ_VERSION);
    if (!c->az->key)
        return 0;
    size_t n = req->headers.n + out->n + 1;
    uw_az_header *h = uw_calloc(n, sizeof *h);
    char **names = uw_calloc(n, sizeof *names);
    size_t m = 0;
    const uw_http_headers *lists[2] = {&req->headers, out};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            const char *line = lists[l]->v[i];
            const char *colon = strchr(line, ':');
            if (!colon)
                continue;
            names[m] = uw_strndup(line, (size_t)(colon - line));
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            h[m].name = names[m];
            h[m].value = v;
            m++;
        }
    }
    /* libcurl sends the body length itself; the signature must cover it. */
    char clen[32];
    if (req->body_len) {
        snprintf(clen, sizeof clen, "%zu", req->body_len);
        h[m].name = "Content-Length";
        h[m].value = clen;
        m++;
    }
    char *auth = NULL;
    int rc = uw_az_authorization(c->az->account, c->az->key, req->method, h, m, c->url_path,
                                 c->query, &auth, err);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(h);
    if (rc < 0)
        return -1;
    uw_http_headers_add(out, "Authorization", "%s", auth);
    free(auth);
    return 0;
}

static char *az_url(const az_impl *az, const char *url_path, const char *query)
{
    bool q = query && *query;
    return uw_sprintf("%s%s%s%s%s%s", az->base_url, url_path, q || az->sas ? "?" : "",
                      q ? query : "", q && az->sas ? "&" : "", az->sas ? az->sas : "");
}

/* Encoded URL path of a repository path. */
static char *az_blob_path(const az_impl *az, const char *path)
{
    char *name = uw_sprintf("%s%s", az->prefix, path);
    char *enc = uw_uri_encode(name, strlen(name), true);
    char *p = uw_sprintf("%s/%s", az->url_root, enc);
    free(enc);
    free(name);
    return p;
}

/* A missing container is a configuration problem, not a missing object. */
static int az_container_missing(const az_impl *az, const uw_http_response *resp, uw_err *err)
{
    return uw_fail(err, UW_E_STORAGE_DENIED,
                   "container '%s' does not exist in account '%s' (HTTP %ld ContainerNotFound)",
                   az->container, az->account, resp->status);
}

static bool is_container_missing(const uw_http_response *resp)
{
    if (resp->status != 404)
        return false;
    /* With UW_HTTP_404_OK the HTTP layer leaves error_code unset: a HEAD
     * carries the code in a header only. */
    const char *code =
        resp->error_code ? resp->error_code : uw_http_response_header(resp, "x-ms-error-code");
    return code && strcmp(code, "ContainerNotFound") == 0;
}

/* Run one request synchronously with a checked-out client. */
static int az_exec(az_impl *az, uw_http_request *req, const char *url_path, const char *query,
                   uw_http_response *resp, uw_err *err)
{
    uw_http *h = az_client(az, err);
    if (!h)
        return -1;
    az_sign_ctx c = {az, url_path, query};
    char *url = az_url(az, url_path, query);
    req->url = url;
    req->prepare = az_prepare;
    req->prepare_ctx = &c;
    int rc = uw_http_exec(h, req, resp, err);
    if (rc < 0 && is_container_missing(resp))
        rc = az_container_missing(az, resp, err);
    az_release(az, h);
    req->url = NULL;
    free(url);
    return rc;
}

/* --------------------------------------------------------------- open -- */

/* Names the option in buf, for messages, and passes its id on. */
static uw_opt_id opt(int repo, uw_opt_id id, char *buf, size_t len)
{
    uw_opt_name(id, repo, buf, len);
    return id;
}

static void az_free(az_impl *az)
{
    if (!az)
        return;
    for (int i = 0; i < az->nidle; i++)
        uw_http_free(az->idle[i]);
    pthread_mutex_destroy(&az->mu);
    free(az->account);
    if (az->key)
        OPENSSL_cleanse(az->key, strlen(az->key));
    free(az->key);
    if (az->sas)
        OPENSSL_cleanse(az->sas, strlen(az->sas));
    free(az->sas);
    free(az->container);
    free(az->base_url);
    free(az->url_root);
    free(az->prefix);
    free((char *)az->opts.ca_file);
    free(az);
}

/* Container names: 3-63 of [a-z0-9-], starting and ending with a letter or
 * digit, no "--" (the service's rule; checked here for a clear message). */
static bool container_valid(const char *c)
{
    size_t n = strlen(c);
    if (n < 3 || n > 63 || c[0] == '-' || c[n - 1] == '-' || strstr(c, "--"))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '-'))
            return false;
    return true;
}

static int az_open(uw_storage *st, const uw_config *cfg, int repo, uw_err *err)
{
    char o[UW_OPT_NAME_MAX];
    const char *account =
        uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_AZURE_ACCOUNT, o, sizeof o));
    if (!account)
        return uw_fail(err, UW_E_OPTION, "option '%s' is required for an azure repository", o);
    for (const char *p = account; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return uw_fail(err, UW_E_OPTION,
                           "option '%s': '%s' is not a storage account name (lower-case letters "
                           "and digits)",
                           o, account);
    const char *container =
        uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_AZURE_CONTAINER, o, sizeof o));
    if (!container)
        return uw_fail(err, UW_E_OPTION, "option '%s' is required for an azure repository", o);
    if (!container_valid(container))
        return uw_fail(err, UW_E_OPTION,
                       "option '%s': '%s' is not a valid container name (3-63 characters: "
                       "lower-case letters, digits and single hyphens)",
                       o, container);
    char ok[UW_OPT_NAME_MAX], os[UW_OPT_NAME_MAX];
    const char *key = uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_AZURE_KEY, ok, sizeof ok));
    const char *sas = uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_AZURE_SAS, os, sizeof os));
    if (key && sas)
        return uw_fail(err, UW_E_OPTION, "options '%s' and '%s' are both set: use one", ok, os);
    if (!key && !sas)
        return uw_fail(err, UW_E_OPTION,
                       "an azure repository needs '%s' (SharedKey) or '%s' (SAS token), in the "
                       "config file or the environment",
                       ok, os);
    if (key) {
        size_t rlen = 0;
        uint8_t *raw = uw_base64_decode(key, &rlen);
        if (!raw || !rlen) {
            free(raw);
            return uw_fail(err, UW_E_OPTION, "option '%s' is not valid base64", ok);
        }
        OPENSSL_cleanse(raw, rlen);
        free(raw);
    }

    if (sas) {
        while (*sas == '?')
            sas++;
        if (!*sas)
            return uw_fail(err, UW_E_OPTION, "option '%s' is empty", os);
    }
    const char *ep = uw_cfg_repo_str(cfg, repo, opt(repo, UW_OPT_REPO_AZURE_ENDPOINT, o, sizeof o));
    const char *style = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_AZURE_URI_STYLE);
    int port = uw_cfg_repo_isset(cfg, repo, UW_OPT_REPO_STORAGE_PORT)
                   ? (int)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_PORT)
                   : 0;
    char *base_url = NULL, *url_root = NULL;
    if (uw_az_endpoint(ep, account, container, style && !strcmp(style, "path"), port, &base_url,
                       &url_root, err) < 0)
        return uw_wrap(err, "option '%s'", o);

    az_impl *az = uw_calloc(1, sizeof *az);
    pthread_mutex_init(&az->mu, NULL);
    az->account = uw_strdup(account);
    az->key = key ? uw_strdup(key) : NULL;
    az->sas = sas ? uw_strdup(sas) : NULL;
    az->container = uw_strdup(container);
    az->base_url = base_url;
    az->url_root = url_root;
    /* repoN-path: a prefix inside the container ("/" or unset: the root). */
    const char *path = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_PATH);
    while (path && *path == '/')
        path++;
    if (path && *path) {
        char *p = uw_strdup(path);
        size_t pl = strlen(p);
        while (pl && p[pl - 1] == '/')
            p[--pl] = '\0';
        az->prefix = uw_sprintf("%s/", p);
        free(p);
    } else {
        az->prefix = uw_strdup("");
    }
    az->block_size = (size_t)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_AZURE_BLOCK_SIZE);
    /* Test hook: small List Blobs pages exercise the continuation markers. */
    const char *lm = getenv("UW_TEST_AZURE_LIST_MAX");
    az->list_max = lm ? atoi(lm) : 0;

    az->opts.service = "Azure";
    az->opts.parse_error = uw_azure_parse_error;
    az->opts.verify_tls = uw_cfg_repo_bool(cfg, repo, UW_OPT_REPO_STORAGE_VERIFY_TLS);
    const char *ca = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_STORAGE_CA_FILE);
    az->opts.ca_file = ca ? uw_strdup(ca) : NULL;
    az->opts.timeout_sec = (long)uw_cfg_repo_int(cfg, repo, UW_OPT_REPO_STORAGE_TIMEOUT);
    az->opts.retry_max = -1;
    st->impl = az;
    /* "repo2 (azure:account/container/prefix)" */
    st->desc =
        uw_sprintf("repo%d (azure:%s/%s%s%.*s)", repo, account, container, *az->prefix ? "/" : "",
                   (int)(*az->prefix ? strlen(az->prefix) - 1 : 0), az->prefix);
    /* Create one client now: a bad CA file fails here, not on first use. */
    uw_http *h = uw_http_new(&az->opts, err);
    if (!h) {
        az_free(az);
        st->impl = NULL;
        return -1;
    }
    az_release(az, h);
    return 0;
}

static void az_close(uw_storage *st)
{
    az_free(st->impl);
    st->impl = NULL;
}

/* --------------------------------------------------------------- stat -- */

static int az_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    az_impl *az = st->impl;
    char *up = az_blob_path(az, path);
    char *what = uw_sprintf("HEAD '%s'", path);
    uw_http_request req = {0};
    uw_http_response resp = {0};
    req.method = "HEAD";
    req.flags = UW_HTTP_404_OK;
    req.what = what;
    int rc = az_exec(az, &req, up, NULL, &resp, err);
    if (rc == 0 && resp.status == 404) {
        rc = is_container_missing(&resp) ? az_container_missing(az, &resp, err) : 0;
    } else if (rc == 0) {
        const char *cl = uw_http_response_header(&resp, "Content-Length");
        char *end = NULL;
        errno = 0;
        unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
        if (!cl || errno || end == cl || *end)
            rc = uw_fail(err, UW_E_STORAGE, "%s: no valid Content-Length in the response", what);
        else {
            if (size)
                *size = n;
            rc = 1;
        }
    }
    uw_http_request_clear(&req);
    uw_http_response_clear(&resp);
    free(what);
    free(up);
    return rc;
}

/* --------------------------------------------------------------- list -- */

int uw_azure_list_parse(const char *xml, size_t len, const char *prefix, const char *what,
                        uw_list_cb cb, void *ctx, bool *stop, char **marker, uw_err *err)
{
    size_t plen = strlen(prefix);
    const char *end = xml ? xml + len : NULL;
    const char *blobs, *blobs_end;
    *marker = NULL;
    if (!xml || !uw_xml_find(xml, end, "EnumerationResults", &blobs, &blobs_end, NULL))
        return uw_fail(err, UW_E_STORAGE, "%s: unexpected response (no EnumerationResults)", what);
    if (uw_xml_find(xml, end, "Blobs", &blobs, &blobs_end, NULL)) {
        /* Blobs and BlobPrefixes, in the order the service returns them.
         * The next element of each kind is searched for only once it
         * has been consumed, so a page is scanned in linear time. */
        const char *nb = NULL, *nbe = NULL, *nba = NULL, *np = NULL, *npe = NULL, *npa = NULL;
        bool has_blob = uw_xml_find(blobs, blobs_end, "Blob", &nb, &nbe, &nba);
        bool has_pfx = uw_xml_find(blobs, blobs_end, "BlobPrefix", &np, &npe, &npa);
        while (!*stop && (has_blob || has_pfx)) {
            bool is_dir = has_pfx && (!has_blob || np < nb);
            const char *body = is_dir ? np : nb, *body_end = is_dir ? npe : nbe;
            if (is_dir)
                has_pfx = uw_xml_find(npa, blobs_end, "BlobPrefix", &np, &npe, &npa);
            else
                has_blob = uw_xml_find(nba, blobs_end, "Blob", &nb, &nbe, &nba);
            char *name = uw_xml_get(body, body_end, "Name", NULL);
            if (!name || strncmp(name, prefix, plen) != 0) {
                free(name);
                continue;
            }
            char *rel = name + plen;
            size_t rl = strlen(rel);
            if (is_dir && rl && rel[rl - 1] == '/')
                rel[--rl] = '\0';
            uint64_t size = 0;
            uw_storage_set_list_ident(NULL);
            if (!is_dir) {
                char *cl = uw_xml_get(body, body_end, "Content-Length", NULL);
                size = cl ? strtoull(cl, NULL, 10) : 0;
                free(cl);
                char *etag = uw_xml_get(body, body_end, "Etag", NULL);
                char *lm = uw_xml_get(body, body_end, "Last-Modified", NULL);
                char *ident = uw_sprintf("%s %s", etag ? etag : "", lm ? lm : "");
                uw_storage_set_list_ident(ident);
                free(ident);
                free(etag);
                free(lm);
            }
            if (rl && !strchr(rel, '/') && cb(ctx, rel, is_dir, size))
                *stop = true;
            free(name);
        }
    }
    if (!*stop) {
        *marker = uw_xml_get(xml, end, "NextMarker", NULL);
        if (*marker && !**marker) {
            free(*marker);
            *marker = NULL;
        }
        if (!*marker)
            *stop = true;
    }
    return 0;
}

/* The entries directly under dir whose names begin with name_prefix ("":
 * all of them). The prefix goes to the service, which answers with those
 * alone: finding one WAL segment's object (every push and fetch does) then
 * costs a listing of one or two blobs, not of the whole directory. */
static int az_list_prefix(uw_storage *st, const char *dir, const char *name_prefix, uw_list_cb cb,
                          void *ctx, uw_err *err)
{
    az_impl *az = st->impl;
    char *prefix = *dir ? uw_sprintf("%s%s/", az->prefix, dir) : uw_strdup(az->prefix);
    char *full = uw_sprintf("%s%s", prefix, name_prefix);
    size_t plen = strlen(full);
    char *eprefix = uw_uri_encode(full, plen, false);
    free(full);
    char *marker = NULL;
    char *what = uw_sprintf("List Blobs '%s'", *dir ? dir : "/");
    int rc = 0;
    bool stop = false;
    while (rc == 0 && !stop) {
        char *emarker = marker ? uw_uri_encode(marker, strlen(marker), false) : NULL;
        char maxr[32] = "";
        if (az->list_max > 0)
            snprintf(maxr, sizeof maxr, "&maxresults=%d", az->list_max);
        char *query = uw_sprintf("restype=container&comp=list%s%s&delimiter=%%2F%s%s%s",
                                 plen ? "&prefix=" : "", plen ? eprefix : "",
                                 emarker ? "&marker=" : "", emarker ? emarker : "", maxr);
        free(emarker);
        uw_http_request req = {0};
        uw_http_response resp = {0};
        req.method = "GET";
        req.what = what;
        rc = az_exec(az, &req, az->url_root, query, &resp, err);
        free(query);
        free(marker);
        marker = NULL;
        if (rc == 0)
            rc = uw_azure_list_parse((const char *)resp.body.data, resp.body.len, prefix, what, cb,
                                     ctx, &stop, &marker, err);
        uw_http_request_clear(&req);
        uw_http_response_clear(&resp);
    }
    free(marker);
    free(what);
    free(eprefix);
    free(prefix);
    return rc;
}

static int az_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    return az_list_prefix(st, dir, "", cb, ctx, err);
}

/* --------------------------------------------------------------- read -- */

static int az_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    az_impl *az = st->impl;
    char *up = az_blob_path(az, path);
    char *what = uw_sprintf("GET '%s'", path);
    uw_http_request req = {0};
    uw_http_response resp = {0};
    req.method = "GET";
    req.sink = dest;
    req.what = what;
    int rc = az_exec(az, &req, up, NULL, &resp, err);
    if (rc < 0 && err && err->code == UW_E_NOT_FOUND)
        uw_fail(err, UW_E_NOT_FOUND, "'%s' does not exist", path);
    uw_http_request_clear(&req);
    uw_http_response_clear(&resp);
    free(what);
    free(up);
    return rc;
}

/* -------------------------------------------------------------- write -- */

typedef struct {
    uw_sink base;
    az_impl *az;
    char *path;     /* repository path, for messages */
    char *url_path; /* encoded */
    uint8_t *buf;
    size_t len, cap;
    uint32_t nblocks;
    uint64_t total;
    EVP_MD_CTX *md5;
} az_writer;

static void md5_b64(const uint8_t *data, size_t len, char out[32])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    char *b = uw_base64_encode(d, n);
    snprintf(out, 32, "%s", b);
    free(b);
}

/* *echoed (when not NULL): the answer's Content-MD5 is the one sent, which
 * for a Put Blob is the MD5 the service computed over the blob it stored. */
static int az_put(az_writer *w, const char *query, const void *body, size_t len,
                  const char *extra_name, const char *extra_value, const char *content_type,
                  const char *what, bool *echoed, uw_err *err)
{
    char md5[32];
    md5_b64(body, len, md5);
    uw_http_request req = {0};
    uw_http_response resp = {0};
    req.method = "PUT";
    req.body = body;
    req.body_len = len;
    req.what = what;
    uw_http_headers_add(&req.headers, "Content-Type", "%s", content_type);
    uw_http_headers_add(&req.headers, "Content-MD5", "%s", md5);
    if (extra_name)
        uw_http_headers_add(&req.headers, extra_name, "%s", extra_value);
    int rc = az_exec(w->az, &req, w->url_path, query, &resp, err);
    const char *rmd5 = rc == 0 && echoed ? uw_http_response_header(&resp, "Content-MD5") : NULL;
    if (rmd5 && *rmd5) {
        if (strcmp(rmd5, md5) == 0)
            *echoed = true;
        else
            rc = uw_fail(err, UW_E_STORAGE, "%s: the service reports Content-MD5 %s, sent %s", what,
                         rmd5, md5);
    }
    uw_http_request_clear(&req);
    uw_http_response_clear(&resp);
    return rc;
}

static int az_put_block(az_writer *w, uw_err *err)
{
    if (w->nblocks >= AZ_MAX_BLOCKS)
        return uw_fail(err, UW_E_STORAGE_DENIED,
                       "'%s' needs more than %d blocks of %zu bytes: raise azure-block-size",
                       w->path, AZ_MAX_BLOCKS, w->az->block_size);
    char *id = uw_az_block_id(w->nblocks);
    char *eid = uw_uri_encode(id, strlen(id), false);
    char *query = uw_sprintf("comp=block&blockid=%s", eid);
    char *what = uw_sprintf("Put Block %" PRIu32 " of '%s'", w->nblocks, w->path);
    int rc =
        az_put(w, query, w->buf, w->len, NULL, NULL, "application/octet-stream", what, NULL, err);
    free(what);
    free(query);
    free(eid);
    free(id);
    if (rc == 0) {
        w->nblocks++;
        w->len = 0;
    }
    return rc;
}

static int az_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    az_writer *w = (az_writer *)s;
    EVP_DigestUpdate(w->md5, buf, len);
    w->total += len;
    while (len) {
        if (w->len == w->az->block_size && az_put_block(w, err) < 0)
            return -1;
        size_t room = w->az->block_size - w->len;
        size_t n = len < room ? len : room;
        if (w->len + n > w->cap) {
            /* Grow geometrically up to one block: small objects stay small. */
            size_t cap = w->cap ? w->cap : 64 * 1024;
            while (cap < w->len + n)
                cap *= 2;
            if (cap > w->az->block_size)
                cap = w->az->block_size;
            w->buf = uw_realloc(w->buf, cap);
            w->cap = cap;
        }
        memcpy(w->buf + w->len, buf, n);
        w->len += n;
        buf += n;
        len -= n;
    }
    return 0;
}

/* Get Blob Properties after the upload: the object must be there, whole. */
static int az_verify(az_writer *w, const char *md5, uw_err *err)
{
    char *what = uw_sprintf("verifying '%s'", w->path);
    uw_http_request req = {0};
    uw_http_response resp = {0};
    req.method = "HEAD";
    req.what = what;
    int rc = az_exec(w->az, &req, w->url_path, NULL, &resp, err);
    if (rc < 0) {
        if (err && err->code == UW_E_NOT_FOUND)
            err->code = UW_E_STORAGE;
        uw_wrap(err, "after upload");
    } else {
        const char *cl = uw_http_response_header(&resp, "Content-Length");
        const char *rmd5 = uw_http_response_header(&resp, "Content-MD5");
        if (!cl || strtoull(cl, NULL, 10) != w->total)
            rc = uw_fail(err, UW_E_STORAGE,
                         "%s: Content-Length is %s after uploading %" PRIu64 " bytes", what,
                         cl ? cl : "missing", w->total);
        else if (rmd5 && *rmd5 && strcmp(rmd5, md5) != 0)
            rc = uw_fail(err, UW_E_STORAGE, "%s: Content-MD5 is %s, uploaded %s", what, rmd5, md5);
    }
    uw_http_request_clear(&req);
    uw_http_response_clear(&resp);
    free(what);
    return rc;
}

static int az_finish(uw_sink *s, uw_err *err)
{
    az_writer *w = (az_writer *)s;
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    EVP_DigestFinal_ex(w->md5, d, &dn);
    char *md5 = uw_base64_encode(d, dn);
    int rc;
    bool proven = false;
    if (w->nblocks == 0) {
        char *what = uw_sprintf("Put Blob '%s'", w->path);
        rc = az_put(w, NULL, w->buf ? w->buf : (const uint8_t *)"", w->len, "x-ms-blob-type",
                    "BlockBlob", "application/octet-stream", what, &proven, err);
        free(what);
    } else {
        rc = w->len ? az_put_block(w, err) : 0;
        if (rc == 0) {
            free(w->buf);
            w->buf = NULL;
            w->len = w->cap = 0;
            uw_buf xml = {0};
            const char *head = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
            uw_buf_append(&xml, head, strlen(head));
            for (uint32_t i = 0; i < w->nblocks; i++) {
                char *id = uw_az_block_id(i);
                uw_buf_append(&xml, "<Latest>", 8);
                uw_buf_append(&xml, id, strlen(id));
                uw_buf_append(&xml, "</Latest>", 9);
                free(id);
            }
            uw_buf_append(&xml, "</BlockList>", 12);
            char *what =
                uw_sprintf("Put Block List '%s' (%" PRIu32 " blocks)", w->path, w->nblocks);
            rc = az_put(w, "comp=blocklist", xml.data, xml.len, "x-ms-blob-content-md5", md5,
                        "application/xml", what, NULL, err);
            free(what);
            uw_buf_free(&xml);
        }
    }
    /* A Put Blob answered 201 with the Content-MD5 of every byte sent (the
     * service checked the request's too) stored exactly those bytes, whole,
     * at once: Get Blob Properties could only repeat it, and costs the
     * service one request per object (a backup's thousand small files).
     * Block lists (whose answer's MD5 is of the list), and answers without
     * one, are still verified. */
    if (rc == 0 && !proven)
        rc = az_verify(w, md5, err);
    if (rc == 0)
        uw_log(UW_LOG_DEBUG, "stored '%s' in azure (%" PRIu64 " bytes, %" PRIu32 " blocks)",
               w->path, w->total, w->nblocks);
    free(md5);
    return rc;
}

static void az_destroy(uw_sink *s)
{
    az_writer *w = (az_writer *)s;
    /* Unfinished: the uncommitted blocks are never visible and the service
     * discards them; there is nothing to clean up. */
    EVP_MD_CTX_free(w->md5);
    free(w->buf);
    free(w->path);
    free(w->url_path);
    free(w);
}

static uw_sink *az_write_open(uw_storage *st, const char *path, uw_err *err)
{
    az_impl *az = st->impl;
    az_writer *w = uw_calloc(1, sizeof *w);
    w->base = (uw_sink){az_write, az_finish, az_destroy, NULL, false, NULL};
    w->az = az;
    w->path = uw_strdup(path);
    w->url_path = az_blob_path(az, path);
    w->md5 = EVP_MD_CTX_new();
    if (!w->md5 || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        az_destroy(&w->base);
        uw_fail(err, UW_E_INTERNAL, "unable to initialise MD5");
        return NULL;
    }
    return &w->base;
}

/* ------------------------------------------------------------- remove -- */

static int az_remove(uw_storage *st, const char *path, uw_err *err)
{
    az_impl *az = st->impl;
    char *up = az_blob_path(az, path);
    char *what = uw_sprintf("DELETE '%s'", path);
    uw_http_request req = {0};
    uw_http_response resp = {0};
    req.method = "DELETE";
    req.flags = UW_HTTP_404_OK;
    req.what = what;
    int rc = az_exec(az, &req, up, NULL, &resp, err);
    if (rc == 0 && is_container_missing(&resp))
        rc = az_container_missing(az, &resp, err);
    uw_http_request_clear(&req);
    uw_http_response_clear(&resp);
    free(what);
    free(up);
    return rc;
}

const uw_storage_driver uw_storage_azure = {
    .type = "azure",
    .features = 0,
    .open = az_open,
    .stat = az_stat,
    .list = az_list,
    .list_prefix = az_list_prefix,
    .read = az_read,
    .write = az_write_open,
    .remove = az_remove,
    .close = az_close,
};
