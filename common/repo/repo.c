#include "repo/repo.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "io/compress.h"
#include "io/object.h"
#include "repo/keycache.h"

#include <openssl/crypto.h>

int uw_repos_open(const uw_config *cfg, uw_repo **repos, int *count, uw_err *err)
{
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    if (!stanza)
        return uw_fail(err, UW_E_OPTION, "option 'stanza' is required");
    uw_repo *list = uw_calloc(UW_REPO_MAX, sizeof *list);
    int n = 0;
    int only = uw_cfg_isset(cfg, UW_OPT_REPO) ? (int)uw_cfg_int(cfg, UW_OPT_REPO) : 0;
    for (int i = 1; i <= UW_REPO_MAX; i++) {
        if (i > 1 && !uw_cfg_repo_isset(cfg, i, UW_OPT_REPO_PATH) &&
            !uw_cfg_repo_isset(cfg, i, UW_OPT_REPO_TYPE))
            continue;
        if (only && only != i)
            continue;
        uw_storage *st = uw_storage_open(cfg, i, err);
        if (!st) {
            uw_repos_close(list, n);
            return -1;
        }
        list[n].st = st;
        list[n].stanza = uw_strdup(stanza);
        n++;
    }
    if (!n) {
        free(list);
        return uw_fail(err, UW_E_OPTION, "option 'repo': repo%d is not configured", only);
    }
    *repos = list;
    *count = n;
    return 0;
}

/* The user name of uid, or its number. */
static void user_name(uid_t uid, char *buf, size_t len)
{
    struct passwd pw, *pwp = NULL;
    char pwbuf[1024];
    if (getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp)
        snprintf(buf, len, "%s", pw.pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)uid);
}

int uw_repo_check_writer(const uw_config *cfg, uw_err *err)
{
    if (geteuid() != 0)
        return 0;
    int only = uw_cfg_isset(cfg, UW_OPT_REPO) ? (int)uw_cfg_int(cfg, UW_OPT_REPO) : 0;
    for (int i = 1; i <= UW_REPO_MAX; i++) {
        if (i > 1 && !uw_cfg_repo_isset(cfg, i, UW_OPT_REPO_PATH) &&
            !uw_cfg_repo_isset(cfg, i, UW_OPT_REPO_TYPE))
            continue;
        const char *type = uw_cfg_repo_str(cfg, i, UW_OPT_REPO_TYPE);
        const char *path = uw_cfg_repo_str(cfg, i, UW_OPT_REPO_PATH);
        if ((only && only != i) || !path || (type && strcmp(type, "posix") != 0))
            continue;
        struct stat sb;
        if (stat(path, &sb) < 0)
            return uw_fail(err, UW_E_OPTION,
                           "refusing to run as root: repository repo%d '%s' does not exist; "
                           "create it owned by the user PostgreSQL runs as and run as that user "
                           "(e.g. sudo -u postgres ...)",
                           i, path);
        if (sb.st_uid != 0) {
            char owner[256];
            user_name(sb.st_uid, owner, sizeof owner);
            return uw_fail(err, UW_E_OPTION,
                           "refusing to run as root: repository repo%d '%s' belongs to '%s'; run "
                           "as that user (sudo -u %s ...)",
                           i, path, owner, owner);
        }
    }
    return 0;
}

int uw_repo_clone(const uw_config *cfg, const uw_repo *src, uw_repo *dst, uw_err *err)
{
    memset(dst, 0, sizeof *dst);
    dst->st = uw_storage_open(cfg, src->st->repo, err);
    if (!dst->st)
        return -1;
    dst->stanza = uw_strdup(src->stanza);
    dst->info = src->info;
    dst->have_info = src->have_info;
    dst->key = src->key;
    dst->have_key = src->have_key;
    return 0;
}

void uw_repo_release(uw_repo *r)
{
    uw_storage_close(r->st);
    free(r->stanza);
    uw_key_wipe(&r->key);
    memset(r, 0, sizeof *r);
}

void uw_repos_close(uw_repo *repos, int count)
{
    for (int i = 0; i < count; i++) {
        uw_storage_close(repos[i].st);
        free(repos[i].stanza);
        uw_key_wipe(&repos[i].key);
    }
    free(repos);
}

