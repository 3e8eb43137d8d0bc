#include "io/object.h"
#include "core/bytes.h"

#include <stdlib.h>
#include <string.h>

#define SKIP_MAGIC 0x184D2A5Eu
#define CIPHER_NONE 0
#define CIPHER_AES256GCM 1

/* Header layout (84 bytes):
 *  0 u32 skippable magic | 4 u32 frame size (76) | 8 "UEW2" | 12 kind | 13 compressor
 * 14 cipher | 15 reserved | 16 u64 system id | 24 u32 chunk | 28 salt[16]
 * 44 name hash[32] | 76 check[8] */
#define HDR_NAME 44
#define HDR_CHECK 76
static void header_check(const uint8_t *hdr, uint8_t out[8])
{
    uint8_t d[32];
    uw_sha256(hdr, HDR_CHECK, d);
    memcpy(out, d, 8);
}

static void name_hash(const char *name, uint8_t out[32])
{
    char *text = uw_sprintf("ue-wal object name\n%s", name ? name : "");
    uw_sha256(text, strlen(text), out);
    free(text);
}

/* Passes at most `max` bytes on: a decompression bomb fails on the first byte
 * beyond what the object may hold, not after filling a disk. */
typedef struct {
    uw_sink base;
    uint64_t max, seen;
} limit_sink;

static int limit_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    limit_sink *l = (limit_sink *)s;
    if (len > l->max - l->seen)
        return uw_fail(err, UW_E_CORRUPT, "content expands beyond the %llu bytes it may hold",
                       (unsigned long long)l->max);
    l->seen += len;
    return uw_sink_write(s->next, buf, len, err);
}

static int limit_finish(uw_sink *s, uw_err *err)
{
    return uw_sink_finish(s->next, err);
}

static void limit_destroy(uw_sink *s)
{
    free(s);
}

static uw_sink *limit_new(uint64_t max, uw_sink *next)
{
    limit_sink *l = uw_calloc(1, sizeof *l);
    l->base = (uw_sink){limit_write, limit_finish, limit_destroy, next, false, NULL};
    l->max = max;
    return &l->base;
}

/* Trailer layout (60 bytes):
 *  0 u32 skippable magic | 4 u32 frame size (52) | 8 "UEWT" | 12 u64 size
 * 20 sha256[32] | 52 check[8] */
static void trailer_check(const uint8_t *t, uint8_t out[8])
{
    uint8_t d[32];
    uw_sha256(t, 52, d);
    memcpy(out, d, 8);
}

/* ---- writer ---- */
typedef struct {
    uw_sink base;
    uw_sink *inner; /* compress [-> encrypt] -> tee(dest) */
    uw_sink *dest;
    uw_sink *hash; /* hash sink at the head of inner */
    uw_digest digest;
    uw_digest *out;
    uint8_t expect[32];
    bool have_expect;
    bool wal;
} writer_sink;

static int writer_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    return uw_sink_write(((writer_sink *)s)->hash, buf, len, err);
}

static int writer_from_fd(uw_sink *s, int fd, uint64_t size, const char *what,
                          const uw_side_work *side, uw_err *err)
{
    writer_sink *w = (writer_sink *)s;
    /* WAL files are complete when pushed; other files (a relation being
     * written during a backup) may change size while read: they are streamed. */
    if (!w->wal || !w->hash->from_fd)
        return 0;
    return w->hash->from_fd(w->hash, fd, size, what, side, err);
}

static int writer_finish(uw_sink *s, uw_err *err)
{
    writer_sink *w = (writer_sink *)s;
    if (uw_sink_finish(w->hash, err) < 0)
        return -1;
    if (w->have_expect && memcmp(w->expect, w->digest.sha256, 32) != 0)
        return uw_fail(err, UW_E_FILE, "content changed while it was being stored");
    uint8_t t[UW_OBJ_TRAILER_LEN];
    uw_put32(t, SKIP_MAGIC);
    uw_put32(t + 4, UW_OBJ_TRAILER_LEN - 8);
    memcpy(t + 8, "UEWT", 4);
    uw_put64(t + 12, w->digest.size);
    memcpy(t + 20, w->digest.sha256, 32);
    trailer_check(t, t + 52);
    if (uw_sink_write(w->dest, t, sizeof t, err) < 0 || uw_sink_finish(w->dest, err) < 0)
        return -1;
    if (w->out)
        *w->out = w->digest;
    return 0;
}