char *uw_stanza_info_render(const uw_stanza_info *info, const uw_key *key)
{
    char *body = uw_sprintf("[stanza]\nformat=%d\nsystem-id=%" PRIu64 "\npg-version=%d\n"
                            "wal-segment-size=%" PRIu32 "\ncreated=%" PRId64 "\ncipher-type=%s\n",
                            UW_STANZA_FORMAT, info->system_id, info->pg_version, info->wal_seg_size,
                            info->created, info->cipher_type);
    if (strcmp(info->cipher_type, "none") != 0) {
        char salt[2 * UW_SALT_LEN + 1];
        uw_hex(info->kdf.salt, UW_SALT_LEN, salt);
        char *enc = uw_sprintf("%skdf-salt=%s\nkdf-n=%" PRIu64 "\nkdf-r=%" PRIu32 "\nkdf-p=%" PRIu32
                               "\nkey-check=%s\n",
                               body, salt, info->kdf.n, info->kdf.r, info->kdf.p, info->key_check);
        free(body);
        body = enc;
        /* Everything above, cipher-type and KDF parameters included, is
         * authenticated with a key only the passphrase gives. */
        uint8_t mac[32];
        char mhex[65];
        if (key)
            uw_hmac(key->meta, body, strlen(body), mac);
        else
            memset(mac, 0, sizeof mac); /* fails authentication: never written by the tools */
        uw_hex(mac, 32, mhex);
        enc = uw_sprintf("%smac=%s\n", body, mhex);
        free(body);
        body = enc;
    }
    uint8_t d[32];
    char hex[65];
    uw_sha256(body, strlen(body), d);
    uw_hex(d, 32, hex);
    char *text = uw_sprintf("%schecksum=%s\n", body, hex);
    free(body);
    return text;
}

int uw_stanza_info_auth(const char *text, const uw_key *key, uw_err *err)
{
    const char *m = strstr(text, "\nmac=");
    if (!m)
        return uw_fail(err, UW_E_DECRYPT, "encrypted stanza info carries no authentication code");
    m++;
    uint8_t mac[32];
    char hex[65];
    uw_hmac(key->meta, text, (size_t)(m - text), mac);
    uw_hex(mac, 32, hex);
    /* The mac covers everything before it, and only the checksum may follow:
     * a line appended after it would otherwise override an authenticated one. */
    if (strnlen(m + 4, 65) < 65 || CRYPTO_memcmp(hex, m + 4, 64) != 0 || m[68] != '\n' ||
        strncmp(m + 69, "checksum=", 9) != 0)
        return uw_fail(err, UW_E_DECRYPT, "stanza info failed authentication (tampered)");
    return 0;
}

int uw_stanza_info_parse(const char *text, uw_stanza_info *info, uw_err *err)
{
    memset(info, 0, sizeof *info);
    snprintf(info->cipher_type, sizeof info->cipher_type, "none");
    const char *ck = strstr(text, "checksum=");
    if (!ck || (ck != text && ck[-1] != '\n'))
        return uw_fail(err, UW_E_REPO_FORMAT, "stanza info has no checksum");
    uint8_t d[32];
    char hex[65];
    uw_sha256(text, (size_t)(ck - text), d);
    uw_hex(d, 32, hex);
    if (strncmp(ck + 9, hex, 64) != 0)
        return uw_fail(err, UW_E_REPO_FORMAT, "stanza info failed its checksum (corrupt)");
    char *copy = uw_strdup(text);
    copy[ck - text] = '\0';
    int rc = 0;
    bool have_sysid = false, have_seg = false, have_format = false;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '[' || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "format")) {
            char *end;
            long f = strtol(v, &end, 10);
            if (!*v || *end || f < 1)
                rc = uw_fail(err, UW_E_REPO_FORMAT, "stanza info has a malformed format");
            else if (f != UW_STANZA_FORMAT)
                rc = uw_fail(err, UW_E_FORMAT_VERSION,
                             "stanza info format %ld is not supported (this version reads %d: "
                             "create a new stanza)",
                             f, UW_STANZA_FORMAT);
            have_format = true;
        } else if (!strcmp(k, "system-id"))
            info->system_id = strtoull(v, NULL, 10), have_sysid = true;
        else if (!strcmp(k, "pg-version"))
            info->pg_version = atoi(v);
        else if (!strcmp(k, "wal-segment-size"))
            info->wal_seg_size = (uint32_t)strtoul(v, NULL, 10), have_seg = true;
        else if (!strcmp(k, "created"))
            info->created = strtoll(v, NULL, 10);
        else if (!strcmp(k, "cipher-type"))
            snprintf(info->cipher_type, sizeof info->cipher_type, "%s", v);
        else if (!strcmp(k, "kdf-salt")) {
            if (uw_unhex(v, info->kdf.salt, UW_SALT_LEN) < 0)
                rc = uw_fail(err, UW_E_REPO_FORMAT, "stanza info has a malformed kdf-salt");
        } else if (!strcmp(k, "kdf-n"))
            info->kdf.n = strtoull(v, NULL, 10);
        else if (!strcmp(k, "kdf-r"))
            info->kdf.r = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "kdf-p"))
            info->kdf.p = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "key-check"))
            snprintf(info->key_check, sizeof info->key_check, "%s", v);
        if (rc)
            break;
    }
    free(copy);
    if (rc)
        return rc;
    if (!have_format)
        return uw_fail(err, UW_E_REPO_FORMAT, "stanza info has no format line");
    if (!have_sysid || !have_seg || !uw_wal_seg_size_valid(info->wal_seg_size))
        return uw_fail(err, UW_E_REPO_FORMAT, "stanza info lacks system-id or wal-segment-size");
    return 0;
}

static char *info_path(const uw_repo *r)
{
    return uw_sprintf("%s/stanza.info", r->stanza);
}

int uw_repo_load(uw_repo *r, const uw_config *cfg, uw_err *err)
{
    uw_buf buf = {0};
    char *path = info_path(r);
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        buf.len = 0;
        rc = uw_storage_get_max(r->st, path, &buf, UW_STANZA_INFO_MAX, err);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    if (rc < 0) {
        if (err->code == UW_E_NOT_FOUND)
            uw_fail(err, UW_E_STANZA,
                    "stanza '%s' does not exist in %s: run 'ue-pitr --stanza %s stanza-create'",
                    r->stanza, r->st->desc, r->stanza);
        goto done;
    }
    if ((rc = uw_stanza_info_parse(buf.len ? (char *)buf.data : "", &r->info, err)) < 0) {
        uw_wrap(err, "%s/%s", r->st->desc, path);
        goto done;
    }
    const char *pass = uw_cfg_str(cfg, UW_OPT_CIPHER_PASS);
    if (strcmp(r->info.cipher_type, "none") == 0) {
        /* Whoever can write the repository can rewrite a keyless file: a
         * configuration that expects encryption never accepts a plain stanza. */
        const char *want = uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE);
        if ((want && strcmp(want, "none") != 0) || (pass && *pass)) {
            rc = uw_fail(err, UW_E_DECRYPT,
                         "stanza '%s' in %s says it is not encrypted but cipher-%s is configured: "
                         "refusing a possible downgrade (was stanza.info replaced?)",
                         r->stanza, r->st->desc,
                         want && strcmp(want, "none") != 0 ? "type" : "pass");
            goto done;
        }
    } else if (strcmp(r->info.cipher_type, "aes-256-gcm") != 0) {
        rc = uw_fail(err, UW_E_FORMAT_VERSION, "stanza '%s' in %s uses unknown cipher-type '%s'",
                     r->stanza, r->st->desc, r->info.cipher_type);
        goto done;
    }
    r->have_info = true;
    if (strcmp(r->info.cipher_type, "none") != 0) {
        if (!pass) {
            r->have_info = false;
            rc = uw_fail(err, UW_E_CRYPTO,
                         "stanza '%s' in %s is encrypted: set cipher-pass in the config file or "
                         "UE_WAL_CIPHER_PASS",
                         r->stanza, r->st->desc);
            goto done;
        }
        /* ue-wal-push/fetch run per segment: reuse the derived key (see
         * keycache.h), but only once it passes the key check below. */
        bool cache = uw_keycache_enabled(cfg);
        bool cached = cache && uw_keycache_get(cfg, r->stanza, &r->info.kdf, &r->key);
        char check[65];
        if (cached) {
            uw_key_check(&r->key, check);
            if (strcmp(check, r->info.key_check) != 0) {
                uw_log(UW_LOG_DEBUG, "key cache entry of stanza '%s' does not verify: dropped",
                       r->stanza);
                uw_keycache_drop(cfg, r->stanza, &r->info.kdf);
                uw_key_wipe(&r->key);
                cached = false;
            } else
                uw_log(UW_LOG_DEBUG, "cipher key of stanza '%s' from the key cache", r->stanza);
        }
        if (!cached && (rc = uw_kdf_derive(pass, &r->info.kdf, &r->key, err)) < 0) {
            r->have_info = false;
            goto done;
        }
        uw_key_check(&r->key, check);
        if (strcmp(check, r->info.key_check) != 0) {
            uw_key_wipe(&r->key);
            r->have_info = false;
            rc = uw_fail(err, UW_E_DECRYPT,
                         "wrong cipher passphrase for stanza '%s' in %s (or tampered stanza info)",
                         r->stanza, r->st->desc);
            goto done;
        }
        if ((rc = uw_stanza_info_auth(buf.len ? (char *)buf.data : "", &r->key, err)) < 0) {
            uw_key_wipe(&r->key);
            r->have_info = false;
            uw_wrap(err, "%s/%s", r->st->desc, path);
            goto done;
        }
        r->have_key = true;
        if (cache && !cached)
            uw_keycache_put(cfg, r->stanza, &r->info.kdf, &r->key);
    }
    rc = 0;