static void writer_destroy(uw_sink *s)
{
    writer_sink *w = (writer_sink *)s;
    uw_sink_free(w->hash);
    uw_sink_free(w->dest);
    free(w);
}

uw_sink *uw_object_writer(const uw_obj_write_opts *opts, uw_sink *dest, uw_digest *digest,
                          uw_err *err)
{
    uint8_t hdr[UW_OBJ_HEADER_LEN] = {0};
    uw_put32(hdr, SKIP_MAGIC);
    uw_put32(hdr + 4, UW_OBJ_HEADER_LEN - 8);
    memcpy(hdr + 8, "UEW", 3);
    hdr[11] = UW_OBJ_FORMAT_VERSION;
    hdr[12] = (uint8_t)opts->kind;
    hdr[13] = opts->compressor->id;
    hdr[14] = opts->key ? CIPHER_AES256GCM : CIPHER_NONE;
    uw_put64(hdr + 16, opts->system_id);
    uint8_t okey[UW_KEY_LEN];
    if (opts->key) {
        uw_put32(hdr + 24, UW_CHUNK_DEFAULT);
        if (uw_random(hdr + 28, UW_SALT_LEN, err) < 0) {
            uw_sink_free(dest);
            return NULL;
        }
        uw_object_key(opts->key, hdr + 28, okey);
    }
    name_hash(opts->name, hdr + HDR_NAME);
    header_check(hdr, hdr + HDR_CHECK);
    if (uw_sink_write(dest, hdr, sizeof hdr, err) < 0) {
        uw_sink_free(dest);
        return NULL;
    }
    writer_sink *w = uw_calloc(1, sizeof *w);
    w->base = (uw_sink){writer_write, writer_finish, writer_destroy, NULL, false, writer_from_fd};
    w->dest = dest;
    w->out = digest;
    w->wal = opts->kind == UW_OBJ_WAL;
    if (opts->expect_sha256) {
        memcpy(w->expect, opts->expect_sha256, 32);
        w->have_expect = true;
    }
    uw_sink *chain = uw_tee_sink(dest);
    if (opts->key) {
        chain = uw_encrypt_sink(okey, hdr, sizeof hdr, UW_CHUNK_DEFAULT, chain);
        memset(okey, 0, sizeof okey);
    }
    chain = opts->compressor->compress(opts->level, opts->threads, chain);
    w->hash = uw_hash_sink(chain, &w->digest);
    return &w->base;
}

/* ---- reader ---- */
typedef struct {
    uw_sink base;
    uw_obj_read_opts opts;
    uint8_t expect_sha[32];
    bool have_expect;
    uint8_t hdr[UW_OBJ_HEADER_LEN];
    size_t hdr_len;
    uw_sink *inner; /* [decrypt ->] decompress -> hash -> tee(dest) */
    uw_sink *dest;
    uw_digest digest;
    uw_digest *out;
    /* The last UW_OBJ_TRAILER_LEN bytes seen are held back: they may be the trailer. */
    uint8_t tail[UW_OBJ_TRAILER_LEN];
    size_t tail_len;
} reader_sink;