done:
    free(path);
    uw_buf_free(&buf);
    return rc;
}

int uw_repo_save_info(uw_repo *r, const uw_stanza_info *info, const uw_key *key, uw_err *err)
{
    char *text = uw_stanza_info_render(info, key);
    char *path = info_path(r);
    int rc = uw_storage_put(r->st, path, text, strlen(text), err);
    free(path);
    free(text);
    return rc;
}

int uw_repo_meta_put(uw_repo *r, const char *path, const char *bind, const char *text, uw_err *err)
{
    if (!r->have_key)
        return uw_storage_put(r->st, path, text, strlen(text), err);
    uw_obj_write_opts o = {
        UW_OBJ_META, r->info.system_id, uw_compressor_by_name("zstd"), 3, 1, &r->key, NULL, bind};
    uw_sink *dest = uw_storage_write(r->st, path, err);
    uw_sink *w = dest ? uw_object_writer(&o, dest, NULL, err) : NULL;
    int rc = w ? uw_sink_write(w, text, strlen(text), err) : -1;
    if (rc == 0)
        rc = uw_sink_finish(w, err);
    uw_sink_free(w);
    if (rc < 0)
        uw_wrap(err, "%s", r->st->desc);
    return rc;
}

int uw_repo_meta_get(uw_repo *r, const char *path, const char *bind, size_t max, uw_buf *out,
                     uw_err *err)
{
    if (!r->have_key)
        return uw_storage_get_max(r->st, path, out, max, err);
    uw_obj_read_opts o = {r->info.system_id, NULL, &r->key, path, false, bind, max, false};
    uw_sink *reader = uw_object_reader(&o, uw_buf_sink(out), NULL);
    int rc = uw_storage_read(r->st, path, reader, err);
    if (rc == 0)
        rc = uw_sink_finish(reader, err);
    uw_sink_free(reader);
    return rc;
}

char *uw_repo_wal_dir(const uw_repo *r, const char *walname)
{
    uw_wal_name w;
    if (uw_wal_parse(walname, &w, NULL) == 0 && w.kind == UW_WAL_HISTORY)
        return uw_sprintf("%s/archive/history", r->stanza);
    return uw_sprintf("%s/archive/%.16s", r->stanza, walname);
}

typedef struct {
    const char *prefix;
    size_t plen;
    char *found;
    int matches;
} find_ctx;