static int reader_setup(reader_sink *r, uw_err *err)
{
    const char *name = r->opts.name ? r->opts.name : "object";
    uint8_t chk[8];
    if (uw_get32(r->hdr) != SKIP_MAGIC || memcmp(r->hdr + 8, "UEW", 3) != 0)
        return uw_fail(err, UW_E_CORRUPT, "'%s' is not a ue-wal object (bad header)", name);
    if (r->hdr[11] != UW_OBJ_FORMAT_VERSION)
        return uw_fail(err, UW_E_FORMAT_VERSION,
                       "'%s' was written by an unsupported object format version '%c' (this "
                       "version reads '%c': create a new stanza for it)",
                       name, r->hdr[11] >= 0x20 && r->hdr[11] < 0x7f ? r->hdr[11] : '?',
                       UW_OBJ_FORMAT_VERSION);
    header_check(r->hdr, chk);
    if (uw_get32(r->hdr + 4) != UW_OBJ_HEADER_LEN - 8 || memcmp(chk, r->hdr + HDR_CHECK, 8) != 0)
        return uw_fail(err, UW_E_CORRUPT, "'%s' has a corrupt header", name);
    if (r->opts.bind) {
        /* Unencrypted this only catches a rename (an attacker could rewrite the
         * header); encrypted the header is authenticated by every GCM tag. */
        uint8_t want[32];
        name_hash(r->opts.bind, want);
        if (memcmp(want, r->hdr + HDR_NAME, 32) != 0)
            return uw_fail(err, UW_E_CORRUPT,
                           "'%s' was stored for another name than '%s' (renamed or substituted)",
                           name, r->opts.bind);
    }
    const uw_compressor *c = uw_compressor_by_id(r->hdr[13]);
    if (!c)
        return uw_fail(err, UW_E_FORMAT_VERSION, "'%s' uses unknown compressor id %u", name,
                       r->hdr[13]);
    /* An object claiming no cluster (system id 0) is no exception: every
     * writer records its stanza's id, so a 0 can only be a substitute. */
    uint64_t sysid = uw_get64(r->hdr + 16);
    if (r->opts.expect_system_id && sysid != r->opts.expect_system_id)
        return uw_fail(err, UW_E_FOREIGN,
                       "'%s' belongs to database system %llu, not to this stanza's %llu", name,
                       (unsigned long long)sysid, (unsigned long long)r->opts.expect_system_id);
    uw_sink *chain = uw_hash_sink(uw_tee_sink(r->dest), &r->digest);
    if (r->opts.pipeline)
        chain = uw_pipe_sink(chain);
    if (r->opts.max_size)
        chain = limit_new(r->opts.max_size, chain);
    chain = c->decompress(chain);
    if (r->hdr[14] == CIPHER_AES256GCM) {
        if (!r->opts.key) {
            uw_sink_free(chain);
            return uw_fail(err, UW_E_CRYPTO, "'%s' is encrypted but no cipher-pass is configured",
                           name);
        }
        uint32_t chunk = uw_get32(r->hdr + 24);
        if (chunk < 16 || chunk > (16u << 20)) {
            uw_sink_free(chain);
            return uw_fail(err, UW_E_CORRUPT, "'%s' has an invalid chunk size", name);
        }
        uint8_t okey[UW_KEY_LEN];
        uw_object_key(r->opts.key, r->hdr + 28, okey);
        chain = uw_decrypt_sink(okey, r->hdr, sizeof r->hdr, chunk, chain);
        memset(okey, 0, sizeof okey);
    } else if (r->hdr[14] == CIPHER_NONE && r->opts.key) {
        /* In an encrypted stanza a plaintext object can only be a substitute. */
        uw_sink_free(chain);
        return uw_fail(err, UW_E_DECRYPT, "'%s' is not encrypted but the stanza is", name);
    } else if (r->hdr[14] != CIPHER_NONE) {
        uw_sink_free(chain);
        return uw_fail(err, UW_E_FORMAT_VERSION, "'%s' uses unknown cipher id %u", name,
                       r->hdr[14]);
    }
    r->inner = chain;
    return 0;
}

static int reader_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    reader_sink *r = (reader_sink *)s;
    if (r->hdr_len < UW_OBJ_HEADER_LEN) {
        size_t n = UW_OBJ_HEADER_LEN - r->hdr_len;
        if (n > len)
            n = len;
        memcpy(r->hdr + r->hdr_len, buf, n);
        r->hdr_len += n;
        buf += n;
        len -= n;
        if (r->hdr_len < UW_OBJ_HEADER_LEN)
            return 0;
        if (reader_setup(r, err) < 0)
            return -1;
    }
    if (!len)
        return 0;
    if (!r->inner)
        return uw_fail(err, UW_E_INTERNAL, "object reader used after an error");
    /* Release what can no longer be part of the trailer. */
    size_t total = r->tail_len + len;
    if (total <= UW_OBJ_TRAILER_LEN) {
        memcpy(r->tail + r->tail_len, buf, len);
        r->tail_len = total;
        return 0;
    }
    size_t release = total - UW_OBJ_TRAILER_LEN;
    size_t from_tail = release < r->tail_len ? release : r->tail_len;
    if (from_tail && uw_sink_write(r->inner, r->tail, from_tail, err) < 0)
        return -1;
    memmove(r->tail, r->tail + from_tail, r->tail_len - from_tail);
    r->tail_len -= from_tail;
    size_t from_buf = release - from_tail;
    if (from_buf && uw_sink_write(r->inner, buf, from_buf, err) < 0)
        return -1;
    memcpy(r->tail + r->tail_len, buf + from_buf, len - from_buf);
    r->tail_len += len - from_buf;
    return 0;
}

static int reader_finish(uw_sink *s, uw_err *err)
{
    reader_sink *r = (reader_sink *)s;
    const char *name = r->opts.name ? r->opts.name : "object";
    if (r->hdr_len < UW_OBJ_HEADER_LEN || r->tail_len < UW_OBJ_TRAILER_LEN)
        return uw_fail(err, UW_E_CORRUPT, "'%s' is truncated", name);
    const uint8_t *t = r->tail;
    uint8_t chk[8];
    trailer_check(t, chk);
    if (uw_get32(t) != SKIP_MAGIC || memcmp(t + 8, "UEWT", 4) != 0 || memcmp(chk, t + 52, 8) != 0)
        return uw_fail(err, UW_E_CORRUPT, "'%s' is truncated or has a corrupt trailer", name);
    if (uw_sink_finish(r->inner, err) < 0)
        return uw_wrap(err, "'%s'", name);
    if (r->digest.size != uw_get64(t + 12))
        return uw_fail(err, UW_E_CORRUPT, "'%s' restored %llu bytes, expected %llu", name,
                       (unsigned long long)r->digest.size, (unsigned long long)uw_get64(t + 12));
    uint8_t id[32];
    uw_content_id(r->opts.expect_is_id ? r->opts.key : NULL, r->digest.sha256, id);
    if (memcmp(r->digest.sha256, t + 20, 32) != 0 ||
        (r->have_expect && memcmp(id, r->expect_sha, 32) != 0))
        return uw_fail(err, UW_E_CORRUPT, "'%s' failed SHA-256 verification", name);
    if (r->out)
        *r->out = r->digest;
    return uw_sink_finish(r->dest, err);
}

static void reader_destroy(uw_sink *s)
{
    reader_sink *r = (reader_sink *)s;
    uw_sink_free(r->inner);
    uw_sink_free(r->dest);
    free(r);
}

/* Wrap inner errors so a corrupt payload is reported as such even when the
 * failing filter said something more generic. */
static int reader_write_checked(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    reader_sink *r = (reader_sink *)s;
    if (reader_write(s, buf, len, err) < 0) {
        if (err && err->code == UW_E_CORRUPT && r->opts.name)
            uw_wrap(err, "'%s'", r->opts.name);
        return -1;
    }
    return 0;
}

uw_sink *uw_object_reader(const uw_obj_read_opts *opts, uw_sink *dest, uw_digest *digest)
{
    reader_sink *r = uw_calloc(1, sizeof *r);
    r->base = (uw_sink){reader_write_checked, reader_finish, reader_destroy, NULL, false, NULL};
    r->opts = *opts;
    if (opts->expect_sha256) {
        memcpy(r->expect_sha, opts->expect_sha256, 32);
        r->have_expect = true;
    }
    r->opts.expect_sha256 = NULL;
    r->dest = dest;
    r->out = digest;
    return &r->base;
}