static int find_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    find_ctx *f = ctx;
    if (is_dir || strncmp(name, f->prefix, f->plen) != 0)
        return 0;
    /* <walname>-<64 hex>[ext] */
    const char *sha = name + f->plen;
    for (int i = 0; i < 64; i++)
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            return 0;
    if (sha[64] != '\0' && sha[64] != '.')
        return 0;
    f->matches++;
    if (!f->found)
        f->found = uw_strdup(name);
    return 0;
}

int uw_repo_wal_find(uw_repo *r, const char *walname, char **object, char sha_hex[65], uw_err *err)
{
    char *dir = uw_repo_wal_dir(r, walname);
    char *prefix = uw_sprintf("%s-", walname);
    find_ctx f = {prefix, strlen(prefix), NULL, 0};
    int rc;
    for (int attempt = 0;; attempt++) {
        free(f.found);
        f.found = NULL;
        f.matches = 0;
        rc = uw_storage_list_prefix(r->st, dir, prefix, find_cb, &f, err);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    if (rc == 0 && f.matches > 1)
        rc = uw_fail(err, UW_E_CORRUPT,
                     "%s holds %d different objects for '%s': the archive is inconsistent",
                     r->st->desc, f.matches, walname);
    if (rc == 0 && f.matches == 1) {
        memcpy(sha_hex, f.found + f.plen, 64);
        sha_hex[64] = '\0';
        *object = uw_sprintf("%s/%s", dir, f.found);
        rc = 1;
    }
    free(f.found);
    free(prefix);
    free(dir);
    return rc;
}

int uw_repo_wal_read_failed(uw_repo *r, const char *walname, const char *object, uw_err *err)
{
    /* Missing, refused, or a link or non-regular file where the object is
     * listed: the repository holds it but cannot deliver it. */
    if (err->code != UW_E_NOT_FOUND && err->code != UW_E_STORAGE_DENIED &&
        err->code != UW_E_REPO_FORMAT)
        return -1;
    uw_err cause = *err, e;
    uw_err_clear(&e);
    char *again = NULL, sha_hex[65];
    int found = uw_repo_wal_find(r, walname, &again, sha_hex, &e);
    bool listed = found == 1 && strcmp(again, object) == 0;
    free(again);
    if (found < 0 && e.code == UW_E_REPO_FORMAT) {
        listed = true; /* the listing itself meets the planted link or file */
    } else if (found < 0) {
        *err = e;
        return -1;
    }
    if (cause.code == UW_E_NOT_FOUND && !listed)
        return -1; /* removed since it was listed (expire): a miss */
    return uw_fail(err, UW_E_UNREADABLE, "%s holds '%s' for %s but it cannot be read: %s",
                   r->st->desc, object, walname, cause.msg);
}

void uw_repo_content_id_hex(const uw_repo *r, const uint8_t sha256[32], char out[65])
{
    uint8_t id[32];
    uw_content_id(r->have_key ? &r->key : NULL, sha256, id);
    uw_hex(id, 32, out);
}

bool uw_retry_wait(int attempt, const uw_err *err)
{
    /* Only storage errors are transient; four attempts over ~1.5 s, jittered so
     * parallel workers do not retry in lock step. */
    if (!err || err->code != UW_E_STORAGE || err->retried || attempt >= 3)
        return false;
    long base_ms = 100L << (2 * attempt); /* 100, 400, 1600 */
    long ms = base_ms / 2 + random() % (base_ms / 2 + 1);
    uw_log(UW_LOG_WARN, "%s; retrying in %ld ms", err->msg, ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return true;
}

char *uw_repo_backup_lock_path(const uw_repo *r)
{
    const char *id = strchr(r->st->desc, ' ');
    id = id ? id + 1 : r->st->desc;
    char *key = uw_sprintf("%s\n%s", id, r->stanza);
    uint8_t d[32];
    uw_sha256(key, strlen(key), d);
    free(key);
    char hex[65];
    uw_hex(d, 32, hex);
    return uw_sprintf("/tmp/ue-wal-%s.%d.%.12s.backup.lock", r->stanza, (int)getuid(), hex);
}
